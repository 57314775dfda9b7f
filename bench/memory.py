"""Memory of every process of `rca serve --workers 2` on a 10,000-postmortem data directory.

    .venv/bin/python bench/memory.py [--data-dir /tmp/rca-memory] [--postmortems 10000]
                                     [--searches 40] [--reads 40] [--workers 2]

The data directory is built once (bench/search.py's synthetic corpus: stored in SQLite and
indexed into embedded chroma, document vectors from the bag-of-words fake at MiniLM's dimension)
and reused by later runs. Then `rca serve --workers N` runs on it with the real embedding model
and its defaults (warm-up on), is driven with similar searches (each a new text: a real query
embedding) and reads (postmortem pages and lists), and every process below it is listed with
its VmRSS (resident now) and VmHWM (peak resident), and whether it has torch mapped.

Run it from the checkout to measure (its `rca` is the one under test); it needs only /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RCA = Path(sys.executable).parent / "rca"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_data(data_dir: Path, size: int) -> None:
    """Build the corpus unless an earlier run did (`built.json` says how big)."""
    marker = data_dir / "built.json"
    if marker.exists() and json.loads(marker.read_text())["postmortems"] == size:
        return
    from bench.search import build

    started = time.perf_counter()
    report = build(data_dir, size)
    report["build_seconds"] = time.perf_counter() - started
    marker.write_text(json.dumps(report))
    print(f"built {data_dir}: {json.dumps(report)}", file=sys.stderr)


def call(base: str, key: str, path: str) -> Any:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


def below(pid: int) -> list[int]:
    """The processes below `pid` (children, theirs, ...)."""
    parents: set[int] = {pid}
    found: list[int] = []
    while True:
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid in parents and int(entry.name) not in found:
                children.append(int(entry.name))
        if not children:
            return found
        found += children
        parents = set(children)


def role(pid: int) -> str:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    if "embedder_service" in command or "embedder serve" in command:
        return "embedder"
    if "resource_tracker" in command:
        return "mp tracker"
    if " worker" in command:
        return "draft worker"
    if "multiprocessing" in command:
        return "server process"
    return command[:60]


def has_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/rca-memory"))
    parser.add_argument("--postmortems", type=int, default=10_000)
    parser.add_argument("--searches", type=int, default=40)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ensure_data(args.data_dir, args.postmortems)

    from bench.search import query_texts

    port = free_port()
    env = {**os.environ, "RCA_DATA_DIR": str(args.data_dir.resolve()), "HF_HUB_OFFLINE": "1"}
    env.pop("RCA_RETRIEVAL__EMBEDDER", None)
    env.pop("RCA_RETRIEVAL__EMBEDDER_URL", None)
    log = args.data_dir.parent / f"memory-serve-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(RCA), "serve", "--admin-key", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {}
    try:
        started = time.monotonic()
        key = ""
        while True:
            if server.poll() is not None or time.monotonic() - started > 600:
                raise SystemExit(f"rca serve did not start:\n{log.read_text()}")
            found = re.search(r"admin API key .*: (\S+)$", log.read_text(), re.MULTILINE)
            key = found.group(1) if found else ""
            try:
                if key and call(base, key, "/healthz") is not None:
                    break
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                pass
            time.sleep(0.5)
        result["start_seconds"] = round(time.monotonic() - started, 1)
        rng = random.Random(5)
        degraded = 0
        times: list[float] = []
        ids: list[str] = []
        for n, text in enumerate(query_texts(args.searches)):
            query = urllib.parse.urlencode({"q": f"{text[:3000]} run{n}", "k": 10})
            before = time.perf_counter()
            found = call(base, key, f"/v1/search/similar?{query}")
            times.append(time.perf_counter() - before)
            degraded += bool(found["degraded"])
            ids += [hit["postmortem_id"] for hit in found["hits"]]
        page = call(base, key, "/v1/postmortems?limit=50")
        ids += [item["id"] for item in page["items"]]
        for pm_id in rng.sample(ids, min(args.reads, len(ids))):
            call(base, key, f"/v1/postmortems/{pm_id}")
        times.sort()
        result["searches"] = args.searches
        result["degraded_searches"] = degraded
        result["search_p50_ms"] = round(times[len(times) // 2] * 1000, 1)
        result["reads"] = min(args.reads, len(ids))
        processes = [server.pid, *below(server.pid)]
        rows = []
        for pid in processes:
            memory = status(pid)
            rows.append(
                {
                    "pid": pid,
                    "role": "supervisor" if pid == server.pid else role(pid),
                    "rss_mib": round(memory["VmRSS"] / 1024),
                    "hwm_mib": round(memory["VmHWM"] / 1024),
                    "torch": has_torch(pid),
                }
            )
        result["processes"] = rows
        result["total_rss_mib"] = sum(r["rss_mib"] for r in rows)
        result["load_average"] = os.getloadavg()
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
    print(json.dumps(result, indent=2))
    print(f"{'process':<16}{'pid':>8}{'VmRSS MiB':>11}{'VmHWM MiB':>11}  torch")
    for row in result["processes"]:
        print(
            f"{row['role']:<16}{row['pid']:>8}{row['rss_mib']:>11}{row['hwm_mib']:>11}"
            f"  {'yes' if row['torch'] else 'no'}"
        )


if __name__ == "__main__":
    main()
