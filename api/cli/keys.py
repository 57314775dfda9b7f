"""`rca keys create|list|revoke`: API keys, shown once at creation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from rca.cli.common import settings_of
from rca.errors import InvalidArgument
from rca.store import Store
from rca.store.keys import ApiKeys, Role

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    role: Annotated[Role, typer.Option("--role")] = Role.ENGINEER,
    expires_days: Annotated[
        int | None, typer.Option("--expires-days", min=1, max=3650, help="Lifetime in days.")
    ] = None,
) -> int:
    """Create a key; it is printed once and stored only as a hash."""
    store = Store.open(settings_of(ctx))
    try:
        lifetime = timedelta(days=expires_days) if expires_days else None
        key, info = ApiKeys(store.engine).create(name, role, lifetime)
    finally:
        store.close()
    typer.echo(f"created key {info.id} ({info.role.value}) for {info.name}")
    typer.echo(key)
    return 0


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> int:
    """Every key: id, role, name, state."""
    store = Store.open(settings_of(ctx))
    try:
        keys = ApiKeys(store.engine).list()
    finally:
        store.close()
    now = datetime.now(UTC)
    for info in keys:
        state = "active" if info.active(now) else ("revoked" if info.revoked_at else "expired")
        expires = info.expires_at.date().isoformat() if info.expires_at else "never"
        typer.echo(f"{info.id}  {info.role.value:<8}  {state:<7}  expires {expires}  {info.name}")
    if not keys:
        typer.echo("no keys")
    return 0


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument()]) -> int:
    """Revoke a key by its id; requests with it get 401 from now on."""
    if not key_id.strip():
        raise InvalidArgument("give the key id (see `rca keys list`)")
    store = Store.open(settings_of(ctx))
    try:
        info = ApiKeys(store.engine).revoke(key_id.strip())
    finally:
        store.close()
    typer.echo(f"revoked key {info.id} ({info.name})")
    return 0
