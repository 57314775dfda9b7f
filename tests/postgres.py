"""A throwaway PostgreSQL cluster for the tests, and a fresh database per test.

`Cluster.start()` runs Debian's PostgreSQL (`/usr/lib/postgresql/<version>/bin`, installed by
`make postgres`) from a temporary directory on a Unix socket only; PostgreSQL refuses to run as
root, so as root (as CI runs) the cluster runs as the `postgres` user. It is tuned for tests,
not for keeping data (no fsync) unless started `durable` (fsync and synchronous commit on, as a
benchmark must run it). A template database is migrated once; each test gets a copy
of it (`CREATE DATABASE ... TEMPLATE`, a few tens of milliseconds), dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

PG_ROOT = Path("/usr/lib/postgresql")
TEMPLATE = "rca_template"
USER = "postgres"


_OPENED: weakref.WeakSet[Any] = weakref.WeakSet()
"""The PostgreSQL connections pools have opened and not yet let go of."""


def _opened(dbapi_connection: Any, _record: Any) -> None:
    if type(dbapi_connection).__module__.startswith("psycopg"):
        _OPENED.add(dbapi_connection)


def track_connections() -> None:
    """Note every connection a pool opens, so `close_connections` can find them."""
    if not event.contains(Pool, "connect", _opened):
        event.listen(Pool, "connect", _opened)


def close_connections() -> None:
    """Close the connections still open: a test's engine left undisposed would otherwise let
    them be collected open (a ResourceWarning, an error under `filterwarnings = error`)."""
    for connection in list(_OPENED):
        connection.close()
    _OPENED.clear()


def binaries() -> Path | None:
    """The newest installed PostgreSQL's bin directory, if any."""
    found = sorted(
        (p / "bin" for p in PG_ROOT.glob("*") if (p / "bin" / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def _as_owner(command: list[str]) -> list[str]:
    """`command` as the cluster's owner: the `postgres` user when we are root, else us."""
    if os.geteuid() != 0:
        return command
    return ["su", USER, "-s", "/bin/sh", "-c", shlex.join(command)]


@dataclass
class Cluster:
    """A running throwaway cluster: its directory (socket inside) and binaries."""

    bin: Path
    root: Path
    databases: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, pg_bin: Path, durable: bool = False) -> Cluster:
        """Start a cluster; `durable` keeps PostgreSQL's defaults for fsync, synchronous commit
        and full-page writes (what production runs), instead of turning them off."""
        root = Path(tempfile.mkdtemp(prefix="rca-pg-"))
        if os.geteuid() == 0:
            shutil.chown(root, USER)
        cluster = cls(pg_bin, root)
        try:
            cluster._run("initdb", "-D", str(root / "db"), "-A", "trust", "-U", USER, "-E", "UTF8")
            unsafe = (
                "" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            options = (
                f"-k {root} -c listen_addresses={unsafe} -c max_connections=300"
                " -c shared_buffers=64MB -c timezone=UTC"
            )
            cluster._run(
                "pg_ctl", "-D", str(root / "db"), "-o", options, "-l", str(root / "log"), "-w",
                "start",
            )  # fmt: skip
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            _as_owner([str(self.bin / tool), *args]),
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (psycopg 3, over the Unix socket)."""
        return f"postgresql+psycopg://{USER}@/{database}?host={self.root}"

    def execute(self, *statements: str) -> None:
        """Run statements outside a transaction in the maintenance database."""
        import psycopg

        with psycopg.connect(host=str(self.root), user=USER, dbname="postgres") as conn:
            conn.autocommit = True
            for statement in statements:
                conn.execute(statement.encode())

    def create(self, template: str = "template1") -> str:
        """A new empty database (or a copy of `template`); its name."""
        name = "t_" + secrets.token_hex(6)
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return name

    def drop(self, name: str) -> None:
        """Drop a database, ending the connections still open to it."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the cluster at once and remove its directory."""
        if (self.root / "db" / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.root / "db"), "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass  # already gone
        shutil.rmtree(self.root, ignore_errors=True)
