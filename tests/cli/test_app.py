"""The `rca` command is assembled in one place, and its table of commands tells the truth."""

from __future__ import annotations

import re

import typer.main

from rca.cli import app as cli_app


def _documented() -> dict[str, str]:
    """Top-level command name → the module the table in `rca.cli.app` names for it."""
    doc = cli_app.__doc__ or ""
    found: dict[str, str] = {}
    for row in re.findall(r"^\| (`.+?) \| `([a-z_.]+)`", doc, flags=re.M):
        names, module = row
        for name in re.findall(r"`([a-z]+)", names):
            found[name] = module
    return found


def test_every_command_is_in_the_table_with_the_module_that_holds_it() -> None:
    app = cli_app.build()
    group = typer.main.get_group(app)
    documented = _documented()
    assert set(group.commands) == set(documented)
    for name, command in group.commands.items():
        callback = command.callback
        if callback is None:  # a group (`rca model`, `rca keys`, ...): look at a subcommand
            sub = next(iter(command.commands.values()))  # type: ignore[attr-defined]
            callback = sub.callback
        assert callback is not None
        assert callback.__module__.startswith(documented[name]), (name, callback.__module__)


def test_building_twice_adds_nothing() -> None:
    first = set(typer.main.get_group(cli_app.build()).commands)
    assert set(typer.main.get_group(cli_app.build()).commands) == first
