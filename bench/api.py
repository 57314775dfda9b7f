"""HTTP API throughput and latency at 32 concurrent clients, against a real server process.

    .venv/bin/python bench/api.py                      # 3 rounds, 10 s per scenario
    .venv/bin/python bench/api.py --rounds 5 --only incidents

Needs `wrk` (Debian package `wrk`), a load generator written in C: a Python client would
spend as much CPU per request as the server on the same 2 cores, and measure itself.

The script starts uvicorn with `create_app(settings)` in `--workers` server processes (default
2, as `rca serve --workers 2`: one Python process cannot use both cores) on a scratch data
directory (SQLite, embedded chroma, the bundled embedding model, the example postmortems and
incidents imported, one draft worker in a separate process at nice 10, as `rca serve --workers
2` runs it; `--draft-in-server` puts it inside a server process) with the scripted fake model
behind litellm's custom-provider path, so the numbers measure our code, not a model. wrk
keeps `--clients` keep-alive connections busy (closed loop: each sends its next request as
soon as the previous answered) from ONE thread: with two, wrk's threads and the server's
event loops (more busy threads than the 2 cores) preempt each other and wrk records its own
scheduling delays as p99 (seen: p99 220 ms with 2 threads vs 45 ms with 1, same server).

Baseline, measured in the same run: `GET /healthz` (routing, middleware and JSON only); each
scenario's p50 is shown as a ratio to it. Rounds interleave the scenarios; the table quotes the
median over rounds of each statistic. Every answer that is not 2xx counts as an error (the
targets ask for none). After each round of draft submissions the queued jobs are dropped, so
the server's one draft worker does not spend the next scenarios drafting thousands of them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import median

ROOT = Path(__file__).resolve().parent.parent
TARGETS_MS = {"reads": 100.0, "draft submission": 200.0}


def server_settings(data_dir: Path) -> Any:
    from rca.config import Settings

    return Settings(
        data_dir=data_dir,
        llm={"model": "fake/analyst", "max_retries": 0},
        api={
            # Set by main(): 1 inside the server, 0 when a separate worker process drafts.
            "draft_workers": int(os.environ.get("RCA_BENCH_DRAFT_WORKERS", "1")),
            "max_queued_drafts": 1_000_000,
        },
    )


def prepare(data_dir: Path) -> str:
    """Import the examples and create an admin key; return the key."""
    from rca.formats.importer import import_paths
    from rca.store import Store
    from rca.store.keys import ApiKeys, Role
    from retrieval.service import open_retrieval

    settings = server_settings(data_dir)
    store = Store.open(settings)
    try:
        examples = [ROOT / "examples" / "postmortems", ROOT / "examples" / "incidents"]
        import_paths(store, examples, settings.imports.max_file_bytes)
        retrieval = open_retrieval(settings, store)
        try:
            retrieval.indexer.sync(None)
        finally:
            retrieval.close()
        key, _ = ApiKeys(store.engine).create("bench", Role.ADMIN)
    finally:
        store.close()
    return key


def bench_app() -> Any:
    """The app each server process builds: the real one, with the fake model registered."""
    from api.app import create_app
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    register_provider("fake", ScriptedModel(reply=fake_analyst))
    return create_app(server_settings(Path(os.environ["RCA_BENCH_DATA_DIR"])))


def serve(data_dir: Path, port: int, processes: int) -> None:
    """The child process: uvicorn with `processes` server processes, as `rca serve --workers`."""
    import uvicorn

    os.environ["RCA_BENCH_DATA_DIR"] = str(data_dir)
    uvicorn.run(
        "bench.api:bench_app",
        factory=True,
        workers=processes,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


def work(data_dir: Path) -> None:
    """The separate draft worker process, as `rca serve --workers N` starts `rca worker
    --nice 10`: the fake model, a lower CPU priority than the server processes."""
    from api.services import Services
    from api.worker import DraftWorker
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    os.nice(10)
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    services = Services.open(server_settings(data_dir))
    DraftWorker(services, "bench-worker").loop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Scenario:
    """One kind of request, as wrk sends it: a method, paths taken in turn, maybe a body with
    `__ID__` replaced by a fresh value per request."""

    name: str
    group: str
    paths: list[str]
    method: str = "GET"
    body: str | None = None

    def script(self, key: str) -> str:
        quoted = ", ".join(lua_string(p) for p in self.paths)
        body = lua_string(self.body) if self.body is not None else "nil"
        return LUA.format(key=lua_string(key), paths=quoted, method=self.method, body=body)


LUA = """
wrk.headers["Authorization"] = "Bearer " .. {key}
wrk.headers["Content-Type"] = "application/json"
local paths = {{{paths}}}
local template = {body}
local counter = 0
next_thread = 1
function setup(thread)
  thread:set("thread_no", next_thread)
  next_thread = next_thread + 1
