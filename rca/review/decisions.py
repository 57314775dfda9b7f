"""Reviewing a draft suggestion by suggestion, and finalizing it into a postmortem.

Every decision names the draft version it was made on (the API's `If-Match`): if the draft
changed meanwhile the decision is refused with the current version (412), so two reviewers
editing the same suggestion cannot overwrite each other. A decision bumps the draft's version
and the suggestion's, is recorded with the content before and after, and lands in the audit
trail. A reviewer's edit is checked for blaming language; the flags are stored and returned.

Finalizing turns accepted and edited suggestions (pending and rejected ones are left out) into a
postmortem revision — saved, queued for indexing through the outbox, and linked from the
draft — in one transaction; a finalized draft accepts no further decisions. The postmortem is
derived text, read by more people than the incident: it is redacted whole (the title, services
and tags it takes from the incident, and every reviewer's edit) with the placeholders the
draft used. The incident itself, the evidence, stays as it was stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine, insert, select, update

from rca.domain import (
    ActionItem,
    CausalNode,
    ContributingFactor,
    Draft,
    Incident,
    LanguageFlag,
    LessonContent,
    Lessons,
    Postmortem,
    PostmortemTimelineEntry,
    ReviewDecision,
    ReviewStatus,
    Suggestion,
    SuggestionContent,
    SuggestionSection,
    check_causal_chain,
)
from rca.domain.values import AS_STORED
from rca.drafting.assembly import people_of
from rca.drafting.blameless import check_blameless
from rca.errors import Conflict, InvalidArgument, NotFound, PreconditionFailed
from rca.redaction import Redactor, redact_incident, redact_postmortem
from rca.store import Outcome, SaveResult, audit, save_postmortem_in, webhook_events
from rca.store.engine import drafts, postmortems, reviews, write_transaction
from rca.store.jobs import JobStatus

_STATUS = {
    ReviewDecision.ACCEPT: ReviewStatus.ACCEPTED,
    ReviewDecision.EDIT: ReviewStatus.EDITED,
    ReviewDecision.REJECT: ReviewStatus.REJECTED,
}
_KEPT = (ReviewStatus.ACCEPTED, ReviewStatus.EDITED)
_TEXT_SECTIONS = {
    SuggestionSection.SUMMARY,
    SuggestionSection.IMPACT,
    SuggestionSection.TRIGGER,
    SuggestionSection.ROOT_CAUSE,
    SuggestionSection.DETECTION,
    SuggestionSection.RESOLUTION,
}
_STRUCTURED: dict[SuggestionSection, TypeAdapter[Any]] = {
    SuggestionSection.CONTRIBUTING_FACTOR: TypeAdapter(ContributingFactor),
    SuggestionSection.CAUSAL_NODE: TypeAdapter(CausalNode),
    SuggestionSection.TIMELINE: TypeAdapter(PostmortemTimelineEntry),
    SuggestionSection.ACTION_ITEM: TypeAdapter(ActionItem),
    SuggestionSection.LESSON: TypeAdapter(LessonContent),
}


@dataclass(frozen=True)
class Decided:
    """The draft after a decision, and the blameless flags of an edit."""

    draft: Draft
    suggestion: Suggestion
    flags: list[LanguageFlag]


def parse_content(section: SuggestionSection, raw: Any) -> SuggestionContent:
    """A reviewer's edited content for `section`: a string for text sections, an object of the
    section's shape otherwise."""
    try:
        if section in _TEXT_SECTIONS:
            if not isinstance(raw, str) or not raw.strip():
                raise InvalidArgument(f"a {section.value} edit is a non-empty string")
            if len(raw) > 20_000:
                raise InvalidArgument("an edit is at most 20,000 characters")
            return raw.strip()
        content: SuggestionContent = _STRUCTURED[section].validate_python(raw)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "content"
        raise InvalidArgument(f"edited content: {where}: {first['msg']}") from None
    return content


def _text_of(content: SuggestionContent) -> str:
    return content if isinstance(content, str) else str(getattr(content, "text", ""))


