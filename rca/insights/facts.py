"""Postmortem facts: what the insights count of each postmortem, found once per revision.

Failure modes come from the drafting library (`rca/drafting/remedies.yaml`), matched on the
postmortem's root causes and trigger (its contributing factors when those show none); the
services "in the causal chain" are the postmortem's services that a chain node names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from rca.domain import Postmortem
from rca.drafting.remedies import Library, default_library, detect
from rca.store.postmortem_facts import replace_facts, stale_postmortems
from rca.store.readback import postmortem_from_stored
from rca.store.records import Store

BATCH = 200


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
