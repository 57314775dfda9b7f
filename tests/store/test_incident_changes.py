"""Incident revisions: the migration that starts them, concurrent additions, refusals."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from rca.config import Settings
from rca.domain import Incident
from rca.domain.additions import EvidenceAdditions, IncidentChange, NewChatMessage
from rca.errors import Conflict, InvalidArgument, NotFound
from rca.store import Store
from rca.store.engine import MIGRATIONS_DIR
from tests.factories import incident_data


def _chat(n: int) -> IncidentChange:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    message = NewChatMessage(at=at, author="sre", text=f"note {n}")
    return IncidentChange(evidence=EvidenceAdditions(chat=[message]))


@pytest.mark.empty_database
def test_the_migration_makes_stored_incidents_revision_1_and_notes_their_services(
    settings: Settings,
) -> None:
    settings.data_dir.mkdir(parents=True)
    url = settings.effective_database_url()
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0005")
        conn.commit()
        incident = Incident.model_validate(incident_data(services=["checkout-api", "orders-db"]))
        document = incident.model_dump_json()
        conn.execute(
            text(
                "INSERT INTO incidents (id, title, severity, started_at, content_hash, document,"
                " created_at, updated_at) VALUES (:id, 't', 'SEV2', :at, 'h', :doc, :at, :at)"
            ),
            {"id": incident.id, "at": datetime(2026, 1, 1), "doc": document},
        )
        conn.commit()
    engine.dispose()
    store = Store.open(settings)  # migrates to the head
    revisions = store.incident_revisions(incident.id)
    assert [(r.revision, r.actor, r.change) for r in revisions] == [
        (1, "migration", {"created": True})
    ]
    assert store.incident_at(incident.id, 1) == incident
    with store.engine.connect() as conn:
        seen = {r[0] for r in conn.execute(text("SELECT name FROM services_seen"))}
    assert seen == {"checkout-api", "orders-db"}
    done = store.change_incident(incident.id, _chat(1), "sre", "test")
    assert done.revision == 2 and store.read_incident(incident.id).revision == 2
    store.close()


def test_concurrent_additions_all_land_each_as_its_own_revision(store: Store) -> None:
    incident = Incident.model_validate(incident_data())
    store.create_incident(incident, "test")
    errors: list[BaseException] = []

    def add(n: int) -> None:
        try:
            store.change_incident(incident.id, _chat(n), "sre", "test")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stored = store.get_incident(incident.id)
    texts = sorted(m.text for m in stored.chat if m.text.startswith("note "))
    assert texts == sorted(f"note {n}" for n in range(8))
    assert [r.revision for r in store.incident_revisions(incident.id)] == list(range(1, 10))


def test_a_change_that_cannot_apply_stores_nothing(store: Store) -> None:
    incident = Incident.model_validate(
        incident_data(detected_at=None, mitigated_at=None, resolved_at=None)
    )
    store.create_incident(incident, "test")
    taken = incident.chat[0] if incident.chat else None
    early = IncidentChange(resolved_at=datetime(1999, 1, 1, tzinfo=UTC))
    with pytest.raises(InvalidArgument, match="resolved_at"):
        store.change_incident(incident.id, early, "sre", "test")
    if taken is not None:
        other = NewChatMessage(id=taken.id, at=taken.at, text="something else")
        with pytest.raises(Conflict, match="taken"):
            store.change_incident(
                incident.id, IncidentChange(evidence=EvidenceAdditions(chat=[other])), "sre", "t"
            )
    with pytest.raises(NotFound):
        store.change_incident("inc-nope", _chat(1), "sre", "test")
    assert store.get_incident(incident.id) == incident
    assert len(store.incident_revisions(incident.id)) == 1
    assert json.loads(incident.model_dump_json()) == json.loads(
        store.incident_at(incident.id, 1).model_dump_json()
    )
