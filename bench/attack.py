"""The security attack of issue 16, run again: bounded, against a scratch server on loopback.

    .venv/bin/python bench/attack.py                    # about 1 minute on 2 cores
    .venv/bin/python bench/attack.py --quick            # about 35 s: fewer cases
    .venv/bin/python bench/attack.py --seconds-per-attack 30 --only auth,slow

The script starts one real server the way `rca serve` runs it (uvicorn with rca's guarded
HTTP protocol and query-less access log, `create_app(settings)`, one in-server draft worker
thread) on 127.0.0.1 and a free port, on a scratch data directory in a temporary directory
(SQLite, embedded chroma, the fake bag-of-words embedder, the example postmortems and
incidents imported), with the scripted fake analyst model behind litellm's custom-provider
path, so no real model is needed. The server's header and body timeouts are 3 s, so slow
clients are measured in seconds. It creates a key per role (admin, reviewer, engineer) through
the API, and a revoked one. The server and the directory are removed at the end, on Ctrl-C
and SIGTERM too; killed outright (SIGKILL), the script takes the server with it (the kernel's
parent-death signal) but leaves its directory (`/tmp/rca-attack-*`). Only loopback is ever a
target: every request's host is checked.

Each attack group covers findings of the issue and has a budget: `--seconds-per-attack`
seconds (default 15; 10 with `--quick`) and `--max-requests` (3,000; 800), so a run takes at
most 9 budgets plus about 10 s of set-up; a group out of budget stops and says so. Every
request goes through one client that counts it and checks its answer:

- **5xx**: any answer >= 500 (the service must answer every request with a 4xx at worst);
- **leaks**: a canary secret (AWS key id, `db_password=...`, "db password is ...", a bearer
  token, a GitHub token, a password in a URL) found, as written, HTML-escaped or URL-encoded,
  in any answer or in the server's log -- except the incident as submitted (the echo of
  `POST /v1/incidents`, `GET /v1/incidents/{id}` and the list's titles), which the API
  returns raw to its engineers by design -- and any 2xx for a principal the role matrix
  refuses;
- **failures**: an expectation of the group not met (a 401 that should be, a bound not kept,
  a missing `nosniff` header on any answer, ...).

Groups: auth (every operation of the OpenAPI schema, fetched with the admin key, as no key,
bad keys, a revoked key and each role, judged by the README's role matrix; web forms
without session, with a stale CSRF token or a role too low; sign-in redirects); redaction
(canaries in title, services, tags, summary, alerts, logs, chat, timeline and search queries,
then every page, JSON answer, export and search reachable, the finalized postmortem, the
access log); quadratic (100k-character hostile log lines: page view, search and draft timed
while /healthz must keep answering; a causal chain over the cap gets 422); injection (covert
instructions in evidence, obeyed by the fake analyst when planted as the first alert: the
draft holds no domain, credential hand-over, disabled safeguard or blamed person, and flags
lines about credentials or safeguards); times (overflowing, naive, date-only and
out-of-range times in every field, filter and cursor); collision (finalizing an incident
whose id is a history postmortem's id without `pm-`, and two long ids sharing a prefix);
queue (a burst with one Idempotency-Key, the per-key and global draft-queue caps); slow
(slow-header, idle, slow-body, oversized and unparsable connections while a normal request
still answers); exposure (schema and docs need a key, readiness names no model, malformed
JSON without a key gets 401, NUL and invisible characters stay out of pages, Markdown exports
are `nosniff`). The table ends with the server log scanned for canaries and tracebacks. The
exit status is 1 if any 5xx, leak or failure was found. Not attacked here (the tests do it):
a server killed mid-request (idempotency keys left in flight) and `rca serve --workers N`
leaving processes behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx

from bench import _attacks_access, _attacks_data, _attacks_limits
from bench._probe import OutOfBudget, Probe, Tally, World, leaked, require_loopback

if TYPE_CHECKING:
    from rca.config import Settings

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TIMEOUT_S = 3.0
"""The server's header and body timeouts."""


