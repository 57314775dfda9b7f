"""The index writer's lease in the database, on SQLite and PostgreSQL: one writer at a time
across threads and processes, a clear message naming the holder, renewal, a SIGKILLed holder
taken over (at once on this machine, at expiry elsewhere), and a writer that lost its lease
acknowledges nothing more."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from rca.config import Settings
from rca.errors import IndexLocked
from rca.formats.importer import import_paths
from rca.ports import InputType
from rca.store import Store
from rca.store.index_lease import IndexLease, database_now, index_leases
from rca.testing import FakeEmbedder
from retrieval.indexer import Indexer
from retrieval.service import open_retrieval
from retrieval.vector_index import WRITER_LEASE

EXAMPLES = Path(__file__).parents[2] / "examples"
NAME = "test-lease"

HOLD = """
import sys, time
from datetime import timedelta
from rca.config import Settings
from rca.store import Store
store = Store.open(Settings(data_dir=sys.argv[1]))
lease = store.index_state.lease(sys.argv[2], timedelta(seconds=float(sys.argv[3])))
lease.take()
print(lease.holder, flush=True)
time.sleep(600)
"""


def _lease(store: Store, ttl_s: float = 60.0) -> IndexLease:
    return store.index_state.lease(NAME, timedelta(seconds=ttl_s))


def test_a_second_writer_is_refused_at_once_with_who_holds_it(store: Store) -> None:
    first, second = _lease(store), _lease(store)
    assert first.holder.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert first.holder != second.holder  # every take is its own, even in one process
    first.take()
    started = time.monotonic()
    with pytest.raises(IndexLocked) as locked:
        second.take()
    assert time.monotonic() - started < 1.0  # no waiting
    state = first.state()
    assert state is not None and state.holder == first.holder
    until = state.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"another process ({first.holder}, since " in str(locked.value)
    assert f"holds the writer lease 'test-lease' until {until}" in str(locked.value)
    assert "RCA_RETRIEVAL__INDEX_LEASE_S" in str(locked.value)
    first.release()
    second.take()  # released: free at once
    with pytest.raises(IndexLocked):
        first.take()
    second.release()
    second.release()  # releasing twice changes nothing


def test_threads_racing_for_it_let_exactly_one_in(store: Store) -> None:
    leases = [_lease(store) for _ in range(8)]
    start = threading.Barrier(len(leases))
    won: list[str] = []
    refused: list[str] = []

    def attempt(lease: IndexLease) -> None:
        start.wait()
        try:
            lease.take()
            won.append(lease.holder)
        except IndexLocked:
            refused.append(lease.holder)

    threads = [threading.Thread(target=attempt, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(refused) == len(leases) - 1
    state = leases[0].state()
    assert state is not None and state.holder == won[0]


def test_a_sigkilled_holder_on_this_machine_is_taken_over_at_once(
    store: Store, settings: Settings
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(settings.data_dir), NAME, "600"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        held_by = holder.stdout.readline().strip()
        assert held_by.startswith(f"{socket.gethostname()}:{holder.pid}:")
        mine = _lease(store)
        with pytest.raises(IndexLocked, match=f"another process \\({held_by}, since"):
            mine.take()  # alive: refused
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        mine.take()  # gone: no need to wait out its 600 s
        state = mine.state()
        assert state is not None and state.holder == mine.holder
        mine.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.parametrize(
    "elsewhere",
    [
        "another-machine:{pid}:0a1b2c3d:{ns}",  # another host: its PIDs mean nothing here
        "{host}:{pid}:0a1b2c3d:4026599999",  # another container with this host name
        "{host}:{pid}:0a1b2c3d",  # the format before namespaces: unknown
    ],
)
def test_a_holder_that_may_be_alive_elsewhere_is_waited_for_until_it_expires(
    store: Store, elsewhere: str
) -> None:
    unused_pid = 2**22 + 17  # above Linux's PID limit: certainly no process here
    ns = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    holder = elsewhere.format(host=socket.gethostname(), pid=unused_pid, ns=ns)
    with store.engine.begin() as conn:
        now = database_now(conn)
        conn.execute(
            index_leases.insert().values(
                name=NAME, holder=holder, taken_at=now, expires_at=now + timedelta(seconds=1)
            )
        )
    mine = _lease(store)
    with pytest.raises(IndexLocked, match=f"another process \\({holder}, since"):
        mine.take()
    time.sleep(1.1)
    mine.take()  # expired
    mine.release()


def test_a_dead_holder_with_a_pid_of_this_namespace_is_recognised() -> None:
    from rca.store.index_lease import died_here, new_holder

    mine = new_holder()
    host, _pid, _take, ns = mine.split(":")
    assert not died_here(mine)  # this process
    assert died_here(f"{host}:{2**22 + 17}:0a1b2c3d:{ns}")  # no such PID
    assert not died_here(f"{host}:1:0a1b2c3d:{ns}")  # PID 1 lives (owned by anyone)


def test_renewing_keeps_it_and_a_lost_lease_cannot_be_renewed(store: Store) -> None:
    first, second = _lease(store, ttl_s=1.0), _lease(store, ttl_s=1.0)
    first.take()
    end = time.monotonic() + 2.5  # more than twice the ttl
    while time.monotonic() < end:
        first.renew()
        with pytest.raises(IndexLocked):
            second.take()
        time.sleep(0.3)
    time.sleep(1.1)  # no renewal for longer than the ttl
    second.take()
    with pytest.raises(
        IndexLocked, match=rf"lost the index writer lease 'test-lease' to {second.holder}"
    ):
        first.renew()
    first.release()  # a lost lease is not released from under its new holder
    with pytest.raises(IndexLocked):
        _lease(store).take()


def test_a_lease_lasts_a_positive_time(store: Store) -> None:
    with pytest.raises(ValueError, match="positive time"):
        _lease(store, ttl_s=0)
    with pytest.raises(ValueError, match="positive time"):
        _lease(store, ttl_s=-3)


class HookedEmbedder(FakeEmbedder):
    """The fake embedder, calling `hook` before it embeds its `on`th batch of documents."""

    def __init__(self, on: int, hook: Callable[[], None]) -> None:
        super().__init__()
        self.on, self.hook, self.batches = on, hook, 0

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        if input_type == "document":
            self.batches += 1
            if self.batches == self.on:
                self.hook()
        return super().embed(texts, input_type)


def _steal(store: Store) -> IndexLease:
    """Expire the writer's lease (as if it had stopped renewing) and take it."""
    with store.engine.begin() as conn:
        past = database_now(conn) - timedelta(seconds=1)
        conn.execute(
            update(index_leases).where(index_leases.c.name == WRITER_LEASE).values(expires_at=past)
        )
    thief = store.index_state.lease(WRITER_LEASE, timedelta(seconds=60))
    thief.take()
    return thief