end
function request()
  counter = counter + 1
  local path = paths[(counter % #paths) + 1]
  local body = nil
  if template then
    body = (template:gsub("__ID__", (thread_no or 0) .. "-" .. counter .. "-" .. os.time()))
  end
  return wrk.format("{method}", path, nil, body)
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if found is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(output: str) -> Result:
    """Requests per second, p50, p99 and errors (non-2xx/3xx answers, socket errors)."""
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None or set(percentiles) != {"50", "99"}:
        raise SystemExit(f"bench/api.py: cannot read wrk's output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", output))
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket:
        errors += sum(int(n) for n in socket.groups())
    return Result(float(rps.group(1)), _ms(percentiles["50"]), _ms(percentiles["99"]), errors)


def wrk(base_url: str, scenario: Scenario, key: str, clients: int, seconds: float) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(scenario.script(key))
    try:
        done = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{clients}",
                f"-d{seconds:g}s",
                "--latency",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(script.name)
    return parse_wrk(done.stdout)


def get(base_url: str, path: str, key: str, body: str | None = None) -> Any:
    """One request with the standard library (set-up only)."""
    request = urllib.request.Request(
        base_url + path,
        data=body.encode() if body is not None else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def wait_ready(base_url: str, deadline_s: float = 180.0) -> None:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        try:
            with urllib.request.urlopen(base_url + "/healthz", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("bench/api.py: the server did not start")


def finished_draft(base_url: str, key: str, incident_id: str) -> str:
    job = get(base_url, f"/v1/incidents/{incident_id}/drafts", key, "{}")
    for _ in range(600):
        state = get(base_url, f"/v1/drafts/{job['id']}", key)
        if state["status"] == "succeeded":
            return str(job["id"])
        if state["status"] == "failed":
            raise SystemExit(f"bench/api.py: the set-up draft failed: {state}")
        time.sleep(0.2)
    raise SystemExit("bench/api.py: the set-up draft did not finish")


def drop_queued_drafts(data_dir: Path) -> None:
    """After a round of submissions, drop the thousands of queued jobs, so the one draft
    worker does not spend the next scenarios drafting them."""
    from sqlalchemy import update

    from rca.store import Store
    from rca.store.engine import drafts, write_transaction

    store = Store.open(server_settings(data_dir))
    try:
        with write_transaction(store.engine) as conn:
            conn.execute(update(drafts).where(drafts.c.status == "queued").values(status="failed"))
    finally:
        store.close()


def scenarios(base_url: str, key: str) -> list[Scenario]:
    incidents = [i["id"] for i in get(base_url, "/v1/incidents?limit=50", key)["items"]]
    draft_id = finished_draft(base_url, key, incidents[0])
    incident = json.loads(
        (ROOT / "examples/incidents/inc-2026-01-checkout-db-pool.json").read_text()
    )
    incident["id"] = "inc-bench-__ID__"
    return [
        Scenario("GET /healthz (baseline)", "baseline", ["/healthz"]),
        Scenario("GET /v1/incidents/{id}", "reads", [f"/v1/incidents/{i}" for i in incidents]),
        Scenario("GET /v1/incidents?limit=20", "reads", ["/v1/incidents?limit=20"]),
        Scenario("GET /v1/drafts/{id}", "reads", [f"/v1/drafts/{draft_id}"]),
        Scenario("GET /v1/postmortems?limit=20", "reads", ["/v1/postmortems?limit=20"]),
        Scenario("GET /v1/action-items?limit=20", "reads", ["/v1/action-items?limit=20"]),
        Scenario(
            "GET /v1/incidents/{id}/similar",
            "search",
            [f"/v1/incidents/{i}/similar?k=5" for i in incidents],
        ),
        Scenario(
            "POST /v1/incidents",
            "incident creation",
            ["/v1/incidents"],
            "POST",
            json.dumps(incident),
        ),
        Scenario(
            "POST /v1/incidents/{id}/drafts",
            "draft submission",
            [f"/v1/incidents/{i}/drafts" for i in incidents],
            "POST",
            "{}",
        ),
    ]


def report(args: argparse.Namespace, chosen: list[Scenario], rows: dict[str, list[Result]]) -> None:
    def mid(name: str, attr: str) -> float:
        return median([getattr(r, attr) for r in rows[name]])

    base_p50 = mid(chosen[0].name, "p50_ms")
    where = "a separate worker process at nice 10" if not args.draft_in_server else "the server"
    print(
        f"\n{args.workers} server process(es), drafts in {where}, "
        f"{args.clients} concurrent clients (wrk), {args.seconds:g} s per scenario per round, "
        f"{args.rounds} rounds; medians over rounds; ratio = p50 / baseline p50"
    )
    print(
        f"{'scenario':<32} {'group':<18} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'ratio':>6} {'errors':>6}  target"
    )
    for scenario in chosen:
        name = scenario.name
        p99, errors = mid(name, "p99_ms"), mid(name, "errors")
        target = TARGETS_MS.get(scenario.group)
        verdict = ""
        if target is not None:
            met = p99 <= target and errors == 0
            verdict = f"p99 <= {target:.0f} ms: {'met' if met else 'MISSED'}"
        print(
            f"{name:<32} {scenario.group:<18} {mid(name, 'rps'):7.0f} {mid(name, 'p50_ms'):7.1f} "
            f"{p99:7.1f} {mid(name, 'p50_ms') / base_p50:6.1f} {errors:6.0f}  {verdict}"
        )


def run(args: argparse.Namespace, base_url: str, key: str, data_dir: Path) -> None:
    wait_ready(base_url)
    chosen = [
        s
        for s in scenarios(base_url, key)
        if not args.only or args.only in s.name or s.group == "baseline"
    ]
    rows: dict[str, list[Result]] = {s.name: [] for s in chosen}
    for round_no in range(args.rounds):
        for scenario in chosen:
            wrk(base_url, scenario, key, args.clients, 2)  # warm-up
            rows[scenario.name].append(wrk(base_url, scenario, key, args.clients, args.seconds))
            if scenario.group == "draft submission":
                drop_queued_drafts(data_dir)
        print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
    report(args, chosen, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument(
        "--workers", type=int, default=2, help="server processes, as `rca serve --workers`"
    )
    parser.add_argument(
        "--draft-in-server",
        action="store_true",
        help="draft inside one server process (the single-process default of `rca serve`) "
        "instead of a separate worker at nice 10 (what `rca serve --workers N` starts)",
    )
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument("--work", metavar="DATA_DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), args.workers)
        return
    if args.work:
        work(Path(args.work))
        return
    if shutil.which("wrk") is None:
        raise SystemExit("bench/api.py: needs wrk (Debian package `wrk`: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="rca-bench-api-") as tmp:
        data_dir = Path(tmp) / "data"
        key = prepare(data_dir)
        port = free_port()
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "PYTHONPATH": str(ROOT),
            "RCA_BENCH_DRAFT_WORKERS": "0" if not args.draft_in_server else "1",
        }
        worker = None
        if not args.draft_in_server:
            worker = subprocess.Popen([sys.executable, __file__, "--work", str(data_dir)], env=env)
        child = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                str(data_dir),
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
        )
        try:
            run(args, f"http://127.0.0.1:{port}", key, data_dir)
        finally:
            for process in (child, worker):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)


if __name__ == "__main__":
    main()
