"""Request and response bodies of the postmortem, action-item and admin endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as CalendarDate

from pydantic import BaseModel, ConfigDict, Field

from api.schemas_actions import ActionItemPublic as ActionItemPublic  # re-exported
from api.schemas_actions import ActionItemUpdate as ActionItemUpdate  # re-exported
from rca.domain import Postmortem, Severity
from rca.store import ActionItemRow, Outcome, PostmortemSummary, SaveResult, StoredPostmortem
from rca.store.keys import KeyInfo, Role
from retrieval.indexer import CheckReport, SyncReport

MAX_IDS = 100
"""At most this many postmortem ids of each kind in an index check's answer."""


# --- postmortems ---------------------------------------------------------------------------


class PostmortemImported(BaseModel):
    """What an import did: `created`, `revised` (a new revision) or `unchanged`."""

    id: str
    """The postmortem."""
    revision: int | None
    """Its latest revision: the new one, or the stored one when unchanged."""
    outcome: Outcome
    """created, revised or unchanged."""

    @classmethod
    def of(cls, saved: SaveResult) -> PostmortemImported:
        """The public view of a save."""
        return cls(id=saved.id, revision=saved.revision, outcome=saved.outcome)


class PostmortemListItem(BaseModel):
    """A postmortem in a list."""

    id: str
    """The postmortem."""
    title: str
    """Its title."""
    date: CalendarDate | None
    """The day the incident started."""
    severity: Severity | None
    """How bad it was."""
    latest_revision: int
    """Its newest revision."""
    updated_at: datetime
    """When the newest revision was stored."""

    @classmethod
    def of(cls, row: PostmortemSummary) -> PostmortemListItem:
        """The public view of a listing row."""
        return cls.model_validate(vars(row))


class PostmortemPublic(BaseModel):
    """One postmortem revision, with its action items' current status.

    Revisions never change; action-item statuses are tracked beside them and apply to the
    latest revision: there they replace the statuses in `postmortem.action_items`. An older
    revision is shown as it was recorded.
    """

    postmortem: Postmortem
    """The revision's content (latest revision: action-item statuses are the current ones)."""
    revision: int
    """This revision."""
    latest_revision: int
    """The newest revision."""
    source: str
    """Where this revision came from (a file, `api:<key id>`, `draft:<id>`)."""
    created_at: datetime
    """When this revision was stored."""
    action_items: list[ActionItemPublic]
    """The action items with their index, status and who last updated it."""

    @classmethod
    def of(cls, stored: StoredPostmortem, rows: list[ActionItemRow]) -> PostmortemPublic:
        """The public view of a stored revision, its action items as given."""
        pm = stored.postmortem.model_copy(update={"action_items": [r.action for r in rows]})
        return cls(
            postmortem=pm,
            revision=stored.revision,
            latest_revision=stored.latest_revision,
            source=stored.source,
            created_at=stored.created_at,
            action_items=[ActionItemPublic.of(r) for r in rows],
        )


# --- admin ---------------------------------------------------------------------------------


class KeyCreate(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    """Whose or what it is for."""
    role: Role
    """engineer, reviewer or admin."""
    expires_days: int | None = Field(default=None, ge=1, le=3650)
    """Days until it expires (default: never)."""


class KeyPublic(BaseModel):
    """A stored API key, without its secret."""

    id: str
    """The key's public id (its prefix)."""
    name: str
    """Whose or what it is for."""
    role: Role
    """What it may do."""
    created_at: datetime
    """When it was created."""
    expires_at: datetime | None
    """When it expires (null: never)."""
    revoked_at: datetime | None
    """When it was revoked (null: not revoked)."""
    active: bool
    """Neither revoked nor expired."""

    @classmethod
    def of(cls, info: KeyInfo) -> KeyPublic:
        """The public view of a key."""
        return cls(
            id=info.id,
            name=info.name,
            role=info.role,
            created_at=info.created_at,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
            active=info.active(datetime.now(UTC)),
        )


class KeyCreated(KeyPublic):
    """A new API key, with the full key: shown this once, stored only as a hash."""

    key: str
    """The full key for `Authorization: Bearer <key>`."""


class IndexSyncResult(BaseModel):
    """What an index sync did."""

    postmortems: int
    """Postmortems (re)indexed."""
    chunks: int
    """Chunks written."""
    rebuilt: bool
    """Whether the collection was missing and rebuilt from the store."""

    @classmethod
    def of(cls, report: SyncReport) -> IndexSyncResult:
        """The public view of a sync report."""
        return cls(postmortems=report.postmortems, chunks=report.chunks, rebuilt=report.rebuilt)


class IndexCheckResult(BaseModel):
    """Drift between the store and the vector index, and whether it was repaired."""

    collection: str
    """The active vector collection."""
    expected_chunks: int
    """Chunks the store's latest revisions make."""
    indexed_chunks: int
    """Chunks in the index (after the repair, if one ran)."""
    missing: int
    """Postmortems not in the index."""
    stale: int
    """Postmortems indexed at another revision or with other chunks."""
    orphans: int
    """Indexed postmortems the store does not have."""
    missing_ids: list[str]
    """Up to 100 of the missing postmortems."""
    stale_ids: list[str]
    """Up to 100 of the stale postmortems."""
    orphan_ids: list[str]
    """Up to 100 of the orphans."""
    in_sync: bool
    """True when nothing was found wrong (before any repair)."""
    repaired: bool
    """Whether drift was repaired."""
    rebuilt: bool
    """Whether the collection was missing and rebuilt."""

    @classmethod
    def of(cls, report: CheckReport) -> IndexCheckResult:
        """The public view of a check report."""
        return cls(
            collection=report.collection,
            expected_chunks=report.expected_chunks,
            indexed_chunks=report.indexed_chunks,
            missing=len(report.missing),
            stale=len(report.stale),
            orphans=len(report.orphans),
            missing_ids=report.missing[:MAX_IDS],
            stale_ids=report.stale[:MAX_IDS],
            orphan_ids=report.orphans[:MAX_IDS],
            in_sync=report.in_sync,
            repaired=report.repaired,
            rebuilt=report.rebuilt,
        )
