"""`rca check`: a sound store passes; each kind of damage a crash or a hand edit could leave
is reported, on both back ends, and the command exits 1 with one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from rca.config import Settings
from rca.domain import Incident, Postmortem
from rca.store import Store
from rca.store.engine import write_transaction
from rca.store.integrity import RULES, check
from tests.factories import incident_data, postmortem_data
from tests.support import run


def _filled(store: Store) -> Postmortem:
    pm = Postmortem.model_validate(postmortem_data())
    store.save_postmortem(pm, "test")
    store.save_postmortem(pm.model_copy(update={"title": pm.title + " (edited)"}), "edit")
    store.save_incident(Incident.model_validate(incident_data()), "test")
    return pm


def test_a_sound_store_has_no_problem(store: Store) -> None:
    _filled(store)
    assert check(store.engine) == []


@pytest.mark.parametrize(
    ("damage", "rule"),
    [
        (
            "UPDATE postmortems SET latest_revision = latest_revision + 1",
            "a postmortem's revisions are 1 to its latest, all stored",
        ),
        ("UPDATE incidents SET document = ''", "an incident has its document and a revision"),
    ],
)
def test_damage_is_reported_by_its_rule(store: Store, damage: str, rule: str) -> None:
    _filled(store)
    assert rule in RULES
    with write_transaction(store.engine) as conn:
        conn.execute(text(damage))
    problems = check(store.engine)
    assert [p.rule for p in problems] == [rule]
    assert problems[0].count == 1 and problems[0].examples


def test_the_command_exits_1_with_a_line_per_problem(
    settings: Settings, capsys: pytest.CaptureFixture[str], store: Store
) -> None:
    pm = _filled(store)
    code, out, err = run(Path(settings.data_dir), "check", capsys=capsys)
    assert (code, err) == (0, "") and out.startswith("store sound:")
    with write_transaction(store.engine) as conn:
        conn.execute(text("UPDATE postmortems SET latest_revision = 7"))
    code, out, err = run(Path(settings.data_dir), "check", capsys=capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"problem: a postmortem's revisions are 1 to its latest, all stored: broken by {pm.id}",
        "1 problem(s) found",
    ]
