"""Proposing recurrences: which past postmortems a postmortem may repeat.

A past postmortem among the most similar ones (similar-incident search on the postmortem's own
text) is proposed when it shows a failure mode of the same library the drafts use, or when it
shares a service and ranks among the three most similar. Only a reviewer makes it a
recurrence; a proposal says why it was made.
"""

from __future__ import annotations

from collections.abc import Sequence

from rca.domain import Postmortem
from rca.domain.similar import SimilarHit
from rca.drafting.remedies import Library, default_library
from rca.errors import NotFound
from rca.insights.facts import facts_of
from rca.store.records import Store
from rca.store.recurrences import Proposal

CLOSE_RANK = 3
"""A hit this close (1-based rank) that shares a service is proposed without a shared mode."""


def query_text(pm: Postmortem) -> str:
    """What a postmortem is searched with: its title, summary, trigger and root causes."""
    parts = [pm.title, pm.summary, pm.trigger or "", *pm.root_causes]
    return "\n".join(p for p in parts if p)[:4_000]


def proposals(store: Store, pm: Postmortem, hits: Sequence[SimilarHit]) -> list[Proposal]:
    """The hits worth a reviewer's look as recurrences of `pm`, with the reasons."""
    library = default_library()
    names = {m.id: m.name for m in library.modes}
    mine = _modes(pm, library)
    past = [h for h in hits if h.postmortem_id != pm.id and _before(h, pm)]
    found = []
    for rank, hit in enumerate(past, start=1):
        try:
            theirs = _modes(store.get_postmortem(hit.postmortem_id).postmortem, library)
        except NotFound:  # deleted since it was indexed
            continue
        shared = sorted(mine & theirs)
        services = sorted(set(pm.services) & set(hit.services))
        if not shared and not (services and rank <= CLOSE_RANK):
            continue
        reasons = [f"same failure mode: {names.get(m, m)}" for m in shared]
        reasons += [f"same service: {s}" for s in services]
        reasons.append(f"similar incident #{rank} (score {hit.score:.3f})")
        found.append(Proposal(hit.postmortem_id, round(hit.score, 4), reasons))
    return found


def _modes(pm: Postmortem, library: Library) -> set[str]:
    return {v for k, v in facts_of(pm, library) if k == "failure_mode"}


def _before(hit: SimilarHit, pm: Postmortem) -> bool:
    return pm.date is None or hit.date is None or hit.date <= pm.date
