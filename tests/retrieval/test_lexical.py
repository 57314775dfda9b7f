"""The machine's lexical index (tantivy under data_dir/lexical): incremental catch-up with the
store, filters, sharing between processes, a corrupt directory, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from rca.config import Settings
from rca.domain import Postmortem, Severity
from rca.domain.similar import SearchFilters
from rca.store import Store
from retrieval.lexical import terms
from retrieval.lexical_index import SCHEMA_VERSION, LexicalIndex
from retrieval.lexical_shared import SharedLexical
from retrieval.search import SimilarSearch
from tests.factories import postmortem_data

ROOT = Path(__file__).parents[2]


def make_pm(ident: str, summary: str, **changes: Any) -> Postmortem:
    data = postmortem_data(id=ident, incident_id=None, summary=summary, **changes)
    return Postmortem.model_validate(data)


@pytest.fixture
def lex_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def lex_store(lex_settings: Settings) -> Iterator[Store]:
    opened = Store.open(lex_settings)
    yield opened
    opened.close()


def shared(store: Store, settings: Settings) -> SharedLexical:
    return SharedLexical(store, settings.data_dir / "lexical" / SCHEMA_VERSION)


def found(lexical: SharedLexical, text: str, filters: SearchFilters | None = None) -> list[str]:
    return [hit.postmortem_id for hit in lexical.current().search(terms(text), 50, filters)]


def test_add_revise_and_remove_are_caught_up_incrementally(
    lex_store: Store, lex_settings: Settings
) -> None:
    lexical = shared(lex_store, lex_settings)
    assert found(lexical, "zebra") == []
    lex_store.save([make_pm("pm-a", "A zebra stampede."), make_pm("pm-b", "Disk full.")], "t")
    assert found(lexical, "zebras") == ["pm-a"]
    assert lexical.current().revisions() == {"pm-a": 1, "pm-b": 1}

    lex_store.save_postmortem(make_pm("pm-a", "A giraffe escaped."), "t")
    assert found(lexical, "zebra") == [] and found(lexical, "giraffe") == ["pm-a"]
    assert lexical.current().revisions() == {"pm-a": 2, "pm-b": 1}

    # The store never deletes a postmortem; a document it no longer has (written here behind
    # the store's back) is an orphan the next catch-up removes.
    lexical.current().write([(make_pm("pm-ghost", "A zebra ghost."), 1)])
    assert lexical.drift().orphans == ["pm-ghost"]
    report = lexical.sync()
    assert (report.written, report.removed, report.documents) == (0, 1, 2)
    assert lexical.drift().in_sync and found(lexical, "zebra") == []


def test_only_changed_postmortems_are_rewritten(
    lex_store: Store, lex_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    lex_store.save([make_pm(f"pm-{n}", f"Outage number {n}.") for n in range(30)], "t")
    lexical = shared(lex_store, lex_settings)
    assert len(lexical.current()) == 30
    asked: list[list[str]] = []
    original = lex_store.latest_postmortems

    def spy(ids: Any = None, batch: int = 500) -> Any:
        asked.append(sorted(ids) if ids is not None else ["<all>"])
        return original(ids, batch)

    monkeypatch.setattr(lex_store, "latest_postmortems", spy)
    lex_store.save_postmortem(make_pm("pm-7", "Outage number seven, revised."), "t")
    assert found(lexical, "revised") == ["pm-7"]
    assert asked == [["pm-7"]]


def test_filters_run_inside_the_query(lex_store: Store, lex_settings: Settings) -> None:
    lex_store.save(
        [
            make_pm("pm-1", "Outage.", services=["api"], severity="SEV1", date="2024-01-05"),
            make_pm("pm-2", "Outage.", services=["db"], severity="SEV2", tags=["dns", "tls"]),
            make_pm("pm-3", "Outage.", services=["api", "db"], severity="SEV3", date=None),
            make_pm("pm-4", "Outage.", services=["edge"], severity=None, date="2023-06-01"),
        ],
        "t",
    )
    lexical = shared(lex_store, lex_settings)
    assert sorted(found(lexical, "outage")) == ["pm-1", "pm-2", "pm-3", "pm-4"]
    assert sorted(found(lexical, "outage", SearchFilters(services=["db"]))) == ["pm-2", "pm-3"]
    bad = SearchFilters(severities=[Severity.SEV1, Severity.SEV3])
    assert sorted(found(lexical, "outage", bad)) == ["pm-1", "pm-3"]
    assert found(lexical, "outage", SearchFilters(tags=["dns", "tls"])) == ["pm-2"]
    assert found(lexical, "outage", SearchFilters(tags=["dns", "nope"])) == []
    since = SearchFilters(date_from=date(2024, 1, 1))
    assert sorted(found(lexical, "outage", since)) == ["pm-1", "pm-2"]  # pm-2: factory's date
    until = SearchFilters(date_to=date(2024, 1, 5), services=["api", "edge"])
    assert sorted(found(lexical, "outage", until)) == ["pm-1", "pm-4"]  # undated pm-3 fails
    # Filters narrow; they do not change the scores.
    plain = {h.postmortem_id: h.score for h in lexical.current().search(["outag"], 9)}
    narrowed = lexical.current().search(["outag"], 9, SearchFilters(services=["api"]))
    assert {h.postmortem_id: h.score for h in narrowed} == {i: plain[i] for i in ("pm-1", "pm-3")}


_READER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from rca.config import Settings
    from rca.store import Store
    from retrieval.lexical import terms
    from retrieval.lexical_shared import SharedLexical

    settings = Settings(data_dir=Path(sys.argv[1]))
    store = Store.open(settings)
    lexical = SharedLexical(store, settings.data_dir / "lexical" / "v1")
    for line in sys.stdin:
        hits = lexical.current().search(terms(line), 10)
        print(",".join(h.postmortem_id for h in hits) or "-", flush=True)
    """
)


