"""What a similar-search hit shows: a ranked candidate, the redacted form of its postmortem,
the sections that matched with snippets centred on a query term, and why it matched."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import date as CalendarDate

from rca.domain import Incident, Postmortem, Severity
from rca.domain.similar import MatchedSection, SimilarHit
from rca.redaction import PlaceholderTable, Redactor, redact_postmortem
from retrieval.chunking import section_texts
from retrieval.lexical import first_match, terms
from retrieval.vector_index import VectorHit

SNIPPET_CHARS = 220
SNIPPET_SCAN_WORDS = 300
"""A snippet centres on a query term found among a section's first this many words."""
_PLACEHOLDER_TERM = re.compile(r"(?:secret|email|phone|card|ip)_\d+")
"""A redaction placeholder as `terms` leaves it (lowercased)."""


@dataclass(frozen=True)
class Shown:
    """What hits show of a postmortem, redacted: the fields a hit names and each section's
    text. Kept per process for many postmortems, so only that (stemming a section's terms
    again costs ~10 µs; redacting a postmortem ~1.5 ms)."""

    postmortem_id: str
    revision: int
    title: str
    date: CalendarDate | None
    severity: Severity | None
    services: tuple[str, ...]
    tags: tuple[str, ...]
    sections: dict[str, str]

    @classmethod
    def of(cls, pm: Postmortem, revision: int, redactor: Redactor) -> Shown:
        """The postmortem redacted (a table of its own: its placeholders number from 1)."""
        redacted = redact_postmortem(pm, redactor, PlaceholderTable())
        return cls(
            redacted.id,
            revision,
            redacted.title,
            redacted.date,
            redacted.severity,
            tuple(redacted.services),
            tuple(redacted.tags),
            section_texts(redacted),
        )

    @property
    def size(self) -> int:
        """Characters held, roughly what keeping it costs."""
        texts = (self.title, *self.services, *self.tags, *self.sections.values())
        return sum(len(text) for text in texts)


class ShownCache:
    """Shown forms by postmortem id, least recently used dropped first, within a number of
    entries and of characters; not thread-safe (the search's lock guards it)."""

    def __init__(self, entries: int, chars: int) -> None:
        self.entries, self.chars = entries, chars
        self._kept: OrderedDict[str, Shown] = OrderedDict()
        self._chars = 0

    def get(self, postmortem_id: str, revision: int) -> Shown | None:
        """The form of this revision, if kept."""
        found = self._kept.get(postmortem_id)
        if found is None or found.revision != revision:
            return None
        self._kept.move_to_end(postmortem_id)
        return found

    def put(self, shown: Shown) -> None:
        old = self._kept.pop(shown.postmortem_id, None)
        self._chars += shown.size - (old.size if old is not None else 0)
        self._kept[shown.postmortem_id] = shown
        while self._kept and (len(self._kept) > self.entries or self._chars > self.chars):
            _id, dropped = self._kept.popitem(last=False)
            self._chars -= dropped.size

    def __len__(self) -> int:
        return len(self._kept)


@dataclass
class Candidate:
    """A postmortem the retrievers proposed: its rank with each, and its fused score."""

    postmortem_id: str
    revision: int
    """The revision the lexical index holds (the one that was ranked)."""
    lexical_rank: int | None = None
    lexical_score: float = 0.0
    dense_rank: int | None = None
    dense_hits: list[VectorHit] = field(default_factory=list)
    score: float = 0.0


def snippet(text: str, query_terms: set[str]) -> str:
    """A short excerpt, centred on the first word that matches a query term."""
    words = text.split()
    found = first_match(words[:SNIPPET_SCAN_WORDS], query_terms)
    start = max(0, found - 8) if found is not None else 0
    excerpt = " ".join(words[start:])
    if len(excerpt) > SNIPPET_CHARS:
        excerpt = excerpt[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
    return ("… " if start else "") + excerpt


def hit_of(
    candidate: Candidate,
    shown: Shown,
    query_terms: set[str],
    query: str | Incident,
) -> SimilarHit:
    """The hit a ranked candidate makes: its matching sections with snippets, and why it
    matched (shared terms, closeness in meaning, the incident's services and tags)."""
    sections: list[MatchedSection] = []
    seen: set[str] = set()
    for hit in candidate.dense_hits[:3]:
        if hit.section in seen:
            continue
        seen.add(hit.section)
        sections.append(
            MatchedSection(
                section=hit.section,
                snippet=snippet(shown.sections.get(hit.section, ""), query_terms),
                similarity=round(hit.similarity, 4),
            )
        )
    overlap_by_section = {
        name: query_terms.intersection(terms(text)) for name, text in shown.sections.items()
    }
    shared = sorted(
        term  # numbers and placeholders match often and explain nothing
        for term in (set().union(*overlap_by_section.values()) if overlap_by_section else set())
        if not term.isdigit() and not _PLACEHOLDER_TERM.fullmatch(term)
    )
    best_lexical = max(overlap_by_section, key=lambda n: len(overlap_by_section[n]), default="")
    if best_lexical and overlap_by_section[best_lexical] and best_lexical not in seen:
        body = shown.sections[best_lexical]
        sections.append(MatchedSection(section=best_lexical, snippet=snippet(body, query_terms)))
    why: list[str] = []
    if candidate.lexical_rank is not None and shared:
        why.append(f"shares terms: {', '.join(shared[:8])}")
    if candidate.dense_hits:
        best = candidate.dense_hits[0]
        why.append(
            f"close in meaning to its {best.section.replace('_', ' ')}"
            f" (cosine {best.similarity:.2f})"
        )
    if isinstance(query, Incident):
        common = sorted(set(query.services) & set(shown.services))
        if common:
            why.append(f"same services: {', '.join(common)}")
        common_tags = sorted(set(query.tags) & set(shown.tags))
        if common_tags:
            why.append(f"same tags: {', '.join(common_tags)}")
    return SimilarHit(
        postmortem_id=shown.postmortem_id,
        title=shown.title,
        score=round(candidate.score, 6),
        revision=shown.revision,
        date=shown.date,
        severity=shown.severity,
        services=list(shown.services),
        sections=sections,
        why=why,
    )
