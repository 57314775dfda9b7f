"""The README's configuration table lists exactly the settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from rca.config import Settings

README = Path(__file__).parent.parent / "README.md"


def _env_names(model: type[BaseModel], prefix: str) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names |= _env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_readme_configuration_table_matches_settings() -> None:
    documented = set(re.findall(r"^\| `(RCA_[A-Z0-9_]+)` \|", README.read_text(), re.MULTILINE))
    assert documented == _env_names(Settings, "RCA_")


def test_readme_shows_the_two_commands_first() -> None:
    text = README.read_text()
    assert text.index("make run") < text.index("## What rca is")
    assert text.index("make test") < text.index("## What rca is")
