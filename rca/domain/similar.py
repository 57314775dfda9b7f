"""Similar-incident search: what a query is, what a hit looks like, and the query an incident makes.

The search itself lives in `retrieval/`; these types are what the rest of rca (drafting, the
API) sees of it.
"""

from __future__ import annotations

import re
from datetime import date
from datetime import date as CalendarDate
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rca.domain.incident import Incident
from rca.domain.values import Severity, TimelineKind

SearchMode = Literal["hybrid", "lexical", "dense"]

ERRORISH = re.compile(
    r"\b(error|err|fatal|panic|exception|fail(ed|ure|ing)?|timeout|timed out|refused|denied|"
    r"unavailable|oom\w*|killed|exhausted|expired|invalid|unreachable|crash\w*|5\d\d)\b",
    re.IGNORECASE,
)
"""Words that mark a log line as an error (searched for, and put first in drafting contexts)."""


class SearchFilters(BaseModel):
    """Restrict hits to postmortems with these properties (all given filters must hold)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    services: list[str] = Field(default_factory=list)
    """At least one of these services is involved."""
    severities: list[Severity] = Field(default_factory=list)
    """The severity is one of these."""
    date_from: date | None = None
    """On or after this day."""
    date_to: date | None = None
    """On or before this day."""
    tags: list[str] = Field(default_factory=list)
    """Every one of these tags is present."""

    @model_validator(mode="after")
    def _check_range(self) -> SearchFilters:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self

    def is_empty(self) -> bool:
        """True when nothing is filtered."""
        return not (self.services or self.severities or self.date_from or self.date_to or self.tags)


class MatchedSection(BaseModel):
    """A section of a hit that matched, with a snippet."""

    model_config = ConfigDict(frozen=True)

    section: str
    """Which section (summary, root_causes, causal_chain, ...)."""
    snippet: str
    """A short excerpt of the matching text."""
    similarity: float | None = None
    """Cosine similarity of the section to the query, when dense search found it."""


class SimilarHit(BaseModel):
    """One similar past postmortem."""

    model_config = ConfigDict(frozen=True)

    postmortem_id: str
    """The postmortem."""
    title: str
    """Its title."""
    score: float
    """Fused score (higher is more similar); comparable only within one result list."""
    revision: int
    """The revision that was searched."""
    date: CalendarDate | None = None
    """The incident's day."""
    severity: Severity | None = None
    """Its severity."""
    services: list[str] = Field(default_factory=list)
    """Its services."""
    sections: list[MatchedSection] = Field(default_factory=list)
    """The sections that matched, best first."""
    why: list[str] = Field(default_factory=list)
    """Plain reasons: shared terms, semantically close sections, shared services."""


class SearchResult(BaseModel):
    """Hits, plus whether search ran degraded."""

    model_config = ConfigDict(frozen=True)

    query: str
    """The text searched for."""
    mode: SearchMode
    """Which retrievers ran."""
    hits: list[SimilarHit]
    """Best first."""
    degraded: bool = False
    """True when the vector index could not be used and only lexical search ran."""
    notes: list[str] = Field(default_factory=list)
    """Why search was degraded, or that the index is behind the store."""


def incident_query(incident: Incident) -> str:
    """Search text for an incident: symptoms, services, alerts, errors and changes.

    Ordered most telling first (dense models read only the start): title and summary, services,
    alert names and texts, error-like log lines, then deploys, config changes and observations.
    Chat is left out: it is speculation and noise more often than symptom.
    """
    parts: list[str] = [incident.title, incident.summary]
    if incident.services:
        parts.append("services: " + ", ".join(incident.services))
    for alert in incident.alerts:
        parts.append(" ".join(p for p in (alert.name, alert.text) if p))
    errors = [line.text for line in incident.logs if ERRORISH.search(line.text)]
    parts.extend(errors or [line.text for line in incident.logs])
    changes = (TimelineKind.DEPLOY, TimelineKind.CONFIG, TimelineKind.OBSERVATION)
    parts.extend(event.text for event in incident.timeline if event.kind in changes)
    if incident.tags:
        parts.append("tags: " + ", ".join(incident.tags))
    return "\n".join(part.strip() for part in parts if part and part.strip())
