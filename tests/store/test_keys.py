"""API keys: how long a server process may trust a key it has checked (`remember_s`)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

import rca.store.keys
from rca.store import Store
from rca.store.keys import ApiKeys, Role


def test_without_remembering_a_revocation_elsewhere_counts_at_once(store: Store) -> None:
    here, elsewhere = ApiKeys(store.engine), ApiKeys(store.engine)
    key, info = here.create("ops", Role.ENGINEER)
    assert here.authenticate(key) is not None
    elsewhere.revoke(info.id)
    assert here.authenticate(key) is None


def test_a_remembered_key_is_trusted_until_the_time_runs_out(store: Store) -> None:
    here, elsewhere = ApiKeys(store.engine, remember_s=0.5), ApiKeys(store.engine)
    key, info = here.create("ops", Role.REVIEWER)
    principal = here.authenticate(key)
    assert principal is not None and principal.role is Role.REVIEWER
    elsewhere.revoke(info.id)  # another process: this one does not read the key again yet
    assert here.authenticate(key) == principal
    time.sleep(0.6)
    assert here.authenticate(key) is None
    assert here.authenticate(key) is None  # a refusal is never remembered as a success


def test_a_revocation_through_the_same_object_counts_at_once(store: Store) -> None:
    keys = ApiKeys(store.engine, remember_s=300)
    key, info = keys.create("ops", Role.ADMIN)
    assert keys.authenticate(key) is not None
    keys.revoke(info.id)
    assert keys.authenticate(key) is None


def test_a_key_is_not_trusted_past_its_expiry(store: Store) -> None:
    keys = ApiKeys(store.engine, remember_s=300)
    key, _ = keys.create("brief", Role.ENGINEER, timedelta(milliseconds=400))
    assert keys.authenticate(key) is not None
    time.sleep(0.5)
    assert keys.authenticate(key) is None


def test_a_wrong_secret_or_a_wrong_id_is_never_taken_for_a_remembered_key(store: Store) -> None:
    keys = ApiKeys(store.engine, remember_s=300)
    key, _ = keys.create("ops", Role.ENGINEER)
    other, _ = keys.create("other", Role.ENGINEER)
    assert keys.authenticate(key) is not None and keys.authenticate(other) is not None
    assert keys.authenticate(key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")) is None
    borrowed = other[: len("rca_") + 12] + key[len("rca_") + 12 :]  # other's id, key's secret
    assert keys.authenticate(borrowed) is None


def test_remembered_keys_are_bounded(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rca.store.keys, "_TRUSTED_MAX", 2)
    keys = ApiKeys(store.engine, remember_s=300)
    made = [keys.create(f"k{i}", Role.ENGINEER)[0] for i in range(5)]
    for key in made:
        assert keys.authenticate(key) is not None
        assert len(keys._trusted) <= 2
