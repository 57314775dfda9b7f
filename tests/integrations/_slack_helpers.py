"""Shared helpers of the Slack history tests: the fixture export and expected chat messages."""

from __future__ import annotations

import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from rca.domain import ChatMessage

FIXTURES = Path(__file__).parent / "fixtures" / "slack"
EXPORT = FIXTURES / "export"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def chat(ts: str, when: str, author: str | None, text: str) -> ChatMessage:
    return ChatMessage(id=f"slack-{ts.replace('.', '-')}", at=at(when), author=author, text=text)


def zip_of(folder: Path, target: Path, root: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*.json")):
            archive.write(file, root + file.relative_to(folder).as_posix())
    return target


def copy_export(tmp_path: Path) -> Path:
    return Path(shutil.copytree(EXPORT, tmp_path / "export"))
