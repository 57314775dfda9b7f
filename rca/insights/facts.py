"""Postmortem facts: what the insights count of each postmortem, found once per revision.

Failure modes come from the drafting library (`rca/drafting/remedies.yaml`), matched on the
postmortem's root causes and trigger (its contributing factors when those show none); the
services "in the causal chain" are the postmortem's services that a chain node names.

Finding them takes about a millisecond a postmortem, so a large import is not caught up inside a
request: `rca import` refreshes them all after importing, and the draft workers refresh them
between jobs; a report refreshes at most `REQUEST_LIMIT` itself (`catch_up`) and says how many
it had to leave out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rca.domain import Postmortem
from rca.drafting.remedies import Library, default_library, detect
from rca.store.engine import read_transaction
from rca.store.postmortem_columns import fact_version
from rca.store.postmortem_facts import replace_facts, stale_count, stale_postmortems
from rca.store.readback import postmortem_from_stored
from rca.store.records import Store

BATCH = 200
REQUEST_LIMIT = 100
"""How many postmortems' facts a report finds itself before answering (about 0.1 s at most)."""


def facts_of(pm: Postmortem, library: Library | None = None) -> Iterator[tuple[str, str]]:
    """(kind, value) pairs: `service`, `failure_mode`, `factor_category`, `chain_service`."""
    for service in pm.services:
        yield "service", service
    trigger: tuple[str, list[str]] | None = (pm.trigger, []) if pm.trigger else None
    found = detect([(c, []) for c in pm.root_causes], trigger, {}, library)
    if not found:
        found = detect([(f.text, []) for f in pm.contributing_factors], None, {}, library)
    for detected in found:
        yield "failure_mode", detected.mode.id
    for factor in pm.contributing_factors:
        yield "factor_category", factor.category.value
    chain = " ".join(node.text for node in pm.causal_chain)
    for service in pm.services:
        if re.search(rf"(?<![\w-]){re.escape(service)}(?![\w-])", chain, re.IGNORECASE):
            yield "chain_service", service


def refresh(store: Store, limit: int | None = None) -> int:
    """Find the facts of every postmortem whose facts are missing or stale (at most `limit`);
    how many were refreshed. Cheap when none is: one indexed query."""
    library = default_library()
    done = 0
    while limit is None or done < limit:
        want = BATCH if limit is None else min(BATCH, limit - done)
        stale = stale_postmortems(store.engine, want)
        if not stale:
            break
        found = []
        for row in stale:
            pm = postmortem_from_stored(row.id, row.document)[0]
            found.append((row.id, row.revision, list(facts_of(pm, library))))
        replace_facts(store.engine, found)
        done += len(stale)
        if len(stale) < want:
            break
    return done


def catch_up(store: Store, limit: int | None = None) -> int:
    """Refresh the facts of at most `limit` (default `REQUEST_LIMIT`) stale postmortems; how
    many are still stale. One cheap query when none is."""
    with read_transaction(store.engine) as conn:
        if not fact_version(conn).stale:
            return 0
    refresh(store, REQUEST_LIMIT if limit is None else limit)
    return stale_count(store.engine)
