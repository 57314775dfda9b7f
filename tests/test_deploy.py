"""The deployment examples in deploy/ name only commands, options and settings that exist.

They cannot run here (no Docker daemon, no systemd), so what can drift is checked instead:
every `rca ...` and `chroma run ...` command line in the compose file and the systemd units is
accepted by the real command's `--help` listing, and every `RCA_*` variable they set is a
setting `Settings` reads.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from rca.config import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
BIN = Path(sys.executable).parent


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _units() -> dict[str, dict[str, list[str]]]:
    """Each unit file's `Key=value` lines, by key."""
    units: dict[str, dict[str, list[str]]] = {}
    for path in sorted((DEPLOY / "systemd").glob("*.service")):
        keys: dict[str, list[str]] = {}
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith(("#", "[")):
                key, value = line.split("=", 1)
                keys.setdefault(key, []).append(value)
        units[path.name] = keys
    return units


def command_lines() -> list[list[str]]:
    """Every command line the examples run."""
    lines = [
        list(service["command"])
        for service in _compose()["services"].values()
        if "command" in service
    ]
    for keys in _units().values():
        lines.extend(shlex.split(line) for line in keys.get("ExecStart", []))
    return lines


def variables() -> set[str]:
    """Every environment variable the examples set."""
    names: set[str] = set()
    for service in _compose()["services"].values():
        names |= set(service.get("environment") or {})
    for line in (DEPLOY / "rca.env.example").read_text().splitlines():
        if re.match(r"#? ?[A-Z_]+=", line):
            names.add(line.lstrip("# ").split("=", 1)[0])
    for keys in _units().values():
        names |= {value.split("=", 1)[0] for value in keys.get("Environment", [])}
    return names


def is_setting(name: str) -> bool:
    """Whether `RCA_A__B` names a field `a.b` of Settings."""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("RCA_").lower().split("__")
    for depth, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if depth < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


@cache
def help_text(program: str, *words: str) -> str:
    done = subprocess.run(
        [str(BIN / program), *words, "--help"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{program} {' '.join(words)} --help failed: {done.stderr}"
    return done.stdout


def test_the_compose_file_parses_and_names_its_volumes() -> None:
    compose = _compose()
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            assert volume.split(":", 1)[0] in declared, (name, volume)
    assert {"postgres", "chroma", "api-1", "api-2", "worker-1", "worker-2"} <= set(
        compose["services"]
    )


@pytest.mark.parametrize("line", command_lines(), ids=lambda line: " ".join(line[:3]))
def test_every_command_line_is_accepted(line: list[str]) -> None:
    program = Path(line[0]).name
    assert program in ("rca", "chroma"), line
    words = [w for w in line[1:] if not w.startswith("-")]
    options = [w for w in line[1:] if w.startswith("--")]
    # The subcommand path: the words before the first option.
    first_option = next((i for i, w in enumerate(line[1:]) if w.startswith("-")), len(line) - 1)
    path = line[1 : 1 + first_option]
    listing = help_text(program, *path)
    for option in options:
        assert re.search(rf"(^|\s){re.escape(option)}\b", listing, re.MULTILINE), (
            f"{' '.join(line)}: {option} is not an option of `{program} {' '.join(path)}`"
        )
    assert words, line


def test_every_rca_variable_is_a_setting() -> None:
    wrong = sorted(n for n in variables() if n.startswith("RCA_") and not is_setting(n))
    assert wrong == []


def test_the_setting_check_can_tell_a_wrong_name() -> None:
    assert is_setting("RCA_RETRIEVAL__CHROMA_URL") and is_setting("RCA_DATABASE_URL")
    assert not is_setting("RCA_RETRIEVAL__CHROMA_URI") and not is_setting("RCA_DATABASE_URL__X")
