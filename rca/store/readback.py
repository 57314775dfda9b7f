"""Reading back what the store holds, which an older version (or a row written by hand) may have
let past today's checks: a time outside 1970-2200, even one whose conversion to UTC overflows,
or a list over its ceiling.

Such a document still loads: what breaks today's rules is set aside, each with a `SetAside`
saying where it was and what it held, so that pages show the note and drafts carry it instead
of failing on the value. What comes out is valid under today's rules. An incident whose start
is not a usable time cannot be set right this way; reading it is a clear error that names the
field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from rca.domain import CausalNode, DraftNote, Incident, NoteKind, Postmortem
from rca.domain.postmortem import LIST_LIMITS, MAX_CHAIN_NODES, MAX_LIST_ITEMS, MAX_NODE_LINKS
from rca.domain.values import AS_STORED, time_problem
from rca.errors import InvalidInput, Problem

_MOMENTS = ("detected_at", "mitigated_at", "resolved_at")
_EVIDENCE = ("alerts", "timeline", "logs", "chat")


@dataclass(frozen=True)
class SetAside:
    """Something a stored document held that today's rules refuse, left out on reading."""

    where: str
    """The field, as `alerts[0].at` or `causal_chain`."""
    message: str
    """What it held and what was left out."""
    evidence_id: str | None = None
    """The evidence item left out, if one was."""

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _bad_time(where: str, value: datetime, what: str, evidence_id: str | None = None) -> SetAside:
    reason = time_problem(value) or "not usable"
    return SetAside(
        where,
        f"{value.isoformat()} is not a usable time ({reason}); {what} was left out",
        evidence_id,
    )


def _trimmed(where: str, count: int, limit: int, what: str) -> SetAside:
    return SetAside(where, f"{count} {what} stored, more than {limit}; the rest was left out")


def _unreadable(kind: str, ident: str, err: ValidationError) -> InvalidInput:
    return InvalidInput(
        [
            Problem(
                f"{e['msg']}; import a corrected copy",
                path=f"stored {kind} {ident!r}",
                location=".".join(str(p) for p in e["loc"]) or None,
            )
            for e in err.errors(include_url=False)[:10]
        ]
    )


def incident_from_stored(ident: str, document: str | bytes) -> tuple[Incident, list[SetAside]]:
    """A stored incident, without the evidence items and moments whose time is not usable;
    InvalidInput if the document is not an incident or its start is not a usable time."""
    try:
        incident = Incident.model_validate_json(document, context=AS_STORED)
    except ValidationError as err:
        raise _unreadable("incident", ident, err) from None
    if (problem := time_problem(incident.started_at)) is not None:
        reason = f"{incident.started_at.isoformat()} is not a usable time ({problem})"
        raise InvalidInput(
            [
                Problem(
                    f"{reason}; import a corrected copy (rca import)",
                    path=f"stored incident {ident!r}",
                    location="started_at",
                )
            ]
        )
    set_aside: list[SetAside] = []
    changes: dict[str, Any] = {}
    for name in _MOMENTS:
        moment: datetime | None = getattr(incident, name)
        if moment is not None and time_problem(moment) is not None:
            set_aside.append(_bad_time(name, moment, "it"))
            changes[name] = None
    for group in _EVIDENCE:
        items = getattr(incident, group)
        kept = []
        for index, item in enumerate(items):
            if time_problem(item.at) is None:
                kept.append(item)
            else:
                where = f"{group}[{index}].at"
                set_aside.append(_bad_time(where, item.at, f"evidence {item.id}", item.id))
        if len(kept) < len(items):
            changes[group] = kept
    return (incident.model_copy(update=changes) if changes else incident), set_aside


def postmortem_from_stored(ident: str, document: str | bytes) -> tuple[Postmortem, list[SetAside]]:
    """A stored postmortem, without the timeline entries whose time is not usable and cut to
    the ceiling of each list; InvalidInput if the document is not a postmortem."""
    try:
        pm = Postmortem.model_validate_json(document, context=AS_STORED)
    except ValidationError as err:
        raise _unreadable("postmortem", ident, err) from None
    set_aside: list[SetAside] = []
    changes: dict[str, Any] = {}
    timeline = []
    for index, entry in enumerate(pm.timeline):
        if time_problem(entry.at) is None:
            timeline.append(entry)
        else:
            set_aside.append(_bad_time(f"timeline[{index}].at", entry.at, "the entry"))
    if len(timeline) < len(pm.timeline):
        changes["timeline"] = timeline
    for name, (limit, what) in LIST_LIMITS.items():
        items = changes.get(name, getattr(pm, name))
        if len(items) > limit:
            set_aside.append(_trimmed(name, len(items), limit, what))
            changes[name] = items[:limit]
    chain = _chain_within_limits(pm.causal_chain, set_aside)
    if chain is not None:
        changes["causal_chain"] = chain
    lessons: dict[str, list[str]] = {}
    for heading in ("went_well", "went_wrong", "lucky"):
        items = getattr(pm.lessons, heading)
        if len(items) > MAX_LIST_ITEMS:
            set_aside.append(_trimmed(f"lessons.{heading}", len(items), MAX_LIST_ITEMS, "lessons"))
            lessons[heading] = items[:MAX_LIST_ITEMS]
    if lessons:
        changes["lessons"] = pm.lessons.model_copy(update=lessons)
    return (pm.model_copy(update=changes) if changes else pm), set_aside


def _chain_within_limits(nodes: list[CausalNode], notes: list[SetAside]) -> list[CausalNode] | None:
    """The first `MAX_CHAIN_NODES` nodes with at most `MAX_NODE_LINKS` links each, none to a node
    left out (None when the chain is within its limits already)."""
    too_many_links = [n.id for n in nodes if len(n.leads_to) > MAX_NODE_LINKS]
    if len(nodes) <= MAX_CHAIN_NODES and not too_many_links:
        return None
    if len(nodes) > MAX_CHAIN_NODES:
        notes.append(_trimmed("causal_chain", len(nodes), MAX_CHAIN_NODES, "nodes"))
    for node_id in too_many_links:
        notes.append(
            SetAside("causal_chain", f"node {node_id}: links past {MAX_NODE_LINKS} left out")
        )
    kept = nodes[:MAX_CHAIN_NODES]
    ids = {n.id for n in kept}
    return [
        n.model_copy(update={"leads_to": [t for t in n.leads_to if t in ids][:MAX_NODE_LINKS]})
        for n in kept
    ]


def draft_notes(set_aside: list[SetAside]) -> list[DraftNote]:
    """Notes telling a draft's reviewer what of its incident was left out, and why."""
    return [
        DraftNote(
            kind=NoteKind.EVIDENCE_OMITTED,
            message=str(item)[:2_000],
            evidence_ids=[item.evidence_id] if item.evidence_id else [],
        )
        for item in set_aside
    ]
