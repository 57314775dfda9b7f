"""Recurrence measures for the insights report: how many postmortems in a range a reviewer
confirmed as a repeat of an earlier one, overall, per service and per failure mode, and the
list of those recurrences (with the proposals still awaiting review)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from rca.domain import Severity
from rca.insights.report import ITEMS_SHOWN, RecurrenceItem, RecurrenceRate, Recurrences
from rca.store.postmortem_facts import facts_for
from rca.store.records import Store
from rca.store.recurrences import ListedRecurrence, RecurrenceState, listed_between


def recurrences(
    store: Store,
    since: date,
    until: date,
    services: Sequence[str],
    severities: Sequence[Severity],
    counted: Mapping[str, Mapping[str, int]],
    postmortems: int,
    names: Mapping[str, str],
) -> Recurrences:
    """The recurrence measures; `counted` holds how many postmortems in the range have each
    `service` and `failure_mode` (the denominators), `postmortems` how many there are."""
    levels = [s.value for s in severities]
    states = (RecurrenceState.CONFIRMED, RecurrenceState.PROPOSED)
    found = _with_services(
        store, listed_between(store.engine, since, until, states, levels), services
    )
    confirmed = [r for r in found if r.link.state is RecurrenceState.CONFIRMED]
    proposed = [r for r in found if r.link.state is RecurrenceState.PROPOSED]
    recurrent = sorted({r.link.postmortem_id for r in confirmed})
    flagged = {r.link.postmortem_id for r in confirmed if r.link.flagged}
    return Recurrences(
        confirmed=len(recurrent),
        flagged=len(flagged),
        proposed=len(proposed),
        rate=len(recurrent) / postmortems if postmortems else None,
        by_service=_rates(store, recurrent, "service", counted.get("service", {}), {}),
        by_failure_mode=_rates(
            store, recurrent, "failure_mode", counted.get("failure_mode", {}), names
        ),
        items=[_item(r) for r in [*confirmed, *proposed][:ITEMS_SHOWN]],
    )


def _with_services(
    store: Store, found: list[ListedRecurrence], services: Sequence[str]
) -> list[ListedRecurrence]:
    if not services:
        return found
    named = facts_for(store.engine, sorted({r.link.postmortem_id for r in found}), "service")
    wanted = set(services)
    return [r for r in found if named.get(r.link.postmortem_id, set()) & wanted]


def _rates(
    store: Store,
    recurrent: list[str],
    kind: str,
    totals: Mapping[str, int],
    names: Mapping[str, str],
) -> list[RecurrenceRate]:
    repeats: dict[str, int] = {}
    for values in facts_for(store.engine, recurrent, kind).values():
        for value in values:
            repeats[value] = repeats.get(value, 0) + 1
    rows = [
        RecurrenceRate(
            key=key,
            name=names.get(key, key),
            postmortems=total,
            recurrences=repeats.get(key, 0),
            rate=repeats.get(key, 0) / total,
        )
        for key, total in totals.items()
        if total
    ]
    return sorted(rows, key=lambda r: (-r.recurrences, -r.rate, -r.postmortems, r.key))


def _item(found: ListedRecurrence) -> RecurrenceItem:
    link = found.link
    return RecurrenceItem(
        postmortem_id=link.postmortem_id,
        title=found.title,
        postmortem_date=found.on,
        past_postmortem_id=link.past_postmortem_id,
        past_title=found.past_title,
        past_postmortem_date=found.past_on,
        state=link.state.value,
        flagged=link.flagged,
        open_actions=link.open_actions,
        reasons=link.reasons,
    )
