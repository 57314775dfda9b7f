"""What a similar-search hit shows: a ranked candidate, the redacted form of its postmortem,
the sections that matched with snippets centred on a query term, and why it matched."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rca.domain import Incident, Postmortem
from rca.domain.similar import MatchedSection, SimilarHit
from retrieval.lexical import first_match
from retrieval.vector_index import VectorHit

SNIPPET_CHARS = 220
SNIPPET_SCAN_WORDS = 300
"""A snippet centres on a query term found among a section's first this many words."""
_PLACEHOLDER_TERM = re.compile(r"(?:secret|email|phone|card|ip)_\d+")
"""A redaction placeholder as `terms` leaves it (lowercased)."""


@dataclass(frozen=True)
class Shown:
    """A postmortem as hits show it: redacted, its sections' text and their stemmed terms."""

    postmortem: Postmortem
    revision: int
    sections: dict[str, str]
    terms: dict[str, set[str]]


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
    pm = shown.postmortem
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
    overlap_by_section = {name: query_terms & section for name, section in shown.terms.items()}
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
        common = sorted(set(query.services) & set(pm.services))
        if common:
            why.append(f"same services: {', '.join(common)}")
        common_tags = sorted(set(query.tags) & set(pm.tags))
        if common_tags:
            why.append(f"same tags: {', '.join(common_tags)}")
    return SimilarHit(
        postmortem_id=pm.id,
        title=pm.title,
        score=round(candidate.score, 6),
        revision=shown.revision,
        date=pm.date,
        severity=pm.severity,
        services=list(pm.services),
        sections=sections,
        why=why,
    )
