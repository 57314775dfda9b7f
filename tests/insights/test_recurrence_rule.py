"""The recurrence proposal rule: a shared failure mode of the cause among the five most similar
past postmortems; a shared service, a shared way of detecting or recovering, a later
postmortem or a distant hit is not proposed."""

from __future__ import annotations

from typing import Any

from rca.domain import Postmortem
from rca.domain.similar import SimilarHit
from rca.insights.recurrence import CLOSE_RANK, proposals, propose_recurrences
from rca.store import Store
from rca.store.recurrences import recurrences_of
from tests.factories import postmortem_data

EXPIRY = "The TLS certificate expired because renewal was manual."
LATE = "There was no alert on the error rate, customers reported it first."


def _pm(store: Store, ident: str, day: str, cause: str, **kw: Any) -> Postmortem:
    pm = Postmortem.model_validate(
        postmortem_data(id=ident, date=day, root_causes=[cause], services=["api"], **kw)
    )
    store.save_postmortem(pm, "test")
    return pm


def _hit(pm: Postmortem, score: float = 0.03) -> SimilarHit:
    return SimilarHit(
        postmortem_id=pm.id,
        title=pm.title,
        score=score,
        revision=1,
        date=pm.date,
        services=pm.services,
    )


def test_only_a_shared_failure_mode_of_the_cause_is_proposed(store: Store) -> None:
    new = _pm(store, "pm-new", "2025-05-01", "The signing certificate expired overnight.")
    same = _pm(store, "pm-same", "2024-01-01", EXPIRY)
    service_only = _pm(store, "pm-svc", "2024-02-01", "A bad deploy broke the parser.")
    later = _pm(store, "pm-later", "2025-09-01", EXPIRY)
    hits = [_hit(service_only, 0.05), _hit(later, 0.04), _hit(same)]
    found = proposals(store, new, hits)
    assert [p.past_postmortem_id for p in found] == ["pm-same"]
    assert found[0].reasons[0] == "same failure mode: credential or certificate expiry"
    assert found[0].reasons[-1] == "similar incident #2 (score 0.030)"


def test_detection_alone_distant_hits_and_causeless_postmortems_are_not_proposed(
    store: Store,
) -> None:
    new = _pm(store, "pm-new", "2025-05-01", LATE)
    old = _pm(store, "pm-old", "2024-01-01", LATE)
    assert proposals(store, new, [_hit(old)]) == []  # late alerting: how, not what
    expiry = _pm(store, "pm-exp", "2025-06-01", EXPIRY)
    fillers = [_pm(store, f"pm-f{n}", "2024-03-01", f"Unrelated cause {n}.") for n in range(5)]
    old_expiry = _pm(store, "pm-old-exp", "2023-01-01", EXPIRY)
    hits = [_hit(f) for f in fillers] + [_hit(old_expiry)]
    assert len(hits) > CLOSE_RANK and proposals(store, expiry, hits) == []
    assert [p.past_postmortem_id for p in proposals(store, expiry, hits[-1:])] == ["pm-old-exp"]


def test_proposing_stores_each_pair_once(store: Store) -> None:
    new = _pm(store, "pm-new", "2025-05-01", EXPIRY)
    old = _pm(store, "pm-old", "2024-01-01", EXPIRY)
    asked: list[tuple[str, int]] = []

    def search(text: str, k: int) -> list[SimilarHit]:
        asked.append((text, k))
        return [_hit(new), _hit(old)]  # the postmortem itself comes back too

    assert propose_recurrences(store, search, new.id) == 1
    assert propose_recurrences(store, search, new.id) == 0
    assert EXPIRY in asked[0][0] and asked[0][1] == 10
    links = recurrences_of(store.engine, old.id)
    assert [(r.postmortem_id, r.past_postmortem_id) for r in links] == [(new.id, old.id)]
