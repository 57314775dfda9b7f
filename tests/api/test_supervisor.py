"""`rca serve --workers N`'s supervisor (`api.supervisor`), for real: each server process on a
socket of its own, connections spread over them, a held port refused at once, a dead process
replaced, and one that cannot start stopping everything."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.api.support import free_port
from tests.processes import descendants, is_running, kill, rca_serve, server_processes

# The supervisor is the same whatever the database: once is enough.
pytestmark = pytest.mark.sqlite_only
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def listening_inodes(port: int) -> set[str]:
    """The inodes of the sockets listening on `port` (IPv4, any address)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == LISTEN and int(local.split(":")[1], 16) == port:
            found.add(inode)
    return found


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process `pid` holds open."""
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    return held


def serve_command(port: int) -> list[str]:
    rca = str(Path(sys.executable).parent / "rca")
    return [rca, "serve", "--workers", "2", "--port", str(port)]


def serve_refused(port: int, data_dir: Path) -> str:
    """The output of an `rca serve --workers 2` on `port` that must end at once with 3."""
    done = subprocess.run(
        serve_command(port),
        env={**os.environ, "RCA_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    return done.stdout + done.stderr


def server_pids(supervisor: int) -> list[int]:
    return [p.pid for p in server_processes(supervisor)]


def wait_listening(port: int, count: int, timeout_s: float = 180) -> set[str]:
    """The listening sockets on `port`, once there are `count` (each process listens only once
    its app has started)."""
    deadline = time.monotonic() + timeout_s
    while len(inodes := listening_inodes(port)) < count:
        assert time.monotonic() < deadline, f"{len(inodes)} of {count} processes listen"
        time.sleep(0.2)
    return inodes


def accepted_by(pid: int, port: int) -> int:
    """How many established connections to `port` process `pid` holds."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            established.add(fields[9])
    return len(established & socket_inodes(pid))


def test_each_server_process_listens_on_its_own_socket_and_gets_connections(
    tmp_path: Path,
) -> None:
    port = free_port()
    with rca_serve(tmp_path / "data", port, "--workers", "2") as served:
        listening = wait_listening(port, 2)
        servers = server_pids(served.process.pid)
        assert len(servers) == 2
        assert [len(socket_inodes(pid) & listening) for pid in servers] == [1, 1]
        clients = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(64)]
        try:
            for client in clients:  # keep-alive connections, each answered once
                client.request("GET", "/healthz")
                assert client.getresponse().read()
            shares = [accepted_by(pid, port) for pid in servers]
        finally:
            for client in clients:
                client.close()
        # The kernel spreads connections by a hash of the addresses: even split on average;
        # fewer than 8 of 64 has a chance of about 1 in 10^10.
        assert sum(shares) == 64
        assert min(shares) >= 8, shares
        # A second `rca serve` cannot join the port (only the same user's could ask to).
        serve_refused(port, tmp_path / "two")
        assert listening_inodes(port) == listening


def test_a_port_held_by_another_program_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        output = serve_refused(port, tmp_path / "data")
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "--port or RCA_API__PORT" in output
    assert "embedding service" not in output.lower()
    assert time.monotonic() - started < 60  # no process was started and waited for


def test_a_server_process_that_dies_is_replaced_and_sigterm_stops_them_all(
    tmp_path: Path,
) -> None:
    port = free_port()
    with rca_serve(tmp_path / "data", port, "--workers", "2") as served:
        wait_listening(port, 2)
        first, second = server_pids(served.process.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 180
        while True:
            now = server_pids(served.process.pid)
            if first not in now and len(now) == 2 and len(listening_inodes(port)) == 2:
                break
            assert time.monotonic() < deadline, f"not replaced: {now}"
            time.sleep(0.2)
        assert second in now
        assert "ended (exit code -9); starting another" in served.log.read_text()
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        client.request("GET", "/healthz")
        assert client.getresponse().status == 200
        client.close()
        below = server_pids(served.process.pid)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(60) == 0
        left = [pid for pid in below if is_running(pid)]
        assert left == []
        assert listening_inodes(port) == set()


def test_server_processes_that_cannot_start_stop_the_supervisor(tmp_path: Path) -> None:
    unreachable = "postgresql+psycopg://rca@127.0.0.1:1/rca"  # nothing listens on port 1
    server = subprocess.Popen(
        serve_command(free_port()),
        env={
            **os.environ,
            "RCA_DATA_DIR": str(tmp_path / "data"),
            "RCA_DATABASE_URL": unreachable,
            "RCA_RETRIEVAL__EMBEDDER": "fake",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = server.communicate(timeout=240)
    finally:
        kill([p for p in descendants(server.pid) if is_running(p.pid)])
        server.kill()
    assert server.returncode == 3, output
    assert "failed to start (see above); stopping" in output
    assert "starting another" not in output
