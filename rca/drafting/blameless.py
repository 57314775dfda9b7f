"""Blameless-language check: flags wording that puts a person, not the system, at the cause.

Used on drafts and on reviewers' edits. A flag says what was found, why it matters and how to
say it systemically; it never rewrites the text itself. The check is deliberately narrow:
"the pod failed to start" is fine, "Dana failed to check the config" is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class BlamelessFlag:
    """One piece of blaming language."""

    start: int
    end: int
    phrase: str
    reason: str
    suggestion: str


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    reason: str
    suggestion: str


def _rule(pattern: str, reason: str, suggestion: str) -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), reason, suggestion)


_PERSON = (
    r"(?:he|she|they|someone|somebody|the (?:engineer|operator|developer|on-?call(?: engineer)?|"
    r"sre|admin(?:istrator)?|intern|new hire|team member|author|reviewer)|an? (?:engineer|"
    r"operator|developer|intern|admin))"
)
_SYSTEMIC = (
    "describe the condition that allowed it: what the tooling, process or design did not provide"
)

FIRST_PERSON = re.compile(r"(?<![\w'-])(?:I|I'm|I've|I'd|I'll|[Mm]y)(?![\w'-])")
"""A responder speaking for themselves ("I ran", "my script"): case matters, so "i.e." and
region names are not caught."""

RULES: tuple[_Rule, ...] = (
    _Rule(
        FIRST_PERSON,
        "a first-person account: one responder's view, not a condition of the system",
        "state what the system did or lacked: e.g. 'the script accepted IDs without checking "
        "what they referred to'",
    ),
    _rule(
        r"\b(?:human|operator|user|pilot|engineer|developer|manual) (?:error|mistake)s?\b",
        "'human error' ends the analysis where it should begin",
        "name the system condition: e.g. 'the deploy tool accepted an unvalidated value'",
    ),
    _rule(
        r"\bshould(?:n't| not)? have\b",
        "hindsight: judges a past decision by what is known now",
        "state what information or safeguard was missing at the time",
    ),
    _rule(
        r"\b(?:careless(?:ly|ness)?|negligen(?:t|ce)|sloppy|lazy|incompeten(?:t|ce)|reckless(?:ly)?|"
        r"stupid|inattentive|irresponsible)\b",
        "judges a person's character instead of the work system",
        _SYSTEMIC,
    ),
    _rule(
        r"\b(?:to blame|(?:is|was|were) (?:at )?fault|fault of|blamed?|culprit|"
        r"(?:his|her|their) (?:mistake|fault|error))\b",
        "assigns blame",
        _SYSTEMIC,
    ),
    _rule(
        rf"\b{_PERSON} (?:forgot|neglected|failed|ignored|missed|overlooked|didn't bother|"
        r"did not bother|broke|messed up|screwed up)\b",
        "a person as the cause",
        "make the system the subject: e.g. 'the runbook did not include the check'",
    ),
)

_CAUSAL_VERBS = (
    r"(?:caused|broke|forgot|neglected|failed to|ignored|missed|overlooked|messed up|"
    r"screwed up|mistakenly|accidentally|carelessly|is responsible|was responsible)"
)


def check_blameless(text: str, people: Iterable[str] = ()) -> list[BlamelessFlag]:
    """Flags in `text`, in order. `people`: names known to take part in the incident (chat
    authors, timeline actors), so that "Dana forgot ..." is recognised."""
    flags: list[BlamelessFlag] = []
    for rule in RULES:
        for match in rule.regex.finditer(text):
            flags.append(_flag(match, rule.reason, rule.suggestion))
    names = sorted({p.strip() for p in people if len(p.strip()) >= 2}, key=len, reverse=True)
    if names:
        alternatives = "|".join(re.escape(name) for name in names)
        by_person = re.compile(
            rf"\b(?:{alternatives})(?:'s)?\b[^.;:\n]{{0,40}}?\b{_CAUSAL_VERBS}\b"
            rf"|\b(?:caused|broken) by (?:{alternatives})\b",
            re.IGNORECASE,
        )
        for match in by_person.finditer(text):
            flags.append(
                _flag(
                    match,
                    "names a person as the cause",
                    "describe the action and the conditions around it without naming who: "
                    "e.g. 'a config change was pushed without validation'",
                )
            )
    return _dedupe(flags)


def _flag(match: re.Match[str], reason: str, suggestion: str) -> BlamelessFlag:
    return BlamelessFlag(match.start(), match.end(), match.group(0), reason, suggestion)


def _dedupe(flags: list[BlamelessFlag]) -> list[BlamelessFlag]:
    kept: list[BlamelessFlag] = []
    for flag in sorted(flags, key=lambda f: (f.start, -f.end)):
        if kept and flag.start < kept[-1].end:
            continue  # inside a longer flag already reported
        kept.append(flag)
    return kept
