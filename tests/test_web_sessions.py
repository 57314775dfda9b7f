"""Web UI sessions: they act as their API key and end with it, on sign-out or on expiry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rca.config import Settings
from rca.keys import ApiKeys, Role
from rca.sessions import WebSessions
from rca.store import Store


def test_a_session_lives_as_long_as_its_key_its_lifetime_and_its_sign_out(
    tmp_path: Path,
) -> None:
    store = Store.open(Settings(data_dir=tmp_path))
    keys = ApiKeys(store.engine)
    sessions = WebSessions(store.engine)
    try:
        key, info = keys.create("ana", Role.REVIEWER)
        principal = keys.authenticate(key)
        assert principal is not None
        token, session = sessions.start(principal)
        assert sessions.resolve(token) == session
        assert session.csrf_ok(session.csrf) and not session.csrf_ok("forged")
        assert not session.csrf_ok(None)
        assert sessions.resolve("not-a-token") is None and sessions.resolve(None) is None

        other, _ = sessions.start(principal)
        sessions.end(other)
        assert sessions.resolve(other) is None and sessions.resolve(token) is not None

        keys.revoke(info.id)
        assert sessions.resolve(token) is None  # revoking the key ends its sessions

        key2, _ = keys.create("bo", Role.ENGINEER)
        short = WebSessions(store.engine, lifetime=timedelta(seconds=-1))
        principal2 = keys.authenticate(key2)
        assert principal2 is not None
        expired, _ = short.start(principal2)
        assert sessions.resolve(expired) is None
    finally:
        store.close()
