"""What every command shares: the settings the root callback loaded, the store, the hooks
other packages fill, output formats and reading an incident file."""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from rca.config import Settings
from rca.domain import Incident
from rca.errors import ConfigurationError, InvalidQuery
from rca.formats.importer import load_file
from rca.store import Store


@dataclass
class CliHooks:
    """Extension points filled by other packages' CLI plugins (entry point group `rca.cli`)."""

    after_import: list[Callable[[Settings, Store], None]] = field(default_factory=list)
    """Run after `rca import` saved documents (e.g. to bring the search index up to date)."""


HOOKS = CliHooks()


class ExportFormat(StrEnum):
    """Output formats of `rca export`."""

    md = "md"
    json = "json"
    csv = "csv"


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root callback loaded; for plugin commands too."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):  # pragma: no cover - the callback always sets it
        raise ConfigurationError("settings were not loaded")
    return settings


def open_store(ctx: typer.Context) -> Store:
    return Store.open(settings_of(ctx))


def json_dump(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def load_incident(path: Path, max_bytes: int) -> Incident:
    """The incident in `path` (an incident file or an eval case); InvalidQuery otherwise."""
    for document in load_file(path, max_bytes):
        if isinstance(document, Incident):
            return document
    raise InvalidQuery(f"{path} holds no incident (a postmortem? use --text)")
