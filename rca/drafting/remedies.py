"""The remediation library (`remedies.yaml`, shipped as data): failure modes, the cues that
detect them, and the contributing factor and action items each usually calls for.

`detect` scores every failure mode against a draft's texts: a cue in a drafted root cause
counts most, in the trigger less, in other evidence least (capped, so a long log does not
outvote the causes). What is detected becomes candidate factors and actions
(`rca.drafting.proposals`); the model chooses among them, code fills in this incident's names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rca.domain import ActionKind, FactorCategory, Priority
from rca.errors import ConfigurationError

LIBRARY = Path(__file__).with_name("remedies.yaml")
"""The library shipped with rca."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ActionTemplate(_Strict):
    """An action a failure mode usually calls for."""

    kind: ActionKind
    priority: Priority
    owner: str = Field(min_length=1, max_length=80)
    """A team or role, never a person; may hold `{team}`."""
    text: str = Field(min_length=10, max_length=400)
    """What to do, specific and checkable; may hold `{service}`."""


class FactorTemplate(_Strict):
    """The contributing factor a failure mode usually is."""

    category: FactorCategory
    text: str = Field(min_length=10, max_length=400)


class FailureMode(_Strict):
    """One failure mode of the library."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    name: str = Field(min_length=3, max_length=120)
    cues: list[str] = Field(min_length=1)
    factor: FactorTemplate
    actions: list[ActionTemplate] = Field(min_length=1)

    @field_validator("cues")
    @classmethod
    def _compiles(cls, cues: list[str]) -> list[str]:
        for cue in cues:
            try:
                re.compile(cue)
            except re.error as err:
                raise ValueError(f"cue {cue!r} is not a regular expression: {err}") from err
        return cues

    def patterns(self) -> list[re.Pattern[str]]:
        """The cues, compiled (case-insensitive)."""
        return [re.compile(cue, re.IGNORECASE) for cue in self.cues]


class Library(_Strict):
    """The whole library, versioned."""

    version: int = Field(ge=1)
    modes: list[FailureMode] = Field(min_length=1)

    @field_validator("modes")
    @classmethod
    def _unique(cls, modes: list[FailureMode]) -> list[FailureMode]:
        ids = [m.id for m in modes]
        if len(ids) != len(set(ids)):
            raise ValueError("failure mode ids must be unique")
        return modes


def load_library(path: Path = LIBRARY) -> Library:
    """The library at `path`; ConfigurationError (naming the file) if it is not valid."""
    try:
        return Library.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError, ValueError) as err:
        raise ConfigurationError(f"remediation library {path}: {err}") from err


@lru_cache(maxsize=1)
def default_library() -> Library:
    """The shipped library, loaded once."""
    return load_library()


CAUSE_WEIGHT = 3.0
"""Score of a failure mode per drafted root cause that shows one of its cues."""
TRIGGER_WEIGHT = 1.5
"""Score when the drafted trigger shows one of its cues."""
CUE_WEIGHT = 1.0
"""Score per distinct cue found anywhere in the evidence (however many lines show it)."""
EVIDENCE_CAP = 2.0
"""At most this much score from the evidence, so a long log cannot outvote the causes."""
THRESHOLD = 1.0
"""A failure mode with less than this score is not proposed."""


@dataclass(frozen=True)
class Detected:
    """A failure mode found in a draft, with the evidence that showed it."""

    mode: FailureMode
    score: float
    evidence_ids: list[str]
    """Ids whose text matched a cue, most telling first."""
    cause: int | None
    """Index of the first root cause that matched (the one the mode's actions address)."""


def detect(
    causes: Sequence[tuple[str, Sequence[str]]],
    trigger: tuple[str, Sequence[str]] | None,
    evidence: Mapping[str, str],
    library: Library | None = None,
) -> list[Detected]:
    """Failure modes in a draft, best first: `causes` are the drafted root causes (text and
    cited ids), `trigger` the drafted trigger, `evidence` the incident's lines by id (leave
    out status updates: they repeat the symptoms in general words)."""
    library = library or default_library()
    found: list[Detected] = []
    for mode in library.modes:
        patterns = mode.patterns()

        def hits(text: str, patterns: list[re.Pattern[str]] = patterns) -> bool:
            return any(p.search(text) for p in patterns)

        score = 0.0
        ids: list[str] = []
        cause: int | None = None
        for index, (text, cited) in enumerate(causes):
            if hits(text):
                score += CAUSE_WEIGHT
                ids.extend(cited)
                cause = index if cause is None else cause
        if trigger is not None and hits(trigger[0]):
            score += TRIGGER_WEIGHT
            ids.extend(trigger[1])
        cues_seen = 0
        for pattern in patterns:
            shown = [ident for ident, text in evidence.items() if pattern.search(text)]
            if shown:
                cues_seen += 1
                ids.extend(shown[:2])
        score += min(EVIDENCE_CAP, CUE_WEIGHT * cues_seen)
        if score >= THRESHOLD:
            found.append(Detected(mode, score, list(dict.fromkeys(ids)), cause))
    return sorted(found, key=lambda d: (-d.score, d.mode.id))