class Reviews:
    """Decisions on drafts and their finalization; `redactor` redacts finalized postmortems
    (configure it as the drafts' one, so the placeholders match)."""

    def __init__(self, engine: Engine, redactor: Redactor | None = None) -> None:
        self.engine = engine
        self.redactor = redactor if redactor is not None else Redactor()

    def decide(
        self,
        draft_id: str,
        suggestion_id: str,
        decision: ReviewDecision,
        reviewer: str,
        if_match: int,
        edited: Any = None,
        incident: Incident | None = None,
    ) -> Decided:
        """Apply one decision made on version `if_match` of the draft."""
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(drafts).where(drafts.c.id == draft_id)).one_or_none()
            draft = _reviewable(row, draft_id, if_match)
            index = next(
                (i for i, s in enumerate(draft.suggestions) if s.id == suggestion_id), None
            )
            if index is None:
                raise NotFound("suggestion", suggestion_id)
            before = draft.suggestions[index]
            flags = before.flags
            content = before.content
            if decision is ReviewDecision.EDIT:
                if edited is None:
                    raise InvalidArgument("an edit needs the edited content")
                content = parse_content(before.section, edited)
                people = people_of(incident) if incident is not None else []
                flags = [
                    LanguageFlag(phrase=f.phrase, reason=f.reason, suggestion=f.suggestion)
                    for f in check_blameless(_text_of(content), people)
                ]
            elif edited is not None:
                raise InvalidArgument(f"a {decision.value} carries no edited content")
            after = before.model_copy(
                update={
                    "content": content,
                    "status": _STATUS[decision],
                    "version": before.version + 1,
                    "flags": flags,
                }
            )
            Suggestion.model_validate(after.model_dump())  # the section still fits its content
            suggestions = list(draft.suggestions)
            suggestions[index] = after
            new = draft.model_copy(update={"suggestions": suggestions, "version": if_match + 1})
            _write_draft(conn, draft_id, if_match, new)
            conn.execute(
                insert(reviews).values(
                    draft_id=draft_id,
                    suggestion_id=suggestion_id,
                    reviewer=reviewer,
                    decision=decision.value,
                    original=json.dumps(_dump(before.content)),
                    edited=json.dumps(_dump(content)) if decision is ReviewDecision.EDIT else None,
                    draft_version=new.version,
                    at=datetime.now(UTC),
                )
            )
            audit.record(
                conn,
                reviewer,
                f"suggestion.{_STATUS[decision].value}",
                "draft",
                draft_id,
                suggestion=suggestion_id,
                version=new.version,
                flags=len(flags),
            )
        return Decided(new, after, flags)

    def finalize(
        self, draft_id: str, reviewer: str, if_match: int, incident: Incident
    ) -> tuple[Draft, SaveResult]:
        """Turn the accepted and edited suggestions into a postmortem revision, redacted."""
        # The draft's placeholder table (redaction is deterministic), made before the write
        # lock is taken: a large incident takes a while.
        _, table = redact_incident(incident, self.redactor)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(drafts).where(drafts.c.id == draft_id)).one_or_none()
            draft = _reviewable(row, draft_id, if_match)
            ident = postmortem_id_for(conn, incident.id)
            made = redact_postmortem(postmortem_from(draft, incident), self.redactor, table)
            postmortem = made.model_copy(update={"id": ident})
            saved = save_postmortem_in(conn, postmortem, source=f"draft:{draft_id}")
            new = draft.model_copy(
                update={"version": if_match + 1, "finalized_postmortem_id": postmortem.id}
            )
            _write_draft(conn, draft_id, if_match, new, finalized=postmortem.id)
            kept = sum(
                s.status in (ReviewStatus.ACCEPTED, ReviewStatus.EDITED) for s in draft.suggestions
            )
            audit.record(
                conn,
                reviewer,
                "draft.finalized",
                "draft",
                draft_id,
                postmortem=postmortem.id,
                revision=saved.revision,
                kept=kept,
                pending=sum(s.status is ReviewStatus.PENDING for s in draft.suggestions),
            )
            new_revision = saved.outcome is not Outcome.UNCHANGED
            webhook_events.postmortem_finalized(
                conn, postmortem, saved.revision or 1, new_revision, draft_id, reviewer
            )
        return new, saved