def attack_settings(data_dir: Path) -> Settings:
    """The server's settings: a scratch data directory, the fakes, short timeouts."""
    from rca.config import Settings

    return Settings(
        data_dir=data_dir,
        database_url=None,
        retrieval={"embedder": "fake", "chroma_url": None},
        llm={"model": "fake/analyst", "max_retries": 0},
        api={
            "host": HOST,
            "header_timeout_s": TIMEOUT_S,
            "body_timeout_s": TIMEOUT_S,
            "draft_workers": 1,
            "warm_up": False,
        },
    )


def serve(data_dir: Path, port: int, parent: int) -> None:
    """The server process: what `rca serve --port PORT` runs, with the fake model registered."""
    import uvicorn

    from api.app import create_app
    from api.serving import end_with_parent, uvicorn_options
    from rca.llm import ScriptedModel, register_provider
    from rca.testing import fake_analyst

    end_with_parent(parent)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    register_provider("fake", ScriptedModel(reply=fake_analyst))
    settings = attack_settings(data_dir)
    uvicorn.run(create_app(settings), host=HOST, port=port, **uvicorn_options(settings))


def prepare(data_dir: Path) -> str:
    """Import the examples into the scratch store; an admin key."""
    from rca.formats.importer import import_paths
    from rca.store import Store
    from rca.store.keys import ApiKeys, Role

    settings = attack_settings(data_dir)
    store = Store.open(settings)
    try:
        examples = [ROOT / "examples" / "postmortems", ROOT / "examples" / "incidents"]
        import_paths(store, examples, settings.imports.max_file_bytes)
        key, _ = ApiKeys(store.engine).create("attack admin", Role.ADMIN)
    finally:
        store.close()
    return key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"bench/attack.py: the server ended:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit("bench/attack.py: the server did not start within 120 s")


def set_up(world: World, admin: str) -> None:
    """Keys for each role (through the API), a revoked key, the index, ids to aim at."""
    require_loopback(world.base)
    with httpx.Client(base_url=world.base, timeout=60) as client:
        auth = {"Authorization": f"Bearer {admin}"}
        world.keys["admin"] = admin
        for role in ("reviewer", "engineer", "revoked"):
            body = {"name": f"attack {role}", "role": "admin" if role == "revoked" else role}
            made = client.post("/v1/admin/keys", json=body, headers=auth)
            made.raise_for_status()
            world.keys[role] = made.json()["key"]
            if role == "revoked":
                client.delete(
                    f"/v1/admin/keys/{made.json()['id']}", headers=auth
                ).raise_for_status()
        deadline = time.monotonic() + 60
        while (synced := client.post("/v1/admin/index/sync", headers=auth)).status_code == 503:
            if time.monotonic() > deadline:  # the draft worker syncs between jobs: wait for it
                synced.raise_for_status()
            time.sleep(0.5)
        synced.raise_for_status()
        world.ids["incident"] = "inc-2026-01-checkout-db-pool"
        world.ids["postmortem"] = "pm-2023-01-checkout-bad-deploy"


def groups() -> list[tuple[str, Callable[[Probe], None]]]:
    return [
        ("auth", _attacks_access.auth),
        ("redaction", _attacks_data.redaction),
        ("quadratic", _attacks_limits.quadratic),
        ("injection", _attacks_data.injection),
        ("times", _attacks_limits.times),
        ("collision", _attacks_data.collision),
        ("slow", _attacks_access.slow_clients),
        ("exposure", _attacks_access.exposure),
        ("queue", _attacks_limits.queue),  # last: it leaves drafts queued
    ]


