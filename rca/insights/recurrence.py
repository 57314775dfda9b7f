"""Proposing recurrences: which past postmortems a postmortem may repeat.

A past postmortem among the five most similar ones (similar-incident search on the
postmortem's own text) is proposed when its root causes or trigger show a failure mode of the
library the drafts use that this postmortem's show too (a mode of detection or recovery,
like late alerting, does not count). Sharing a service is not enough: in a
real organisation a handful of services appear in most incidents. Only a reviewer makes a
proposal a recurrence; a proposal says why it was made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rca.domain import Postmortem
from rca.domain.similar import SimilarHit
from rca.drafting.remedies import Library, default_library
from rca.errors import NotFound
from rca.insights.facts import facts_of
from rca.store.records import Store
from rca.store.recurrences import Proposal, propose

CANDIDATES = 10
"""Similar past postmortems looked at when proposing recurrences."""
CLOSE_RANK = 5
"""Only hits this close (1-based rank among the past ones) are proposed."""
RESPONSE_MODES = frozenset({"late-alerting", "slow-rollback"})
"""Modes that say how an incident was detected or recovered from, not what failed: sharing
one is not the same failure."""


def query_text(pm: Postmortem) -> str:
    """What a postmortem is searched with: its title, summary, trigger and root causes."""
    parts = [pm.title, pm.summary, pm.trigger or "", *pm.root_causes]
    return "\n".join(p for p in parts if p)[:4_000]


def proposals(store: Store, pm: Postmortem, hits: Sequence[SimilarHit]) -> list[Proposal]:
    """The hits worth a reviewer's look as recurrences of `pm`, with the reasons."""
    library = default_library()
    names = {m.id: m.name for m in library.modes}
    mine = _modes(pm, library)
    if not mine:
        return []
    past = [h for h in hits if h.postmortem_id != pm.id and _before(h, pm)]
    found = []
    for rank, hit in enumerate(past[:CLOSE_RANK], start=1):
        try:
            theirs = _modes(store.get_postmortem(hit.postmortem_id).postmortem, library)
        except NotFound:  # deleted since it was indexed
            continue
        shared = sorted(mine & theirs)
        services = sorted(set(pm.services) & set(hit.services))
        if not shared:
            continue
        reasons = [f"same failure mode: {names.get(m, m)}" for m in shared]
        reasons += [f"same service: {s}" for s in services]
        reasons.append(f"similar incident #{rank} (score {hit.score:.3f})")
        found.append(Proposal(hit.postmortem_id, round(hit.score, 4), reasons))
    return found


def _modes(pm: Postmortem, library: Library) -> set[str]:
    found = {v for k, v in facts_of(pm, library) if k == "failure_mode"}
    return found - RESPONSE_MODES


def _before(hit: SimilarHit, pm: Postmortem) -> bool:
    return pm.date is None or hit.date is None or hit.date <= pm.date


Search = Callable[[str, int], Sequence[SimilarHit]]
"""Similar-incident search: (query text, how many) → hits, best first."""


def propose_recurrences(store: Store, search: Search, postmortem_id: str) -> int:
    """Propose links from a postmortem to past ones of the same failure (similar search on
    its own text plus the failure-mode library); how many new proposals (a pair already
    proposed or decided stays as it is)."""
    pm = store.get_postmortem(postmortem_id).postmortem
    hits = search(query_text(pm), CANDIDATES)
    return propose(store.engine, pm.id, proposals(store, pm, hits))