def test_a_writer_that_lost_its_lease_mid_sync_acknowledges_nothing_more(
    store: Store, settings: Settings
) -> None:
    thieves: list[IndexLease] = []
    embedder = HookedEmbedder(on=2, hook=lambda: thieves.append(_steal(store)))
    retrieval = open_retrieval(settings, store, embedder)
    indexer = Indexer(store, embedder, retrieval.vectors, settings, batch_postmortems=8)
    try:
        indexer.sync()  # an empty store: creates the collection
        assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
        with pytest.raises(IndexLocked, match="lost the index writer lease"):
            indexer.sync()  # batch 1 is written; the lease goes while batch 2 is embedded
        assert store.index_state.pending_count() == 31 - 8
        state = thieves[0].state()
        assert state is not None and state.holder == thieves[0].holder  # not released by loser
        thieves[0].release()
        assert indexer.sync().postmortems == 31 - 8
        assert indexer.check(repair=False).in_sync
    finally:
        retrieval.close()


def test_a_rebuild_and_a_sync_never_run_at_once(store: Store, settings: Settings) -> None:
    assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
    inside, go_on = threading.Event(), threading.Event()

    def pause() -> None:
        inside.set()
        assert go_on.wait(30)

    embedder = HookedEmbedder(on=1, hook=pause)
    retrieval = open_retrieval(settings, store, embedder)
    other = open_retrieval(settings, store, FakeEmbedder())
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            retrieval.indexer.sync()
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=sync)
    thread.start()
    try:
        assert inside.wait(30)
        for write in (other.indexer.rebuild, other.indexer.sync, other.indexer.check):
            with pytest.raises(IndexLocked, match="is writing the vector index"):
                write()
    finally:
        go_on.set()
        thread.join(60)
        other.close()
        retrieval.close()
    assert errors == []
    assert store.index_state.pending_count() == 0
