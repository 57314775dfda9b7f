"""The recurrence links between postmortems: proposed when a postmortem is finalized, then
confirmed or dismissed by a reviewer. Declared on `rca.store.engine.metadata` (migration 0010)."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, String, Table, Text

from rca.store.engine import ID, UTCDateTime, metadata

recurrence_links = Table(
    "recurrence_links",
    metadata,
    Column("postmortem_id", ID, ForeignKey("postmortems.id"), primary_key=True),
    Column("past_postmortem_id", ID, ForeignKey("postmortems.id"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("open_actions", Text, nullable=False),
    Column("proposed_at", UTCDateTime, nullable=False),
    Column("decided_by", String(100), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
)
"""`postmortem_id` may be a recurrence of `past_postmortem_id`: `proposed`, `confirmed` or
`dismissed`; `reasons` (JSON) say why it was proposed; `open_actions` (JSON) are the past
postmortem's action items still open when the recurrence was confirmed."""
Index("ix_recurrence_links_past", recurrence_links.c.past_postmortem_id)
