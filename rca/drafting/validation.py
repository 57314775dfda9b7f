"""Checks on what the model wrote, before any of it becomes a suggestion.

Model output is untrusted twice over: the model may be wrong, and the incident text it read
may have been written to steer it. So every claim is

- cleaned: links and domains in any form (`rca.drafting.links`), images, HTML and Markdown
  markup, control, bidi and zero-width characters removed; inline `[id]` citations moved into
  the claim's evidence list;
- checked for citations: every cited id must exist in the incident or the retrieved
  postmortems, and a claim must cite something (these problems are worth a re-ask);
- checked for support: the cited evidence must share a quarter of the claim's content words
  (a claim closer to a past incident than to the evidence it cites is a copy), and evidence
  that steers (it addresses the model, "ignore previous instructions ...", or the report's
  writer, or asks someone to hand over credentials or disable a safeguard: `suspicious_ids`)
  cannot be a claim's only support (these claims are dropped, with the reason recorded).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import Stemmer

from rca.drafting.links import INVISIBLE, strip_links
from rca.drafting.steering import steering

MAX_CLAIM_CHARS = 600
MIN_SUPPORT = 0.25
"""Share of a claim's content words its cited evidence must contain (paraphrase allowed)."""
COPIED = 0.6
"""Share of a claim's content words found in a past postmortem that marks it as a copy."""

_stemmer = Stemmer.Stemmer("english")
_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she
    should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with
    would you your incident evidence issue problem caused cause due led lead leading result
    resulted""".split()
)

_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\((?:[^)]*)\)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_MARKUP = re.compile(r"(?m)^\s*(?:#{1,6}\s+|[-*+]\s+|>\s*|\d+[.)]\s+)|\*\*|__|`+|~~")
_INLINE_IDS = re.compile(r"\[\s*([A-Za-z0-9][A-Za-z0-9_.:-]*(?:\s*,\s*[A-Za-z0-9_.:-]+)*)\s*\]")


def terms(text: str) -> set[str]:
    """Stemmed content words of `text`."""
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and not w.isdigit()]
    return set(_stemmer.stemWords(words))


@dataclass
class Cleaned:
    """A claim's text after cleaning, and what cleaning found."""

    text: str
    inline_ids: list[str] = field(default_factory=list)
    removed_links: int = 0


def clean(text: str, known_ids: Iterable[str] = ()) -> Cleaned:
    """Plain, single-line text: links and markup out, inline citations of known ids moved out."""
    known = set(known_ids)
    text = unicodedata.normalize("NFKC", text)
    text = INVISIBLE.sub("", text)
    text = "".join(ch if ch in "\n\t" or unicodedata.category(ch)[0] != "C" else " " for ch in text)
    links = len(_MD_IMAGE.findall(text)) + len(_MD_LINK.findall(text))
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _HTML_TAG.sub(" ", text)
    text, found = strip_links(text)
    links += found
    text = _MARKUP.sub(" ", text)
    inline: list[str] = []

    def move(match: re.Match[str]) -> str:
        ids = [part.strip() for part in match.group(1).split(",")]
        if ids and all(i in known for i in ids):
            inline.extend(ids)
            return ""
        return match.group(0)

    text = _INLINE_IDS.sub(move, text)
    text = " ".join(text.split())
    text = re.sub(r"\s+([.,;:])", r"\1", text).strip(" -;,")
    if len(text) > MAX_CLAIM_CHARS:
        text = text[:MAX_CLAIM_CHARS].rsplit(" ", 1)[0] + " …"
    return Cleaned(text, list(dict.fromkeys(inline)), links)


def is_insufficient(text: str) -> bool:
    """The model's way of saying it does not know."""
    lowered = text.lower().strip(" .")
    return (
        not lowered or lowered in {"none", "n/a", "unknown"} or "insufficient evidence" in lowered
    )


@dataclass(frozen=True)
class Verdict:
    """What the checks found about one claim."""

    retry: tuple[str, ...] = ()
    """Problems a re-ask may fix (unknown ids, no citation)."""
    drop: str | None = None
    """Why the claim cannot be kept, whatever the model says next."""

    @property
    def ok(self) -> bool:
        """Nothing wrong."""
        return not self.retry and self.drop is None


class Sources:
    """What a draft may cite: the incident's evidence items and the retrieved postmortems."""

    def __init__(
        self,
        texts: Mapping[str, str],
        suspicious: Iterable[str] = (),
        borrowable: Iterable[str] = (),
    ) -> None:
        self.texts = dict(texts)
        self.suspicious = set(suspicious)
        self.borrowable = list(borrowable)
        """Ids of past postmortems: a claim that restates one must cite it or be supported."""
        self._terms: dict[str, set[str]] = {}

    def ids(self) -> list[str]:
        """Every citable id."""
        return list(self.texts)

    def terms_of(self, ident: str) -> set[str]:
        """Content words of one source (cached)."""
        found = self._terms.get(ident)
        if found is None:
            found = self._terms[ident] = terms(self.texts.get(ident, ""))
        return found

    def check(
        self,
        text: str,
        cited: list[str],
        *,
        needs_citation: bool = True,
        support_from: Collection[str] | None = None,
    ) -> Verdict:
        """Checks one cleaned claim and its citations (see the module docstring). With
        `support_from`, only those cited ids count as support (a root cause must rest on this
        incident's evidence, not on a past incident it cites)."""
        unknown = [i for i in cited if i not in self.texts]
        retry: list[str] = []
        if unknown:
            retry.append(f"cites ids that do not exist: {', '.join(unknown[:5])}")
        known = [i for i in cited if i in self.texts]
        if needs_citation and not known and not unknown:
            retry.append("cites no evidence id")
        if retry:
            return Verdict(retry=tuple(retry))
        if not known:
            return Verdict()
        if all(i in self.suspicious for i in known):
            return Verdict(
                drop="its only support is text that addresses the model or steers its reader "
                "(possible prompt injection)"
            )
        counted = [
            i
            for i in known
            if i not in self.suspicious and (support_from is None or i in support_from)
        ]
        if not counted:
            return Verdict(drop="it cites only past incidents, none of this incident's evidence")
        claim_terms = terms(text)
        if not claim_terms:
            return Verdict()
        support = set().union(*(self.terms_of(i) for i in counted))
        shared = len(claim_terms & support) / len(claim_terms)
        for source in self.borrowable:
            copied = len(claim_terms & self.terms_of(source)) / len(claim_terms)
            # A claim closer to a past incident than to the evidence it cites here is a copy,
            # even when a few of its words happen to appear in that evidence.
            if source not in counted and copied >= COPIED and copied > shared:
                return Verdict(
                    drop=f"it restates {source}, a past incident, which the cited evidence "
                    "of this incident does not bear out"
                )
        if shared >= MIN_SUPPORT:
            return Verdict()
        if shared == 0:
            return Verdict(drop="the cited evidence does not mention anything the claim says")
        return Verdict(drop="the cited evidence says too little of what the claim says")


def suspicious_ids(items: Mapping[str, str]) -> list[str]:
    """Ids of evidence that steers (possible prompt injection, overt or covert): it addresses
    the model or whoever writes the report, or tells anyone to hand over credentials or to
    disable monitoring or a safeguard, whatever characters spell it (`steering`)."""
    return [ident for ident, text in items.items() if steering(text) is not None]
