"""The load generator of `bench/api.py`: a scenario as a wrk Lua script, wrk run, its output read.

wrk keeps `clients` keep-alive connections busy from ONE thread (closed loop: each connection
sends its next request as soon as the previous one was answered); see `bench/api.py` for why one.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass


@dataclass
class Scenario:
    """One kind of request, as wrk sends it: a method, paths taken in turn, maybe a body; every
    `__ID__` in the path or body is replaced by a value no other request of the run had."""

    name: str
    group: str
    """What the target is for: `baseline`, `reads`, `search`, `draft submission`, ..."""
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
local started = os.time()
function request()
  counter = counter + 1
  local unique = started .. "-" .. counter
  local path = paths[(counter % #paths) + 1]:gsub("__ID__", unique)
  local body = nil
  if template then
    body = (template:gsub("__ID__", unique))
  end
  return wrk.format("{method}", path, nil, body)
end
"""


def lua_string(text: str) -> str:
    """`text` as a Lua long string (no escaping needed unless it holds `]==]`)."""
    if "]==]" in text:
        raise ValueError(f"cannot quote {text!r} for Lua")
    return "[==[" + text + "]==]"


@dataclass
class Result:
    """One wrk run of one scenario."""

    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    """Answers that were not 2xx/3xx, plus socket errors (connect, read, write, timeout)."""
    requests: int = 0
    """Answers counted (wrk's `N requests in`)."""
    cpu_ms: float | None = None
    """CPU time the server side spent per answer: every process of the deployment (`rca
    serve` and all below it, the draft worker, PostgreSQL, the Chroma server), user and
    system, over the run, divided by `requests`; None when not read. It counts what the
    requests set off in the background too: in the draft-submission row, the worker drafting
    the jobs submitted."""


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if found is None:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(output: str) -> Result:
    """Requests per second, p50, p99 and errors from wrk's `--latency` output."""
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
    answered = re.search(r"^\s*(\d+) requests in", output, re.MULTILINE)
    return Result(
        float(rps.group(1)),
        _ms(percentiles["50"]),
        _ms(percentiles["99"]),
        errors,
        int(answered.group(1)) if answered else 0,
    )


def wrk(base_url: str, scenario: Scenario, key: str, clients: int, seconds: float) -> Result:
    """Run wrk for `seconds` with `clients` connections from one thread."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(scenario.script(key))
    try:
        done = subprocess.run(
            [
                *("wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency"),
                *("--timeout", "10s", "-s", script.name, base_url),
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        os.unlink(script.name)
    return parse_wrk(done.stdout)