def postmortem_id_for(conn: Any, incident_id: str) -> str:
    """The id a finalized draft of `incident_id` is saved under: the postmortem an earlier
    draft of the same incident was finalized into (a new revision of it), else a fresh id —
    `pm-<incident id>` when that is free and short enough, otherwise one made unique with a
    digest of the incident id. Never the id of a postmortem of another incident."""
    earlier = conn.execute(
        select(drafts.c.finalized_postmortem_id)
        .where(drafts.c.incident_id == incident_id, drafts.c.finalized_postmortem_id.is_not(None))
        .order_by(drafts.c.updated_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if earlier is not None:
        return str(earlier)
    digest = hashlib.sha256(incident_id.encode("utf-8")).hexdigest()
    natural = f"pm-{incident_id}"
    options = [natural] if len(natural) <= 128 else []
    options += [f"pm-{incident_id[:100]}-{digest[:12]}"]
    options += [f"pm-{incident_id[:100]}-{digest[:12]}-{n}" for n in range(2, 100)]
    for ident in options:
        taken = conn.execute(
            select(postmortems.c.id).where(postmortems.c.id == ident)
        ).scalar_one_or_none()
        if taken is None:
            return ident
    raise Conflict(f"no free postmortem id for incident {incident_id!r}")  # pragma: no cover


def _dump(content: SuggestionContent) -> Any:
    return content if isinstance(content, str) else content.model_dump(mode="json")


def _reviewable(row: Any, draft_id: str, if_match: int) -> Draft:
    if row is None:
        raise NotFound("draft", draft_id)
    if row.status != JobStatus.SUCCEEDED.value or row.document is None:
        raise Conflict(f"draft {draft_id!r} is {row.status}, not ready for review")
    if row.finalized_postmortem_id is not None:
        raise Conflict(
            f"draft {draft_id!r} was finalized into {row.finalized_postmortem_id!r} and is "
            "immutable",
            current_version=row.version,
        )
    if row.version != if_match:
        raise PreconditionFailed(
            f"draft {draft_id!r} is at version {row.version}, not {if_match}",
            current_version=row.version,
        )
    return Draft.model_validate_json(row.document, context=AS_STORED)


def _write_draft(
    conn: Any, draft_id: str, if_match: int, draft: Draft, finalized: str | None = None
) -> None:
    values: dict[str, Any] = {"document": draft.model_dump_json(), "version": draft.version}
    if finalized is not None:
        values["finalized_postmortem_id"] = finalized
    changed = conn.execute(
        update(drafts).where(drafts.c.id == draft_id, drafts.c.version == if_match).values(**values)
    ).rowcount
    if changed != 1:  # pragma: no cover - the write lock makes this unreachable on SQLite
        raise PreconditionFailed(f"draft {draft_id!r} changed meanwhile", current_version=-1)


def postmortem_from(draft: Draft, incident: Incident) -> Postmortem:
    """The postmortem the kept (accepted or edited) suggestions make."""
    kept = [
        s for s in draft.suggestions if s.status in (ReviewStatus.ACCEPTED, ReviewStatus.EDITED)
    ]

    def texts(section: SuggestionSection) -> list[str]:
        return [str(s.content) for s in kept if s.section is section]

    def joined(section: SuggestionSection) -> str | None:
        return "\n\n".join(texts(section)) or None

    summary = joined(SuggestionSection.SUMMARY)
    if summary is None:
        raise InvalidArgument("accept or edit a summary before finalizing")
    nodes: Sequence[CausalNode] = [s.content for s in kept if isinstance(s.content, CausalNode)]
    ids = {n.id for n in nodes}
    chain = [n.model_copy(update={"leads_to": [t for t in n.leads_to if t in ids]}) for n in nodes]
    check_causal_chain(chain)
    lessons: dict[str, list[str]] = {"went_well": [], "went_wrong": [], "lucky": []}
    for s in kept:
        if isinstance(s.content, LessonContent):
            lessons[s.content.heading].append(s.content.text)
    return Postmortem(
        id=f"pm-{incident.id}"[:128],
        incident_id=incident.id,
        title=incident.title,
        date=incident.started_at.date(),
        severity=incident.severity,
        services=incident.services,
        summary=summary,
        impact=joined(SuggestionSection.IMPACT),
        trigger=joined(SuggestionSection.TRIGGER),
        root_causes=texts(SuggestionSection.ROOT_CAUSE),
        contributing_factors=[s.content for s in kept if isinstance(s.content, ContributingFactor)],
        causal_chain=chain,
        detection=joined(SuggestionSection.DETECTION),
        resolution=joined(SuggestionSection.RESOLUTION),
        timeline=sorted(
            (s.content for s in kept if isinstance(s.content, PostmortemTimelineEntry)),
            key=lambda e: e.at,
        ),
        action_items=[s.content for s in kept if isinstance(s.content, ActionItem)],
        lessons=Lessons(**lessons),
        tags=incident.tags,
    )
