"""Slack exports that are refused: not an export, over the limits, leading or linking outside
it, corrupt or malformed."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from rca.errors import InvalidArgument, InvalidInput
from rca.integrations.slack import SlackLimits, read_export
from tests.integrations._slack_helpers import EXPORT, copy_export, zip_of


def test_a_zip_that_is_not_a_slack_export_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "photos.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("holiday/beach.txt", "sand")
        archive.writestr("notes.md", "# notes")
    with pytest.raises(InvalidArgument, match=r"not a Slack workspace export.*channels\.json"):
        read_export(target, "incident-checkout")


def test_channels_json_must_be_a_list(tmp_path: Path) -> None:
    export = copy_export(tmp_path)
    (export / "channels.json").write_text('{"channels": []}', encoding="utf-8")
    with pytest.raises(InvalidArgument, match=r"channels\.json \(a list of channels\)"):
        read_export(export, "incident-checkout")


def test_a_file_that_is_neither_folder_nor_zip_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "export.json"
    target.write_text("[]", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="neither a folder nor a zip"):
        read_export(target, "incident-checkout")
    with pytest.raises(InvalidArgument, match="neither a folder nor a zip"):
        read_export(tmp_path / "missing.zip", "incident-checkout")


@pytest.mark.parametrize("member", ["../evil.json", "incident-checkout/../../evil.json", "/etc/x"])
def test_a_zip_member_leading_outside_is_refused(tmp_path: Path, member: str) -> None:
    target = zip_of(EXPORT, tmp_path / "export.zip")
    with zipfile.ZipFile(target, "a") as archive:
        archive.writestr(zipfile.ZipInfo(member), "[]")
    with pytest.raises(InvalidArgument, match="leads outside"):
        read_export(target, "incident-checkout")


def test_a_zip_over_the_limits_is_refused(tmp_path: Path) -> None:
    target = zip_of(EXPORT, tmp_path / "export.zip")
    with pytest.raises(InvalidArgument, match="over the limits"):
        read_export(target, "incident-checkout", limits=SlackLimits(max_members=3))
    with pytest.raises(InvalidArgument, match="over the limits"):
        read_export(target, "incident-checkout", limits=SlackLimits(max_uncompressed_bytes=1000))
    with pytest.raises(InvalidArgument, match="over 100 bytes"):
        read_export(target, "incident-checkout", limits=SlackLimits(max_archive_bytes=100))


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    target = zip_of(EXPORT, tmp_path / "export.zip")
    with zipfile.ZipFile(target, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("padding.json", b" " * 5_000_000)
    assert target.stat().st_size < 100_000
    with pytest.raises(InvalidArgument, match="over the limits"):
        read_export(target, "incident-checkout", limits=SlackLimits(max_uncompressed_bytes=10**6))


def test_a_corrupt_zip_member_is_invalid_input(tmp_path: Path) -> None:
    target = tmp_path / "export.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for name in ("channels.json", "users.json"):
            archive.write(EXPORT / name, name)
        archive.writestr("incident-checkout/2026-03-01.json", "[]" + " " * 64)
    data = target.read_bytes()
    spot = data.index(b"[]" + b" " * 64)
    target.write_bytes(data[:spot] + b"{}" + data[spot + 2 :])  # same size, wrong checksum
    with pytest.raises(InvalidInput, match="cannot be read") as caught:
        read_export(target, "incident-checkout")
    assert caught.value.problems[0].path == "incident-checkout/2026-03-01.json"


def test_a_folder_over_the_limits_is_refused(tmp_path: Path) -> None:
    export = copy_export(tmp_path)
    with pytest.raises(InvalidArgument, match="over the limits"):
        read_export(export, "incident-checkout", limits=SlackLimits(max_members=3))
    with pytest.raises(InvalidArgument, match="max_uncompressed_bytes"):
        read_export(export, "incident-checkout", limits=SlackLimits(max_uncompressed_bytes=3000))


def test_a_link_out_of_a_folder_export_is_not_followed(tmp_path: Path) -> None:
    export = copy_export(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text('[{"ts": "1772355600.000000", "text": "private"}]', encoding="utf-8")
    os.symlink(secret, export / "incident-checkout" / "2026-03-03.json")
    with pytest.raises(InvalidArgument, match="links outside the export"):
        read_export(export, "incident-checkout")


def test_a_linked_folder_is_not_entered(tmp_path: Path) -> None:
    export = copy_export(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "2026-03-01.json").write_text('[{"ts": "1.0", "text": "x"}]', encoding="utf-8")
    channels = json.loads((export / "channels.json").read_text(encoding="utf-8"))
    channels.append({"id": "C0LINK", "name": "linked"})
    (export / "channels.json").write_text(json.dumps(channels), encoding="utf-8")
    os.symlink(outside, export / "linked")
    assert read_export(export, "linked").messages == []


def test_bad_json_in_a_day_file_names_the_file(tmp_path: Path) -> None:
    export = copy_export(tmp_path)
    (export / "incident-checkout" / "2026-03-02.json").write_text('[{"ts": ', encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid JSON") as caught:
        read_export(export, "incident-checkout")
    assert [p.path for p in caught.value.problems] == ["incident-checkout/2026-03-02.json"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"messages": []}', "expected a list of messages"),
        ('[{"text": "no ts"}]', "Slack `ts`"),
        ('[{"ts": "yesterday", "text": "x"}]', "Slack `ts`"),
        ('[{"ts": "9999999999.000000", "text": "x"}]', "Slack `ts`"),
        ('["just text"]', "Slack `ts`"),
    ],
)
def test_a_malformed_day_file_is_invalid_input(tmp_path: Path, content: str, reason: str) -> None:
    export = copy_export(tmp_path)
    (export / "incident-checkout" / "2026-03-02.json").write_text(content, encoding="utf-8")
    with pytest.raises(InvalidInput, match=reason):
        read_export(export, "incident-checkout")
