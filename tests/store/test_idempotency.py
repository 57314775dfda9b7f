"""Idempotency keys (issue 16, finding 6): a request's answer commits with its write, so a
process that dies half-way leaves no key reserved and no write without its answer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rca.config import Settings
from rca.domain import Incident
from rca.store import Store
from rca.store.engine import idempotency_keys
from rca.store.idempotency import IdempotencyKeys, KeyReused, Replay
from tests.factories import incident_data
from tests.support import dump


def _create(store: Store, title: str) -> str:
    incident = Incident.model_validate(incident_data(id=f"inc-{title}", title=title))
    store.create_incident(incident, "test")
    return incident.id


def _answer(ident: str) -> Replay:
    return Replay(201, f'"{ident}"')


def test_the_answer_commits_with_the_work_or_not_at_all(store: Store) -> None:
    keys = IdempotencyKeys(store.engine)
    before = dump(store)

    def dies() -> str:
        _create(store, "first")
        raise RuntimeError("the process died after the write")

    with pytest.raises(RuntimeError):
        keys.once("p", "k", "hash", dies, _answer)
    assert dump(store) == before  # neither the incident nor the key
    assert keys.once("p", "k", "hash", lambda: _create(store, "second"), _answer) == "inc-second"
    ran: list[str] = []

    def again() -> str:
        ran.append("again")
        return "again"

    assert keys.once("p", "k", "hash", again, _answer) == Replay(201, '"inc-second"')
    assert ran == []
    assert [i.id for i in store.list_incidents()] == ["inc-second"]
    with pytest.raises(KeyReused, match="different request"):
        keys.once("p", "k", "other hash", lambda: "", _answer)


def test_a_process_killed_inside_the_request_leaves_its_key_free(
    settings: Settings, store: Store
) -> None:
    before = dump(store)
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from rca.config import Settings
        from rca.domain import Incident
        from rca.store import Store
        from rca.store.idempotency import IdempotencyKeys, Replay
        from tests.factories import incident_data
        store = Store.open(Settings(data_dir=Path({str(settings.data_dir)!r})))

        def work():
            store.create_incident(Incident.model_validate(incident_data()), "x")
            os.kill(os.getpid(), signal.SIGKILL)  # after the write, before the answer

        IdempotencyKeys(store.engine).once("p", "k", "hash", work, lambda _: Replay(201, ""))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parents[2], check=False
    )
    assert proc.returncode == -9
    assert dump(store) == before
    keys = IdempotencyKeys(store.engine)
    assert keys.once("p", "k", "hash", lambda: _create(store, "retried"), _answer) == "inc-retried"


def test_concurrent_requests_with_one_key_run_it_once(settings: Settings) -> None:
    stores = [Store.open(settings) for _ in range(3)]  # three engines, as three processes
    answers: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(9)

    def send(n: int) -> None:
        mine = stores[n % 3]
        keys = IdempotencyKeys(mine.engine)
        barrier.wait()
        try:
            answer = keys.once("p", "k", "h", lambda: _create(mine, f"n{n}"), _answer)
            answers.append(answer)
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    fresh = [a for a in answers if isinstance(a, str)]
    assert len(fresh) == 1 and answers.count(_answer(fresh[0])) == 8
    assert [i.id for i in stores[0].list_incidents()] == fresh
    with stores[0].engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar() == 1
    for opened in stores:
        opened.close()
