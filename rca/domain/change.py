"""A change event: a deploy, a configuration change or a feature-flag flip on one service.

Changes arrive as a feed (`POST /v1/changes`, the GitHub webhook), independent of any incident;
drafting attaches those on an incident's services shortly before it started as candidate
triggers, so the analysis does not depend on someone pasting the deploy line into it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import StringConstraints

from rca.domain.incident import TimelineEvent
from rca.domain.values import (
    Frozen,
    Identifier,
    Line,
    Name,
    RequiredText,
    TimelineKind,
    Timestamp,
)

ExternalId = Annotated[str, StringConstraints(pattern=r"^[!-~]{1,300}$")]
"""Another tool's id: 1 to 300 printable ASCII characters, no spaces."""


class ChangeKind(StrEnum):
    """What changed."""

    DEPLOY = "deploy"
    """A new version of the service's code."""
    CONFIG = "config"
    """A configuration change."""
    FLAG = "flag"
    """A feature flag turned on, off or re-targeted."""


class ChangeEvent(Frozen):
    """A change as a tool or a person reports it."""

    kind: ChangeKind
    """What changed."""
    service: Name
    """The service it changed."""
    at: Timestamp
    """When it took effect."""
    summary: Annotated[RequiredText, StringConstraints(max_length=4_000)]
    """What changed, in a sentence or two."""
    version: Name | None = None
    """The version deployed or the revision of the configuration, if any."""
    link: Line | None = None
    """Where to read more (a pipeline run, a pull request); kept as text, never fetched."""
    actor: Name | None = None
    """Who or what made the change."""
    external_id: ExternalId | None = None
    """The sender's own id for the change (a CI run, a deployment status); a second event with
    it is a repeat, not stored again."""


class StoredChange(Frozen):
    """A change in the feed."""

    id: Identifier
    """The feed's id for it (`chg-...`)."""
    kind: ChangeKind
    """What changed."""
    service: Name
    """The service it changed."""
    at: Timestamp
    """When it took effect."""
    summary: str
    """What changed."""
    version: str | None
    """The version or revision, if any."""
    link: str | None
    """Where to read more, as sent."""
    actor: str | None
    """Who or what made the change."""
    external_id: str | None
    """The sender's id for it, if it gave one."""
    source: str
    """How it arrived: `api:<key id>`, `github:<integration id>`."""
    known_service: bool
    """False when no incident or postmortem names the service (stored, and flagged)."""
    created_at: datetime
    """When the feed received it."""


_SAYS = {
    ChangeKind.DEPLOY: "Deploy",
    ChangeKind.CONFIG: "Config change",
    ChangeKind.FLAG: "Flag change",
}
_TIMELINE_KIND = {
    ChangeKind.DEPLOY: TimelineKind.DEPLOY,
    ChangeKind.CONFIG: TimelineKind.CONFIG,
    ChangeKind.FLAG: TimelineKind.CONFIG,
}


def as_timeline_event(change: StoredChange) -> TimelineEvent:
    """The change as an incident timeline event (id `change-<feed id>`, so attaching it twice
    adds it once). The link stays in the feed: drafts cite the event, not a URL."""
    version = f" (version {change.version})" if change.version else ""
    return TimelineEvent(
        id=f"change-{change.id}",
        at=change.at,
        kind=_TIMELINE_KIND[change.kind],
        actor=change.actor,
        text=f"{_SAYS[change.kind]} of {change.service}{version}: {change.summary}",
    )
