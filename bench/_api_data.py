"""Where `bench/api.py`'s server keeps its data, and the data it finds there.

Two back ends: `sqlite` (the embedded defaults: SQLite and chroma under the data directory) and
`postgresql` (the organisation configuration: a throwaway PostgreSQL cluster started here with
fsync and synchronous commit on, and a Chroma server). Two scales: `examples` (the bundled
examples, imported and indexed with the real model on every run: ~60 documents) and `10k`
(`_insights_data`'s 10,000 postmortems and 100,000 incidents, their insight facts found, and
the postmortems indexed with synthetic document vectors at the real model's id and dimension,
as `bench/search.py` does: embedding ~76k chunks with the model would take most of an hour,
and search cost depends on the number and size of the vectors, not on which model made them).

The 10k data is generated once per back end into a cache directory and reused:
`<cache>/sqlite/data` (the whole data directory, copied for each run, since the run writes) and
`<cache>/postgresql/` (a `pg_dump` of the database, restored into each run's fresh cluster, and
the Chroma server's directory, copied). `built.json` records the sizes, the embedding model the
index was made for (a different model means a rebuild) and how long the build took.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench import _insights_data
from rca.config import Settings

ROOT = Path(__file__).resolve().parent.parent
Backend = Literal["sqlite", "postgresql"]
Scale = Literal["examples", "10k"]
BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")
SCALES: tuple[Scale, ...] = ("examples", "10k")
SIZES = {"postmortems": 10_000, "incidents": 100_000}
"""The `10k` scale."""
DATABASE = "rca"


@dataclass
class Deployment:
    """What the server processes are configured with (passed to them as JSON)."""

    backend: Backend
    data_dir: Path
    database_url: str | None = None
    chroma_url: str | None = None
    pids: dict[str, int] = field(default_factory=dict)
    """Processes besides the server's whose peak RSS is reported (the Chroma server)."""

    def settings(self, **overrides: Any) -> Settings:
        """The settings for this deployment; `overrides` as `Settings(**overrides)` takes."""
        retrieval = {"chroma_url": self.chroma_url, **overrides.pop("retrieval", {})}
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            retrieval=retrieval,
            **overrides,
        )

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "data_dir": str(self.data_dir)})

    @classmethod
    def from_json(cls, text: str) -> Deployment:
        fields = json.loads(text)
        return cls(**{**fields, "data_dir": Path(fields["data_dir"])})


def note(message: str) -> None:
    """Progress, on stderr (the table goes to stdout)."""
    print(f"bench/api.py: {message}", file=sys.stderr, flush=True)


def import_examples(deployment: Deployment) -> None:
    """The bundled examples, imported and indexed with the configured (real) embedder."""
    from rca.formats.importer import import_paths
    from rca.store import Store
    from retrieval.service import open_retrieval

    settings = deployment.settings()
    store = Store.open(settings)
    try:
        examples = [ROOT / "examples" / "postmortems", ROOT / "examples" / "incidents"]
        import_paths(store, examples, settings.imports.max_file_bytes)
        retrieval = open_retrieval(settings, store)
        try:
            retrieval.indexer.sync(None)
        finally:
            retrieval.close()
    finally:
        store.close()


def embedding_model(deployment: Deployment) -> dict[str, Any]:
    """The id and dimension of the model the server will embed queries with (no model is
    loaded: both come from the bundled model's files)."""
    from retrieval.service import make_embedder

    embedder = make_embedder(deployment.settings())
    return {"model_id": embedder.model_id, "dimension": embedder.dimension}


