"""Request and response bodies of the action-item endpoints."""

from __future__ import annotations

from datetime import date as CalendarDate
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rca.domain import ActionKind, ActionStatus, Priority
from rca.store import ActionItemRow
from rca.store.action_rules import (
    MAX_TRACKER_KEY,
    MAX_TRACKER_URL,
    due_problem,
    tracker_key_problem,
    tracker_url_problem,
)
from rca.store.action_updates import KEEP, ActionChange, HistoryEntry


class ActionItemPublic(BaseModel):
    """An action item of a postmortem with its current follow-up status."""

    postmortem_id: str
    """The postmortem it belongs to."""
    postmortem_title: str
    """That postmortem's title."""
    item: int
    """Its position in the postmortem's `action_items`, 0-based (also accepted to name it)."""
    key: str
    """Its stable key, the id to update it by: a later revision that reorders the items keeps
    it (the same text, ignoring case, spacing and a final full stop, is the same item)."""
    text: str
    """What to do."""
    kind: ActionKind
    """What it does about the failure."""
    priority: Priority
    """MoSCoW priority."""
    owner: str | None
    """The team or role that owns it."""
    status: ActionStatus
    """The current status: the tracked one when it was updated, else the postmortem's."""
    updated_by: str | None
    """Who last updated the status (null: never updated through the API)."""
    updated_at: datetime | None
    """When."""
    due_on: CalendarDate | None
    """When it is due: the date a reviewer set, else the day it first appeared plus the days
    for its priority (`RCA_ACTIONS__*`); null for a won't-have without a date."""
    due_set: bool
    """Whether a reviewer set the due date."""
    overdue: bool
    """Open or in progress, and due before today (UTC)."""
    tracker_key: str | None
    """The issue it became in a tracker (`PROJ-123`)."""
    tracker_url: str | None
    """That issue's http(s) URL."""

    @classmethod
    def of(cls, row: ActionItemRow) -> ActionItemPublic:
        """The public view of an action item row."""
        action = row.action
        return cls(
            postmortem_id=row.postmortem_id,
            postmortem_title=row.postmortem_title,
            item=row.item,
            key=row.key,
            text=action.text,
            kind=action.kind,
            priority=action.priority,
            owner=action.owner,
            status=action.status,
            updated_by=row.updated_by,
            updated_at=row.updated_at,
            due_on=row.due_on,
            due_set=row.due_set,
            overdue=row.overdue,
            tracker_key=row.tracker_key,
            tracker_url=row.tracker_url,
        )


class ActionItemUpdate(BaseModel):
    """What to change about one action item: any of its status, due date and tracker
    reference (at least one); null clears a due date (back to the default) or a tracker
    field."""

    model_config = ConfigDict(extra="forbid")

    status: ActionStatus | None = None
    """open, in_progress, done or wont_do."""
    due_on: CalendarDate | None = None
    """The due date, `YYYY-MM-DD`, 1970-01-01 to 2200-12-31."""
    tracker_key: str | None = Field(default=None, max_length=MAX_TRACKER_KEY)
    """The issue's key in a tracker, one line."""
    tracker_url: str | None = Field(default=None, max_length=MAX_TRACKER_URL)
    """The issue's http or https URL, kept as text."""

    @field_validator("due_on", mode="before")
    @classmethod
    def _day_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str | CalendarDate):
            raise ValueError("a due date is a `YYYY-MM-DD` string")  # not a Unix time
        return value

    @field_validator("due_on")
    @classmethod
    def _due(cls, value: CalendarDate | None) -> CalendarDate | None:
        if value is not None and (problem := due_problem(value)):
            raise ValueError(problem)
        return value

    @field_validator("tracker_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and (problem := tracker_key_problem(value)):
            raise ValueError(problem)
        return value.strip() if value is not None else None

    @field_validator("tracker_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and (problem := tracker_url_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _something(self) -> ActionItemUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of status, due_on, tracker_key, tracker_url")
        if "status" in self.model_fields_set and self.status is None:
            raise ValueError("status cannot be null")
        return self

    def change(self) -> ActionChange:
        """The change to make: the fields given, the others kept."""
        given = self.model_fields_set

        def kept(name: str) -> Any:
            return getattr(self, name) if name in given else KEEP

        return ActionChange(
            status=self.status,
            due_on=kept("due_on"),
            tracker_key=kept("tracker_key"),
            tracker_url=kept("tracker_url"),
        )


class ActionHistoryPublic(BaseModel):
    """One change of an action item."""

    id: int
    """The entry's id (the history's order)."""
    at: datetime
    """When."""
    actor: str
    """Who: a person's key name, or the source of the revision that changed an untracked
    status."""
    field: str
    """status, due_on, tracker_key or tracker_url."""
    old: str | None
    """The value before (dates as `YYYY-MM-DD`; null: unset)."""
    new: str | None
    """The value after."""

    @classmethod
    def of(cls, entry: HistoryEntry) -> ActionHistoryPublic:
        """The public view of a history entry."""
        return cls.model_validate(vars(entry))


class OverdueCount(BaseModel):
    """How many action items are overdue."""

    today: CalendarDate
    """The day counted on (UTC)."""
    overdue: int
    """Open or in-progress items due before it."""