def test_a_second_process_reads_what_the_first_wrote(
    lex_store: Store, lex_settings: Settings
) -> None:
    lex_store.save([make_pm("pm-a", "A zebra stampede.")], "t")
    writer = shared(lex_store, lex_settings)
    writer.sync()
    with subprocess.Popen(
        [sys.executable, "-c", _READER, str(lex_settings.data_dir), str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as reader:
        assert reader.stdin is not None and reader.stdout is not None
        reader.stdin.write("giraffe\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "-"
        lex_store.save([make_pm("pm-b", "A giraffe escaped.")], "t")
        writer.sync()  # this process writes; the reader only reloads (the fingerprint matches)
        reader.stdin.write("giraffe\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "pm-b"
        reader.stdin.close()
        assert reader.wait(timeout=60) == 0
    assert writer.drift().in_sync


def test_a_corrupt_index_is_moved_aside_and_rebuilt(
    lex_store: Store, lex_settings: Settings
) -> None:
    lex_store.save([make_pm("pm-a", "A zebra stampede.")], "t")
    root = lex_settings.data_dir / "lexical" / SCHEMA_VERSION
    shared(lex_store, lex_settings).sync()
    generation = (root / "current").read_text()
    (root / generation / "meta.json").write_text("{ not json")
    fresh = shared(lex_store, lex_settings)
    assert found(fresh, "zebra") == ["pm-a"]
    assert fresh.moved_aside is not None and fresh.moved_aside.name.startswith("broken-")
    assert (root / "current").read_text() != generation
    # An unreadable pointer file is as good as none: a new generation is built.
    (root / "current").write_text("../../etc")
    assert found(shared(lex_store, lex_settings), "zebra") == ["pm-a"]


def test_a_busy_writer_lock_never_blocks_a_search(lex_store: Store, lex_settings: Settings) -> None:
    lex_store.save([make_pm("pm-a", "A zebra stampede.")], "t")
    lexical = shared(lex_store, lex_settings)
    assert found(lexical, "zebra") == ["pm-a"]
    lex_store.save([make_pm("pm-b", "Another zebra.")], "t")
    other = shared(lex_store, lex_settings)
    with other._writer_lock(wait=True):  # another writer is busy
        assert found(lexical, "zebra") == ["pm-a"]  # what was committed, at once
    assert sorted(found(lexical, "zebra")) == ["pm-a", "pm-b"]  # caught up at the next search


def test_concurrent_writers_leave_one_consistent_index(
    lex_store: Store, lex_settings: Settings
) -> None:
    lex_store.save([make_pm(f"pm-{n}", f"Zebra number {n}.") for n in range(40)], "t")
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            shared(lex_store, lex_settings).sync()
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=sync) for _ in range(3)]
    for thread in threads:
        thread.start()
    script = "\n".join(_READER.splitlines()[:12]) + "\nprint(lexical.sync().documents)"
    other = subprocess.run(
        [sys.executable, "-c", script, str(lex_settings.data_dir), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    for thread in threads:
        thread.join()
    assert not errors and other.returncode == 0, other.stderr
    assert other.stdout.strip() == "40"
    lexical = shared(lex_store, lex_settings)
    assert lexical.drift().in_sync and len(lexical.current()) == 40


def test_rebuild_switches_generation_and_readers_follow(
    lex_store: Store, lex_settings: Settings
) -> None:
    lex_store.save([make_pm("pm-a", "A zebra stampede.")], "t")
    reader = shared(lex_store, lex_settings)
    assert found(reader, "zebra") == ["pm-a"]
    old = reader._generation
    report = shared(lex_store, lex_settings).rebuild()
    root = lex_settings.data_dir / "lexical" / SCHEMA_VERSION
    assert report.documents == 1 and not (root / old).exists()
    lex_store.save([make_pm("pm-b", "Another zebra.")], "t")
    assert sorted(found(reader, "zebra")) == ["pm-a", "pm-b"]
    assert reader._generation != old


def test_search_holds_no_corpus_and_a_bounded_cache(
    lex_store: Store, lex_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retrieval.search.SHOWN_CACHE", 3)
    lex_store.save([make_pm(f"pm-{n}", f"Zebra stampede {n}.") for n in range(8)], "t")
    search = SimilarSearch(lex_store, None, None, lex_settings)
    result = search.search("zebra stampede", k=8, mode="lexical")
    assert len(result.hits) == 8 and all(h.revision == 1 for h in result.hits)
    assert len(search._shown) == 3
    lex_store.save_postmortem(make_pm("pm-2", "Zebra stampede 2, revised."), "t")
    again = search.search("zebra stampede revised", k=1, mode="lexical")
    assert again.hits[0].postmortem_id == "pm-2" and again.hits[0].revision == 2
    hybrid = search.search("zebra", k=2)  # no vector index configured: lexical, and says so
    assert hybrid.degraded and len(hybrid.hits) == 2


def test_an_in_memory_index_searches_like_the_shared_one(
    lex_store: Store, lex_settings: Settings
) -> None:
    pms = [make_pm(f"pm-{n}", f"Zebra {'stampede ' * n}.") for n in range(1, 6)]
    lex_store.save(pms, "t")
    memory = LexicalIndex()
    memory.write((pm, 1) for pm in pms)
    on_disk = shared(lex_store, lex_settings).current().search(["zebra", "stamped"], 5)
    assert memory.search(["zebra", "stamped"], 5) == on_disk
    assert [h.postmortem_id for h in on_disk] == ["pm-5", "pm-4", "pm-3", "pm-2", "pm-1"]


def test_what_searches_read_is_kept_only_until_the_index_changes() -> None:
    index = LexicalIndex()
    index.write([(make_pm("pm-a", "A zebra stampede."), 1)])
    first = index.lookup(iter(["pm-a", "pm-none"]))  # any iterable, absent ids left out
    assert first["pm-a"].revision == 1 and "root_causes" in first["pm-a"].sections
    assert index.lookup(["pm-a"]) == first and index.search(["zebra"], 5)[0].revision == 1
    index.write([(make_pm("pm-a", "A zebra stampede, again."), 2)])
    assert index.lookup(["pm-a"])["pm-a"].revision == 2
    assert index.search(["zebra"], 5)[0].revision == 2
