"""`rca integrations create|list|revoke`, `rca changes list` and `rca ingest slack`: the tools
that feed rca, from the command line."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from rca.cli.common import open_store, settings_of
from rca.domain.additions import MAX_ADDED, EvidenceAdditions, IncidentChange, NewChatMessage
from rca.domain.change import ChangeKind
from rca.domain.values import as_utc
from rca.errors import InvalidArgument
from rca.integrations.slack import read_export
from rca.store.changes import ChangeFeed
from rca.store.incident_changes import change_incident_in
from rca.store.integrations import IntegrationKind, Integrations
from rca.store.writes import writing

integrations_app = typer.Typer(
    help="Create, list and revoke the integrations that send rca webhooks.", no_args_is_help=True
)
changes_app = typer.Typer(
    help="The change feed: deploys, config changes, flags.", no_args_is_help=True
)
ingest_app = typer.Typer(help="Add history from other tools to an incident.", no_args_is_help=True)


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidArgument(
            f"{option} must be a time with an offset, like 2026-03-01T09:00:00Z"
        ) from None


@integrations_app.command("create")
def integrations_create(
    ctx: typer.Context,
    kind: Annotated[IntegrationKind, typer.Argument(help="alertmanager, pagerduty or github")],
    name: Annotated[str, typer.Option("--name", help="What sends with it.")] = "",
    secret_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="Read the signing secret from standard input (PagerDuty's, or your own for "
            "GitHub).",
        ),
    ] = False,
) -> int:
    """Create an integration; its token or secret is printed once."""
    secret = sys.stdin.readline().strip() if secret_stdin else None
    if secret_stdin and not secret:
        raise InvalidArgument("--secret-stdin read nothing: pipe the secret in")
    store = open_store(ctx)
    try:
        made = Integrations(store.engine).create(kind, name or kind.value, secret)
    finally:
        store.close()
    info = made.info
    typer.echo(f"created integration {info.id} ({info.kind.value}) named {info.name}")
    if kind is IntegrationKind.ALERTMANAGER:
        typer.echo("bearer token for http_config.authorization.credentials (shown once):")
        typer.echo(made.credential)
    elif secret is None:
        typer.echo("webhook secret for GitHub (shown once):")
        typer.echo(made.credential)
    else:
        typer.echo("signing secret stored")
    return 0


@integrations_app.command("list")
def integrations_list(ctx: typer.Context) -> int:
    """Every integration: id, kind, state, name."""
    store = open_store(ctx)
    try:
        found = Integrations(store.engine).list()
    finally:
        store.close()
    for info in found:
        state = "revoked" if info.revoked_at else "active"
        typer.echo(f"{info.id}  {info.kind.value:<12}  {state:<7}  {info.name}")
    if not found:
        typer.echo("no integrations")
    return 0


@integrations_app.command("revoke")
def integrations_revoke(ctx: typer.Context, ident: Annotated[str, typer.Argument()]) -> int:
    """Revoke an integration; its deliveries get 401 from now on."""
    store = open_store(ctx)
    try:
        info = Integrations(store.engine).revoke(ident.strip())
    finally:
        store.close()
    typer.echo(f"revoked integration {info.id} ({info.name})")
    return 0


@changes_app.command("list")
def changes_list(
    ctx: typer.Context,
    service: Annotated[list[str] | None, typer.Option("--service")] = None,
    kind: Annotated[list[ChangeKind] | None, typer.Option("--kind")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time with offset")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time with offset")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
) -> int:
    """Changes, newest first: time, kind, service, version, summary (flagged: unknown service)."""
    store = open_store(ctx)
    try:
        feed = ChangeFeed(store.engine).page(
            limit, None, service or [], kind or [], _time(since, "--since"), _time(until, "--until")
        )
    finally:
        store.close()
    for change in feed:
        flag = "" if change.known_service else "  [unknown service]"
        version = f" {change.version}" if change.version else ""
        typer.echo(
            f"{change.at.isoformat()}  {change.kind.value:<6}  {change.service}{version}  "
            f"{change.summary.splitlines()[0][:120]}{flag}"
        )
    if not feed:
        typer.echo("no changes")
    return 0


@ingest_app.command("slack")
def ingest_slack(
    ctx: typer.Context,
    export: Annotated[Path, typer.Argument(help="A Slack export: the .zip or its folder.")],
    channel: Annotated[str, typer.Option("--channel", help="Channel name or id.")],
    incident: Annotated[str, typer.Option("--incident", help="The incident to add to.")],
    since: Annotated[str | None, typer.Option("--since", help="ISO time with offset")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO time with offset")] = None,
) -> int:
    """Add a Slack channel's messages to an incident as chat evidence (again: no duplicates)."""
    settings_of(ctx)
    history = read_export(export, channel, _time(since, "--since"), _time(until, "--until"))
    chat = [NewChatMessage(**m.model_dump()) for m in history.messages]
    if not chat:
        typer.echo(f"no messages to add from #{history.channel}")
        return 0
    store = open_store(ctx)
    added: list[str] = []
    repeated = 0
    try:
        with writing(store.engine) as conn:  # every batch, or none
            for start in range(0, len(chat), MAX_ADDED):
                batch = EvidenceAdditions(chat=chat[start : start + MAX_ADDED])
                done = change_incident_in(
                    conn, incident, IncidentChange(evidence=batch), "cli", "slack-export"
                )
                added += done.added
                repeated += len(done.repeated)
    finally:
        store.close()
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(history.skipped.items()))
    typer.echo(
        f"added {len(added)} messages from #{history.channel} to {incident}"
        f" ({repeated} already there{'; skipped ' + skipped if skipped else ''})"
    )
    return 0


def register(app: typer.Typer) -> None:
    """Add `integrations`, `changes` and `ingest` to `app`."""
    app.add_typer(integrations_app, name="integrations")
    app.add_typer(changes_app, name="changes")
    app.add_typer(ingest_app, name="ingest")
