"""Idempotent requests: the first request with a key runs; a replay gets the stored answer.

`once` runs a request's work and stores its answer in one write transaction, together with the
work's own writes (store writes inside it join the transaction). So a key is never left
reserved by a process that died: either the write and its answer committed, and a retry
replays the answer, or neither did, and a retry runs the request again. The same key with a
different request is refused (422). A row still `in_flight` can only have been left by an
older version, which reserved keys in a transaction of their own: its request is run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, Row, select, update

from rca.errors import Conflict, InvalidArgument, RcaError
from rca.store.engine import idempotency_keys
from rca.store.writes import insert_new, writing

MAX_KEY_LENGTH = 200
T = TypeVar("T")


class KeyReused(RcaError):
    """An Idempotency-Key sent again with a different request (HTTP 422)."""


@dataclass(frozen=True)
class Replay:
    """The stored answer of a finished request."""

    status_code: int
    body: str


def body_hash(method: str, path: str, body: bytes) -> str:
    """What identifies a request for idempotency: method, path and exact body."""
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


class IdempotencyKeys:
    """The idempotency table."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def once(
        self,
        principal: str,
        key: str,
        request_hash: str,
        work: Callable[[], T],
        answer: Callable[[T], Replay],
    ) -> T | Replay:
        """`work()` the first time (its writes and `answer` of its result commit together, or
        nothing does when it raises); the stored answer, as a Replay, every later time."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidArgument(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
            )
        mine = (idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
        with writing(self.engine) as conn:
            row = self._locked(conn, mine)
            if row is None and not insert_new(
                conn,
                idempotency_keys,
                {
                    "principal": principal,
                    "key": key,
                    "request_hash": request_hash,
                    "state": "in_flight",
                    "created_at": datetime.now(UTC),
                },
            ):
                # On PostgreSQL a concurrent request with the key reserved it first: the insert
                # waited for its transaction, whose row (its answer) is read now.
                row = self._locked(conn, mine)
                if row is None:
                    raise Conflict(
                        "a request with this Idempotency-Key was answered at the same moment;"
                        " send it again to get the stored answer"
                    )
            if row is not None and row.request_hash != request_hash:
                raise KeyReused("this Idempotency-Key was used with a different request")
            if row is not None and row.state == "done":
                return Replay(int(row.status_code), str(row.body))
            result = work()
            stored = answer(result)
            conn.execute(
                update(idempotency_keys)
                .where(*mine)
                .values(state="done", status_code=stored.status_code, body=stored.body)
            )
        return result

    @staticmethod
    def _locked(conn: Connection, mine: tuple[ColumnElement[bool], ...]) -> Row[Any] | None:
        """The key's row, locked until the transaction ends (a concurrent request waits)."""
        return conn.execute(select(idempotency_keys).where(*mine).with_for_update()).one_or_none()