def run_group(
    world: World, name: str, attack: Callable[[Probe], None], seconds: float, max_requests: int
) -> Tally:
    tally = Tally(name)
    probe = Probe(world, tally, seconds, max_requests)
    started = time.monotonic()
    try:
        attack(probe)
    except OutOfBudget:
        pass  # `cut_short` says so
    except Exception as err:
        tally.failures.append(f"the group stopped: {type(err).__name__}: {err}"[:400])
    finally:
        probe.close()
        tally.seconds = time.monotonic() - started
    return tally


def log_check(world: World) -> Tally:
    """The server's whole log: canaries (query strings included) and tracebacks."""
    time.sleep(0.5)  # let the last access-log lines reach the file
    text = world.log.read_text(errors="replace")
    tally = Tally("server log")
    for line in text.splitlines():
        found = leaked(line)
        if found:
            tally.leaks.append(f"log line {line[:160]!r}: {', '.join(found)}")
    tracebacks = text.count("Traceback (most recent call last)")
    if tracebacks:
        tally.failures.append(f"{tracebacks} traceback(s) in the server log")
    return tally


def report(tallies: list[Tally], wall_s: float) -> None:
    head = f"{'group':<12} {'requests':>8} {'5xx':>5} {'leaks':>5} {'failures':>8} {'seconds':>8}"
    print(f"\n{head}  note")
    for t in tallies:
        note = "out of budget: stopped early" if t.cut_short else ""
        print(
            f"{t.name:<12} {t.requests:>8} {len(t.server_errors):>5} {len(t.leaks):>5} "
            f"{len(t.failures):>8} {t.seconds:>8.1f}  {note}"
        )
    total = Tally("total")
    print(
        f"{total.name:<12} {sum(t.requests for t in tallies):>8} "
        f"{sum(len(t.server_errors) for t in tallies):>5} {sum(len(t.leaks) for t in tallies):>5} "
        f"{sum(len(t.failures) for t in tallies):>8} {wall_s:>8.1f}  (wall time, set-up included)"
    )
    for t in tallies:
        for kind, found in (("5xx", t.server_errors), ("leak", t.leaks), ("failed", t.failures)):
            for what in found[:10]:
                print(f"  {t.name} {kind}: {what}")
            if len(found) > 10:
                print(f"  {t.name} {kind}: ... and {len(found) - 10} more")


def attack(args: argparse.Namespace, tmp: Path) -> list[Tally]:
    data_dir = tmp / "data"
    log = tmp / "server.log"
    admin = prepare(data_dir)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(data_dir), str(port), str(os.getpid())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        world = World(f"http://{HOST}:{port}", port, data_dir, log, {}, args.quick, TIMEOUT_S)
        wait_ready(world.base, server, log)
        set_up(world, admin)
        print(f"attack: server ready on {world.base}", file=sys.stderr, flush=True)
        chosen = [g for g in groups() if not args.only or g[0] in args.only.split(",")]
        tallies = []
        for name, group in chosen:
            print(f"attack: {name} ...", file=sys.stderr, flush=True)
            tallies.append(run_group(world, name, group, args.seconds, args.max_requests))
        tallies.append(log_check(world))
        return tallies
    finally:
        print("attack: stopping the server", file=sys.stderr, flush=True)
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds-per-attack", dest="seconds", type=float, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer cases, smaller budgets")
    parser.add_argument("--max-requests", type=int, default=None, help="per group")
    parser.add_argument("--only", help="comma-separated group names")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]), int(args.serve[2]))
        return
    if args.seconds is None:
        args.seconds = 10.0 if args.quick else 15.0
    if args.max_requests is None:
        args.max_requests = 800 if args.quick else 3000
    # SIGTERM and SIGHUP end the run like Ctrl-C: the server and the directory are removed.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="rca-attack-"))
    try:
        tallies = attack(args, tmp)
    except KeyboardInterrupt:
        raise SystemExit("bench/attack.py: interrupted; the server was stopped") from None
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report(tallies, time.monotonic() - started)
    bad = sum(len(t.server_errors) + len(t.leaks) + len(t.failures) for t in tallies)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
