"""Blameless-language check: flags wording that puts a person, not the system, at the cause.

Used on drafts and on reviewers' edits. A flag says what was found, why it matters and how to
say it systemically; it never rewrites the text itself. The check is deliberately narrow:
"the pod failed to start" is fine, "Dana failed to check the config" is not.

A draft goes further (`person_problem`): text that blames someone or names a person is never a
suggestion. People are the incident's participants whose handles read as names
(`looks_personal`), and names a text puts in a person's place (`named_people`: "blame Dave",
"Dave's deploy", "Priya is to blame", "owner: Marcus Webb", "@dave").
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
_SOMEONE = _PERSON.replace("they|", "")
"""A person, not "they" (which is as often pods or retries)."""
_SYSTEMIC = (
    "describe the condition that allowed it: what the tooling, process or design did not provide"
)

FIRST_PERSON = re.compile(r"(?<![\w'-])(?:I|I'm|I've|I'd|I'll|[Mm]y|[Mm]e)(?![\w'-])")
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
    _rule(
        rf"\b(?:root )?cause (?:is|was) {_SOMEONE}\b|\b{_SOMEONE} (?:caused|is responsible|"
        r"was responsible)\b",
        "a person as the cause",
        "make the system the subject: e.g. 'the runbook did not include the check'",
    ),
)
BLAMING = frozenset({"assigns blame", "a person as the cause", "names a person as the cause"})
"""Reasons of the flags that blame someone (the others judge wording: hindsight, 'human
error', a first-person account)."""

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


# --- people a draft must not name --------------------------------------------------------

_ROLE_WORDS = frozenset(
    """sre eng engineer engineering team lead commander manager coordinator comms ops support
    bot automation service deploy deployer release pager pagerduty opsgenie statuspage dba dbre
    tech provider mirror contractor admin system liaison desk vendor ic ci cd dev devs oncall
    call security sec net network platform infra db capacity incident status monitoring
    alertmanager prometheus grafana github gitlab jenkins argo argocd helpdesk noc soc
    customer user here channel everyone""".split()
)
_ROLE_ENDS = ("ops", "bot", "eng", "oncall", "team", "desk")


def is_role(handle: str) -> bool:
    """Whether a participant's handle names a role, a team or a system ("oncall-checkout",
    "dba-team", "deploy-bot", "sre-1"), not a person."""
    parts = [p for p in re.split(r"[-_./\s]+", handle.lower()) if p]
    return any(p in _ROLE_WORDS or p.endswith(_ROLE_ENDS) for p in parts)


_PERSONAL = re.compile(r"[A-Z][a-z]+(?:[ .'-][A-Z][a-z]+)*|[a-z]{2,}[._][a-z]+")


def looks_personal(handle: str) -> bool:
    """Whether a participant's handle reads as a person's name ("Dana", "Dana Whitfield",
    "dana.whitfield", "sam.k"), not as a role or system ("oncall-checkout", "chef", "sre-1"):
    a lower-case single word or a hyphenated handle is taken for a role or a system."""
    return _PERSONAL.fullmatch(handle.strip()) is not None and not is_role(handle)


_NAME = r"[A-Z][a-z]{2,}(?:[ -][A-Z][a-z]{2,})?"
_NOT_NAMES = frozenset(
    """The This That These Those There They Their Then When What Which Who Why How Its Our
    Your His Her Nobody Someone Somebody Everyone Everybody Nothing Anyone Team Root Cause
    Alert Alerts Please Also And But Note Owner Status Thanks Per""".split()
)
_NAMED = re.compile(
    r"(?i:\b(?:blam(?:e|ed|es|ing)|ask|asked|ping|pinged|thank|thanks|tell|told|cc|fault\s+of|"
    r"assign(?:ed)?\s+to|owned\s+by|pushed\s+by|merged\s+by|approved\s+by|"
    r"owner(?:\s+(?:should|must|will|is|was|shall))?(?:\s+be)?:?)\s+)@?(?P<a>" + _NAME + ")"
    r"|(?P<b>" + _NAME + r")'s\s+(?i:fault|mistake|blunder|typo|deploy|deployment|push|commit|"
    r"pr|pull\s+request|script|merge)\b"
    r"|(?P<c>" + _NAME + r")\s+(?i:from|on|of)\s+the\s+[\w-]+\s+(?i:team)\b"
    r"|(?P<d>" + _NAME + r")\s+(?i:is|was|are|were)\s+(?i:to\s+blame|at\s+fault|"
    r"responsible|the\s+culprit)"
    r"|(?P<e>" + _NAME + r")\s+(?i:to)\s+(?i:personally|apologi[sz]e|take\s+the\s+blame)"
    r"|(?<![\w.])@(?P<f>[A-Za-z][\w.-]{0,30}[A-Za-z0-9])(?![\w/-])"
)


def named_people(text: str) -> list[str]:
    """Names `text` puts in a person's place: "blame Dave", "Dave's deploy", "Priya is to
    blame", "owner should be Marcus Webb", "@Dana" or "@dana.w" (not "@here",
    "@oncall-checkout" or "@scope/package")."""
    found: list[str] = []
    for match in _NAMED.finditer(text):
        name = next(g for g in match.groups() if g)
        if name in _NOT_NAMES or name.split()[0] in _NOT_NAMES or is_role(name):
            continue
        if match.group("f") and not looks_personal(name):
            continue  # "@seq := ...", "@scope/package", "dig @ns1": not a person
        found.append(name)
    return list(dict.fromkeys(found))


def mentions(text: str, persons: Iterable[str]) -> list[str]:
    """Which of `persons` `text` names (a full name, or a part of it of three letters or
    more), ignoring case."""
    lowered = text.lower()
    named: list[str] = []
    for person in persons:
        parts = [person, *(p for p in person.split() if len(p) >= 3)] if " " in person else [person]
        if any(re.search(rf"(?<![\w-]){re.escape(p.lower())}(?![\w-])", lowered) for p in parts):
            named.append(person)
    return named


def person_problem(
    text: str, people: Iterable[str] = (), persons: Iterable[str] = ()
) -> str | None:
    """Why `text` cannot be a suggestion for a person's sake: it blames someone (`BLAMING`
    flags; `people`: every participant, roles included) or names a person (one of `persons`,
    or a name `text` puts in a person's place); None if neither."""
    persons = list(persons)
    if any(f.reason in BLAMING for f in check_blameless(text, [*people, *persons])):
        return "it blames a person"
    if named_people(text) or mentions(text, persons):
        return "it names a person"
    return None


_WE = re.compile(
    r"(?<![\w'-])(we|we're|we've|we'd|we'll|our|ours|us|ourselves)(?![\w'-])"
    r"((?:\s+(?:only|never|just|still|also|already|always|often|usually|all|both|then|now|"
    r"really|simply|currently|normally))*)(\s+([a-z]+n't|[a-z]+(?:-[a-z]+)*))?",
    re.IGNORECASE,
)
_TEAM_OWN = {"our": "the team's", "ours": "the team's", "us": "the team", "ourselves": "itself"}
_TEAM_DOES = {"we're": "the team is", "we've": "the team has", "we'd": "the team would"}
_AGREES = {
    "are": "is", "were": "was", "have": "has", "do": "does", "don't": "doesn't",
    "haven't": "hasn't", "aren't": "isn't", "weren't": "wasn't",
}  # fmt: skip
_KEEPS = frozenset(
    "can can't cannot could couldn't will won't would wouldn't should shouldn't must may might "
    "did didn't had hadn't was wasn't to a an the and or but so as at in on of for by".split()
)
_PRESENT_ED = frozenset("need feed seed speed bleed exceed proceed succeed".split())
"""Present-tense verbs that end like a past tense."""


def third_person(text: str) -> str:
    """`text` with the responders' "we" made "the team" and its verb agreeing ("we compute" →
    "the team computes", "we're" → "the team is", "our" → "the team's"): a quoted line stated
    about the organisation, not in a responder's voice. Singular first person is left alone
    (such a line is never quoted as a cause)."""

    def swap(match: re.Match[str]) -> str:
        word, adverbs, gap, verb = match[1], match[2] or "", match[3] or "", match[4]
        lowered = word.lower()
        if lowered in _TEAM_OWN:
            head, verb_part = _TEAM_OWN[lowered], gap
        elif lowered in _TEAM_DOES:
            head, verb_part = _TEAM_DOES[lowered], gap
        elif lowered == "we'll":
            head, verb_part = "the team will", gap
        else:
            head = "the team"
            verb_part = f"{gap[: len(gap) - len(verb)]}{_agreeing(verb)}" if verb else gap
        if word[:1].isupper() and match.start() == 0:
            head = head[:1].upper() + head[1:]
        return f"{head}{adverbs}{verb_part}"

    return _WE.sub(swap, text)


def _agreeing(verb: str) -> str:
    """The third-person singular of a present-tense `verb` after "the team"."""
    if "-" in verb:  # "double-check" -> "double-checks"; "load-tested" stays
        head, tail = verb.rsplit("-", 1)
        return f"{head}-{_agreeing(tail)}"
    lowered = verb.lower()
    if lowered in _AGREES:
        return _AGREES[lowered]
    past = lowered.endswith("ed") and lowered not in _PRESENT_ED
    if lowered in _KEEPS or past or lowered.endswith("n't") or not lowered.isalpha():
        return verb
    if lowered.endswith("s"):  # already agrees, or a word such as "always" or "this"
        return verb
    if lowered.endswith(("sh", "ch", "x", "z", "o")):
        return verb + "es"
    if lowered.endswith("y") and len(lowered) > 2 and lowered[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


_HINDSIGHT = re.compile(
    r"(?<!\bno )(?<!\bnot )(?<!\bnever )(?<!\bnothing )(?<!\bnobody )(?<!\bno one )"
    r"(?<!\bnone )\b(should)(n't| not)? have\b",
    re.IGNORECASE,
)
"""Hindsight, unless a negative subject comes right before ("nothing should have ..."): that
one cannot be turned around by rote."""


def as_stated(text: str) -> str:
    """A quoted line as a statement about the system: in the third person (`third_person`)
    and without hindsight ("the limit should have caught this" -> "the limit had not caught
    this"; "should not have" -> "had")."""

    def plain(match: re.Match[str]) -> str:
        head = "had" if match[2] else "had not"
        return head.capitalize() if match[1][0].isupper() else head

    return third_person(_HINDSIGHT.sub(plain, text))
