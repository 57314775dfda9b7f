"""`rca model pull`: parts concatenated in order, pinned checksum, nothing broken left behind."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rca.errors import ConfigurationError, InvalidArgument
from rca.llm import weights
from rca.llm.weights import ModelSpec, pull, verify
from tests.support import run

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
WHOLE = b"".join(PARTS)


def _spec(content: bytes = WHOLE) -> ModelSpec:
    return ModelSpec(
        name="tiny",
        filename="tiny.gguf",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        part_modules=("tiny_part1", "tiny_part2", "tiny_part3"),
        part_packages=("tiny-part1==1.0", "tiny-part2==1.0", "tiny-part3==1.0"),
        licence="test",
    )


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Path]:
    located = {}
    for n, content in enumerate(PARTS, start=1):
        path = tmp_path / "site" / f"part{n}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        located[f"tiny_part{n}"] = path
    return located


def test_pull_concatenates_in_order_and_verifies(tmp_path: Path, parts: dict[str, Path]) -> None:
    data = tmp_path / "data"
    path, written = pull(_spec(), data, locate=parts.__getitem__)
    assert written and path.read_bytes() == WHOLE
    assert path == data / "models" / "tiny.gguf"
    verify(path, _spec())
    # A second pull finds a good file and keeps it.
    assert pull(_spec(), data, locate=parts.__getitem__) == (path, False)


def test_a_checksum_mismatch_leaves_nothing_and_keeps_a_good_model(
    tmp_path: Path, parts: dict[str, Path]
) -> None:
    data = tmp_path / "data"
    parts["tiny_part2"].write_bytes(b"x" * 777)  # a corrupted part
    with pytest.raises(ConfigurationError, match="does not match its pinned checksum"):
        pull(_spec(), data, locate=parts.__getitem__)
    assert list((data / "models").iterdir()) == []  # no partial file, no broken model

    parts["tiny_part2"].write_bytes(PARTS[1])
    path, _ = pull(_spec(), data, locate=parts.__getitem__)
    path.write_bytes(WHOLE[:-1] + b"z")  # tampered after assembly
    with pytest.raises(ConfigurationError, match="SHA-256"):
        verify(path, _spec())
    path, written = pull(_spec(), data, locate=parts.__getitem__)  # repairs it
    assert written and path.read_bytes() == WHOLE


def test_a_missing_part_package_is_named(tmp_path: Path, parts: dict[str, Path]) -> None:
    def locate(module: str) -> Path:
        if module == "tiny_part3":
            raise ModuleNotFoundError(module)
        return parts[module]

    with pytest.raises(ConfigurationError, match=r"pip install tiny-part3==1\.0"):
        pull(_spec(), tmp_path / "data", locate=locate)


def test_from_file(tmp_path: Path) -> None:
    source = tmp_path / "download.gguf"
    source.write_bytes(WHOLE)
    path, written = pull(_spec(), tmp_path / "data", from_file=source)
    assert written and path.read_bytes() == WHOLE
    with pytest.raises(InvalidArgument, match="not a file"):
        pull(_spec(b"other"), tmp_path / "data2", from_file=tmp_path / "nope.gguf")


def test_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(weights.MODELS, "tiny", _spec())
    source = tmp_path / "download.gguf"
    source.write_bytes(WHOLE)
    data = tmp_path / "data"
    code, _, err = run(data, "model", "verify", "--model", "tiny", capsys=capsys)
    assert code == 1 and "run `rca model pull`" in err
    code, out, _ = run(
        data, "model", "pull", "--model", "tiny", "--from-file", str(source), capsys=capsys
    )
    assert code == 0 and "assembled and verified" in out
    code, out, _ = run(data, "model", "verify", "--model", "tiny", capsys=capsys)
    assert code == 0 and "verified" in out
    code, _, err = run(data, "model", "pull", "--model", "gpt-99", capsys=capsys)
    assert code == 1 and "unknown model 'gpt-99'" in err
