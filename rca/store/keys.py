"""API keys: created once and shown once, stored hashed, looked up by prefix, revocable.

A key reads `rca_<id>_<secret>`: the id (12 hex characters) is stored in clear and used to find
the row; only the SHA-256 of the secret (32 random bytes, URL-safe) is stored, and it is
compared in constant time. Keys are high-entropy random values, so a fast hash is enough (a
password hash would only slow every request down).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Engine, bindparam, insert, select, update

from rca.errors import InvalidArgument, NotFound
from rca.store.engine import api_keys, read_transaction, write_transaction

_KEY = re.compile(r"^rca_(?P<id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
_TRUSTED_MAX = 4096
"""Most keys an `ApiKeys` remembers at once (forgotten all together past that)."""
_KEY_ROW = select(api_keys).where(api_keys.c.id == bindparam("ident"))
"""One key's row, read on every request (built once: one built per call costs more than
running it)."""


class Role(StrEnum):
    """What a key may do; each role includes the ones before it."""

    ENGINEER = "engineer"
    """Incidents, drafts, similar search, postmortems (read), action items (read)."""
    REVIEWER = "reviewer"
    """Also review and finalize drafts, import postmortems, update action items."""
    ADMIN = "admin"
    """Also keys and index maintenance."""

    def allows(self, needed: Role) -> bool:
        """Whether this role includes `needed`."""
        order = [Role.ENGINEER, Role.REVIEWER, Role.ADMIN]
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: str
    name: str
    role: Role


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without its secret."""

    id: str
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


class ApiKeys:
    """The key table."""

    def __init__(self, engine: Engine, remember_s: float = 0.0) -> None:
        """`remember_s`: how long a key that authenticated is trusted again without reading
        its row (a server process under load reads it once a second instead of once a
        request); a revocation through this object ends it at once, one through another
        process after `remember_s` at most. 0: read the row every time."""
        self.engine = engine
        self.remember_s = remember_s
        self._trusted: dict[str, tuple[Principal, float]] = {}
        self._trusted_lock = threading.Lock()

    def create(
        self, name: str, role: Role, expires_in: timedelta | None = None
    ) -> tuple[str, KeyInfo]:
        """A new key: the full key (shown once, never stored) and what is stored."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidArgument("a key needs a name of 1 to 100 characters")
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidArgument("a key's lifetime must be positive")
        ident = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + expires_in if expires_in is not None else None
        with write_transaction(self.engine) as conn:
            conn.execute(
                insert(api_keys).values(
                    id=ident,
                    name=name,
                    role=role.value,
                    secret_hash=_hash(secret),
                    created_at=now,
                    expires_at=expires,
                )
            )
        return f"rca_{ident}_{secret}", KeyInfo(ident, name, role, now, expires, None)

    def list(self) -> list[KeyInfo]:
        """Every key, newest first."""
        with read_transaction(self.engine) as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at.desc())).all()
        return [
            KeyInfo(r.id, r.name, Role(r.role), r.created_at, r.expires_at, r.revoked_at)
            for r in rows
        ]

    def revoke(self, ident: str) -> KeyInfo:
        """Revoke a key (idempotent); later requests with it get 401."""
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == ident)).one_or_none()
            if row is None:
                raise NotFound("API key", ident)
            revoked = row.revoked_at or now
            if row.revoked_at is None:
                conn.execute(update(api_keys).where(api_keys.c.id == ident).values(revoked_at=now))
        self._forget(ident)
        return KeyInfo(row.id, row.name, Role(row.role), row.created_at, row.expires_at, revoked)

    def authenticate(self, token: str) -> Principal | None:
        """The principal a presented key belongs to, or None (malformed, unknown, wrong secret,
        revoked or expired: the caller answers 401 alike)."""
        found = _KEY.match(token)
        if found is None:
            # Still hash something, so a malformed key takes as long as a wrong one.
            hmac.compare_digest(_hash("x" * 43), _hash("y" * 43))
            return None
        presented = _hash(found.group("secret"))
        if self.remember_s > 0:
            known = self._trusted.get(presented)
            if known is not None and known[0].key_id == found.group("id"):
                if time.monotonic() < known[1]:
                    return known[0]
        with read_transaction(self.engine) as conn:
            row = conn.execute(_KEY_ROW, {"ident": found.group("id")}).one_or_none()
        stored = row.secret_hash if row is not None else _hash("z" * 43)
        if not hmac.compare_digest(presented, stored) or row is None:
            return None
        info = KeyInfo(
            row.id, row.name, Role(row.role), row.created_at, row.expires_at, row.revoked_at
        )
        now = datetime.now(UTC)
        if not info.active(now):
            return None
        principal = Principal(info.id, info.name, info.role)
        if self.remember_s > 0:
            self._trust(presented, principal, info.expires_at, now)
        return principal

    def _trust(
        self, presented: str, principal: Principal, expires: datetime | None, now: datetime
    ) -> None:
        """Remember a key that authenticated, until `remember_s` pass or it expires."""
        for_s = self.remember_s
        if expires is not None:
            for_s = min(for_s, (expires - now).total_seconds())
        with self._trusted_lock:
            if len(self._trusted) >= _TRUSTED_MAX:  # only valid keys get here: a bound, not LRU
                self._trusted.clear()
            self._trusted[presented] = (principal, time.monotonic() + for_s)

    def _forget(self, ident: str) -> None:
        with self._trusted_lock:
            for presented, (principal, _) in list(self._trusted.items()):
                if principal.key_id == ident:
                    del self._trusted[presented]