def generate(deployment: Deployment) -> dict[str, Any]:
    """Save `SIZES` of synthetic documents, find their insight facts, index the postmortems
    with synthetic document vectors; how long each part took."""
    from bench.search import SyntheticDocsEmbedder
    from rca.insights import facts
    from rca.store import Store
    from retrieval.indexer import Indexer
    from retrieval.service import make_embedder
    from retrieval.vector_index import ChromaVectorIndex

    settings = deployment.settings()
    timings: dict[str, Any] = {}
    store = Store.open(settings)
    try:
        started = time.perf_counter()
        _insights_data.load(store, _insights_data.postmortems(SIZES["postmortems"]))
        timings["postmortems_s"] = time.perf_counter() - started
        note(f"{SIZES['postmortems']} postmortems saved in {timings['postmortems_s']:.0f} s")
        started = time.perf_counter()
        _insights_data.load(store, _insights_data.incidents(SIZES["incidents"]))
        timings["incidents_s"] = time.perf_counter() - started
        note(f"{SIZES['incidents']} incidents saved in {timings['incidents_s']:.0f} s")
        started = time.perf_counter()
        facts.refresh(store)
        timings["facts_s"] = time.perf_counter() - started
        embedder = SyntheticDocsEmbedder(make_embedder(settings))
        vectors = ChromaVectorIndex(
            settings, embedder.model_id, embedder.dimension, store.index_state
        )
        try:
            started = time.perf_counter()
            report = Indexer(store, embedder, vectors, settings).sync()
            timings["index_s"] = time.perf_counter() - started
            timings["chunks"] = report.chunks
        finally:
            vectors.close()
        note(f"{report.chunks} chunks indexed in {timings['index_s']:.0f} s")
    finally:
        store.close()
    return timings


def cached(directory: Path, deployment: Deployment) -> dict[str, Any] | None:
    """What `built.json` says, if the cache was built for these sizes and this model."""
    marker = directory / "built.json"
    if not marker.exists():
        return None
    built: dict[str, Any] = json.loads(marker.read_text())
    wanted = {**SIZES, **embedding_model(deployment)}
    if any(built.get(name) != value for name, value in wanted.items()):
        note(f"{directory} was built for {built}, not {wanted}: building it again")
        return None
    return built


def mark_built(directory: Path, deployment: Deployment, timings: dict[str, Any]) -> None:
    built = {**SIZES, **embedding_model(deployment), **timings}
    (directory / "built.json").write_text(json.dumps(built, indent=1))


def sqlite_10k(cache: Path, scratch: Path) -> Deployment:
    """The cached SQLite data directory (built first if need be), copied into `scratch`."""
    directory = cache / "sqlite"
    deployment = Deployment("sqlite", directory / "data")
    if cached(directory, deployment) is None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        started = time.perf_counter()
        timings = generate(deployment)
        mark_built(directory, deployment, {**timings, "total_s": time.perf_counter() - started})
    started = time.perf_counter()
    shutil.copytree(directory / "data", scratch / "data")
    note(f"copied the cached SQLite data in {time.perf_counter() - started:.0f} s")
    return Deployment("sqlite", scratch / "data")


@contextmanager
def postgresql(scale: Scale, cache: Path, scratch: Path) -> Iterator[Deployment]:
    """A durable throwaway cluster and a Chroma server holding the data of `scale`."""
    from tests.chroma_server import ChromaServer
    from tests.postgres import Cluster, binaries

    pg_bin = binaries()
    if pg_bin is None:
        raise SystemExit("bench/api.py: needs PostgreSQL (`make postgres` installs it)")
    cluster = Cluster.start(pg_bin, durable=True)
    chroma: ChromaServer | None = None
    try:
        cluster.execute(f'CREATE DATABASE "{DATABASE}"')
        url = cluster.url(DATABASE)
        if scale == "examples":
            chroma = ChromaServer.start(scratch / "chroma")
            deployment = Deployment("postgresql", scratch / "data", url, chroma.url)
            import_examples(deployment)
        else:
            directory = cache / "postgresql"
            probe = Deployment("postgresql", scratch / "data", url)
            if cached(directory, probe) is None:
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir(parents=True)
                started = time.perf_counter()
                chroma = ChromaServer.start(directory / "chroma")
                timings = generate(Deployment("postgresql", scratch / "build", url, chroma.url))
                chroma.stop()
                pg_tool(pg_bin / "pg_dump", cluster.root, "-Fc", "-f", str(directory / "rca.dump"))
                total = time.perf_counter() - started
                mark_built(directory, probe, {**timings, "total_s": total})
            else:
                started = time.perf_counter()
                pg_tool(pg_bin / "pg_restore", cluster.root, "--no-owner", directory / "rca.dump")
                note(f"restored the cached database in {time.perf_counter() - started:.0f} s")
            analyze(cluster.root)
            shutil.copytree(directory / "chroma" / "data", scratch / "chroma" / "data")
            chroma = ChromaServer.start(scratch / "chroma")
            deployment = Deployment("postgresql", scratch / "data", url, chroma.url)
        if chroma.process is not None:
            deployment.pids["chroma server"] = chroma.process.pid
        postmaster = cluster.root / "db" / "postmaster.pid"
        with suppress(OSError, ValueError, IndexError):
            deployment.pids["postgresql"] = int(postmaster.read_text().split()[0])
        yield deployment
    finally:
        if chroma is not None:
            chroma.stop()
        cluster.stop()


