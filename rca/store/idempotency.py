"""Idempotent requests: the first request with a key runs; a replay gets the stored answer.

`begin` reserves (principal, key) for a request body's hash inside a write transaction: a new
key is reserved (state `in_flight`), a finished one returns the stored status and body, one
still in flight is a conflict (409), and the same key with a different body is refused (422).
`finish` stores the answer; `abandon` frees the key when the request failed, so it may be
retried.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, insert, select, update

from rca.errors import Conflict, InvalidArgument, RcaError
from rca.store.engine import idempotency_keys, write_transaction

MAX_KEY_LENGTH = 200


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

    def begin(self, principal: str, key: str, request_hash: str) -> Replay | None:
        """None: go ahead (the key is now reserved); a Replay: answer with it."""
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise InvalidArgument(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
            )
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
                )
            ).one_or_none()
            if row is None:
                conn.execute(
                    insert(idempotency_keys).values(
                        principal=principal,
                        key=key,
                        request_hash=request_hash,
                        state="in_flight",
                        created_at=datetime.now(UTC),
                    )
                )
                return None
        if row.request_hash != request_hash:
            raise KeyReused("this Idempotency-Key was used with a different request")
        if row.state != "done":
            raise Conflict("a request with this Idempotency-Key is still in flight")
        return Replay(int(row.status_code), str(row.body))

    def finish(self, principal: str, key: str, status_code: int, body: str) -> None:
        """Store the answer for replays."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
                .values(state="done", status_code=status_code, body=body)
            )

    def abandon(self, principal: str, key: str) -> None:
        """Free a reserved key after the request failed."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                delete(idempotency_keys).where(
                    idempotency_keys.c.principal == principal,
                    idempotency_keys.c.key == key,
                    idempotency_keys.c.state == "in_flight",
                )
            )
