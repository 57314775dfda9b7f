"""Browser sessions for the reviewer web UI.

Signing in with an API key creates a session: a random token for an HttpOnly cookie (only its
SHA-256 is stored) and a CSRF token that every form must echo. A session acts as its API key,
so revoking or expiring the key ends its sessions at the next request; sessions also expire on
their own (8 hours by default) and on sign-out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from rca.store.engine import api_keys, read_transaction, web_sessions, write_transaction
from rca.store.keys import KeyInfo, Principal, Role


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who it acts as and the token its forms must carry."""

    principal: Principal
    csrf: str

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant-time)."""
        return presented is not None and hmac.compare_digest(presented, self.csrf)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class WebSessions:
    """The session table."""

    def __init__(self, engine: Engine, lifetime: timedelta = timedelta(hours=8)) -> None:
        self.engine = engine
        self.lifetime = lifetime

    def start(self, principal: Principal) -> tuple[str, Session]:
        """A new session for an authenticated key: the cookie token (never stored) and the
        session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
            conn.execute(
                insert(web_sessions).values(
                    token_hash=_hash(token),
                    key_id=principal.key_id,
                    csrf=csrf,
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return token, Session(principal, csrf)

    def resolve(self, token: str | None) -> Session | None:
        """The live session of a cookie token, or None (unknown, expired, or its key revoked
        or expired)."""
        if not token or len(token) > 100:
            return None
        now = datetime.now(UTC)
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(
                    web_sessions.c.csrf,
                    web_sessions.c.expires_at.label("session_expires_at"),
                    api_keys,
                )
                .join(api_keys, api_keys.c.id == web_sessions.c.key_id)
                .where(web_sessions.c.token_hash == _hash(token))
            ).one_or_none()
        if row is None or row.session_expires_at <= now:
            return None
        key = KeyInfo(
            row.id, row.name, Role(row.role), row.created_at, row.expires_at, row.revoked_at
        )
        if not key.active(now):
            return None
        return Session(Principal(key.id, key.name, key.role), row.csrf)

    def end(self, token: str | None) -> None:
        """Sign out (an unknown token changes nothing)."""
        if token:
            with write_transaction(self.engine) as conn:
                conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == _hash(token)))