def pg_tool(tool: Path, socket_dir: Path, *args: str | Path) -> None:
    """Run pg_dump or pg_restore on the benchmark's database, over the cluster's socket."""
    command = [str(tool), "-h", str(socket_dir), "-U", "postgres", "-d", DATABASE, *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"bench/api.py: {tool.name} failed:\n{done.stderr}")


def analyze(socket_dir: Path) -> None:
    """Vacuum and planner statistics, as autovacuum leaves a database some minutes after a bulk
    load in production: left to autovacuum, the vacuum of the restored tables runs during the
    first scenarios (minutes, on the 2 cores the benchmark shares) and their tails measure it."""
    import psycopg

    with psycopg.connect(host=str(socket_dir), user="postgres", dbname=DATABASE) as conn:
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE)")


@contextmanager
def deployment(backend: Backend, scale: Scale, cache: Path, scratch: Path) -> Iterator[Deployment]:
    """The back end running with the data of `scale`, until the block ends."""
    if backend == "postgresql":
        with postgresql(scale, cache, scratch) as running:
            yield running
        return
    if scale == "examples":
        running = Deployment("sqlite", scratch / "data")
        import_examples(running)
    else:
        running = sqlite_10k(cache, scratch)
    yield running


def admin_key(deployment: Deployment) -> str:
    """A new admin API key in the deployment's store."""
    from rca.store import Store
    from rca.store.keys import ApiKeys, Role

    store = Store.open(deployment.settings())
    try:
        key, _ = ApiKeys(store.engine).create("bench", Role.ADMIN)
    finally:
        store.close()
    return key


def drop_queued_drafts(deployment: Deployment) -> None:
    """After a round of submissions, drop the thousands of queued jobs, so the one draft
    worker does not spend the next scenarios drafting them."""
    from sqlalchemy import update

    from rca.store import Store
    from rca.store.engine import drafts, write_transaction

    store = Store.open(deployment.settings())
    try:
        with write_transaction(store.engine) as conn:
            conn.execute(
                update(drafts)
                .where(drafts.c.status == "queued")
                .values(status="failed", error="dropped by bench/api.py after its round")
            )
    finally:
        store.close()


def peak_rss_mib(pid: int) -> float | None:
    """A process's peak resident set size (VmHWM), in MiB; None once it is gone."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), as /proc lists them now."""
    found: list[int] = []
    with suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *descendants(int(child))]
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """User and system CPU time used so far by these processes and every process below them
    (a process that ended in between is not counted: `rca serve` replaces none in a run)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in {p for top in pids for p in (top, *descendants(top))}:
        with suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


def command_name(pid: int) -> str:
    """What a process runs, shortly: `rca serve`'s children are spawned Pythons, named by what
    they were started to do (`multiprocessing.spawn` is a uvicorn server process)."""
    with suppress(OSError):
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        text = " ".join(words)
        for marker, name in (
            ("multiprocessing.spawn", "server process"),
            ("resource_tracker", "resource tracker"),
            ("embedder", "embedding service"),
            ("rca worker", "rca worker"),
        ):
            if marker in text:
                return name
        return Path(words[0]).name
    return "process"
