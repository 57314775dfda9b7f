"""The events rca sends to webhook subscribers, each queued inside the write transaction that
caused it (see `rca.store.webhooks.enqueue`).

Payloads are small and point at the API for the rest: ids, titles, statuses, counts and
`/v1/...` paths. A draft's event carries no incident text and no draft text (a receiver with a
read key fetches what it may see); a postmortem's title and its action items' text are as
finalized, which is to say redacted.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, select

from rca.domain import ActionItem, ActionStatus, Draft, Postmortem
from rca.store.action_items import ActionItemRow
from rca.store.action_rules import item_keys
from rca.store.engine import drafts, postmortem_revisions
from rca.store.webhooks import WebhookEvent, enqueue, subscribed


def _path(*parts: str | int) -> str:
    return "/v1/" + "/".join(quote(str(p), safe="") for p in parts)


def _action(postmortem_id: str, item: int, key: str, action: ActionItem) -> dict[str, Any]:
    return {
        "postmortem_id": postmortem_id,
        "item": item,
        "key": key,
        "text": action.text,
        "kind": action.kind.value,
        "priority": action.priority.value,
        "owner": action.owner,
        "status": action.status.value,
        "links": {
            "action_items": f"{_path('action-items')}?postmortem_id={quote(postmortem_id)}",
            "postmortem": _path("postmortems", postmortem_id),
        },
    }


def draft_succeeded(conn: Connection, draft_id: str, draft: Draft) -> None:
    """`draft.succeeded`: the draft's ids, model, incident revision and suggestion counts."""
    if not subscribed(conn, WebhookEvent.DRAFT_SUCCEEDED):
        return
    revision = conn.execute(
        select(drafts.c.incident_revision).where(drafts.c.id == draft_id)
    ).scalar_one_or_none()
    sections = Counter(s.section.value for s in draft.suggestions)
    data = {
        "draft_id": draft_id,
        "incident_id": draft.incident_id,
        "model": draft.model,
        "prompt_version": draft.prompt_version,
        "incident_revision": revision,
        "degraded": draft.degraded,
        "suggestions": len(draft.suggestions),
        "suggestions_by_section": dict(sorted(sections.items())),
        "similar_postmortems": len(draft.similar_postmortem_ids),
        "links": {
            "draft": _path("drafts", draft_id),
            "incident": _path("incidents", draft.incident_id),
        },
    }
    enqueue(conn, WebhookEvent.DRAFT_SUCCEEDED, data)


def postmortem_finalized(
    conn: Connection, postmortem: Postmortem, revision: int, new: bool, draft_id: str, actor: str
) -> None:
    """`postmortem.finalized`, then `action_item.created` for each action item the revision
    brings (all of revision 1's; on a later one, those whose key the previous lacked: see
    `rca.store.action_rules`).
    `new` is false when finalizing saved nothing new (the same content again)."""
    links = {
        "postmortem": _path("postmortems", postmortem.id),
        "draft": _path("drafts", draft_id),
        "incident": _path("incidents", postmortem.incident_id) if postmortem.incident_id else None,
    }
    enqueue(
        conn,
        WebhookEvent.POSTMORTEM_FINALIZED,
        {
            "postmortem_id": postmortem.id,
            "revision": revision,
            "title": postmortem.title,
            "severity": postmortem.severity.value if postmortem.severity else None,
            "incident_id": postmortem.incident_id,
            "draft_id": draft_id,
            "finalized_by": actor,
            "action_items": len(postmortem.action_items),
            "links": links,
        },
    )
    if not new or not subscribed(conn, WebhookEvent.ACTION_ITEM_CREATED):
        return
    before: set[str] = set()  # the keys of the previous revision's items
    if revision > 1:
        document = conn.execute(
            select(postmortem_revisions.c.document).where(
                postmortem_revisions.c.postmortem_id == postmortem.id,
                postmortem_revisions.c.revision == revision - 1,
            )
        ).scalar_one_or_none()
        items = json.loads(document).get("action_items", []) if document else []
        before = set(item_keys(str(i.get("text")) for i in items if isinstance(i, dict)))
    keys = item_keys(a.text for a in postmortem.action_items)
    for index, (key, action) in enumerate(zip(keys, postmortem.action_items, strict=True)):
        if key not in before:
            data = _action(postmortem.id, index, key, action)
            enqueue(conn, WebhookEvent.ACTION_ITEM_CREATED, {**data, "revision": revision})


def action_item_updated(
    conn: Connection, row: ActionItemRow, previous: ActionStatus, actor: str
) -> None:
    """`action_item.updated`: the item as it now stands (with its key, due date and tracker
    reference), its previous status and who moved it."""
    data = _action(row.postmortem_id, row.item, row.key, row.action)
    data.update(
        postmortem_title=row.postmortem_title,
        previous_status=previous.value,
        updated_by=actor,
        due_on=row.due_on.isoformat() if row.due_on else None,
        overdue=row.overdue,
        tracker_key=row.tracker_key,
        tracker_url=row.tracker_url,
    )
    enqueue(conn, WebhookEvent.ACTION_ITEM_UPDATED, data)
