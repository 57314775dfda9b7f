"""Closed vocabularies, the text and time types every field uses, and the helpers every aggregate
shares (the frozen base model, canonical JSON, content hashes, new ids).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
)

# Closed vocabularies


class Severity(StrEnum):
    """Incident severity, SEV1 the worst."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"
    SEV5 = "SEV5"


class TimelineKind(StrEnum):
    """What kind of event an incident timeline entry records."""

    DEPLOY = "deploy"
    CONFIG = "config"
    ALERT = "alert"
    ACTION = "action"
    COMMS = "comms"
    OBSERVATION = "observation"
    NOTE = "note"


class NodeKind(StrEnum):
    """The role of a node in a causal chain."""

    ROOT_CAUSE = "root_cause"
    CONTRIBUTING_FACTOR = "contributing_factor"
    TRIGGER = "trigger"
    CAUSE = "cause"
    SYMPTOM = "symptom"
    IMPACT = "impact"


class FactorCategory(StrEnum):
    """Fishbone (Ishikawa) category of a contributing factor."""

    PEOPLE = "people"
    PROCESS = "process"
    TECHNOLOGY = "technology"
    ENVIRONMENT = "environment"
    EXTERNAL = "external"
    MONITORING = "monitoring"


class ActionKind(StrEnum):
    """What an action item does about the failure."""

    PREVENT = "prevent"
    DETECT = "detect"
    MITIGATE = "mitigate"
    PROCESS = "process"


class Priority(StrEnum):
    """MoSCoW priority of an action item."""

    MUST = "must"
    SHOULD = "should"
    COULD = "could"
    WONT = "wont"


class ActionStatus(StrEnum):
    """Follow-up state of an action item."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    WONT_DO = "wont_do"


class EvidenceKind(StrEnum):
    """The four groups of incident evidence."""

    ALERT = "alert"
    EVENT = "event"
    LOG = "log"
    CHAT = "chat"


# ---------------------------------------------------------------------------------------------
# Constrained strings

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
# Every character str.splitlines() treats as a line boundary.
_LINE_BREAKS = re.compile(r"\s*[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]+\s*")

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""An id: letters, digits and `_ . : -`, at most 128 characters, starting alphanumeric."""

NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
"""A causal-chain node id: letters, digits and `_ . -`, at most 64 characters."""


def _single_line(value: str) -> str:
    """Strip and fold line breaks into single spaces; refuse an empty result."""
    folded = _LINE_BREAKS.sub(" ", value).strip()
    if not folded:
        raise ValueError("must not be empty")
    return folded


def _free_text(value: str) -> str:
    """Normalise line endings and strip surrounding whitespace."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _optional_text(value: str | None) -> str | None:
    """Free text where blank means absent."""
    if value is None:
        return None
    text = _free_text(value)
    return text or None


Line = Annotated[str, StringConstraints(max_length=4_000), AfterValidator(_single_line)]
"""One line of text (a list item); line breaks fold into spaces."""

Name = Annotated[
    str,
    StringConstraints(max_length=100),
    AfterValidator(_single_line),
]
"""A short label: a service name, a tag, an owner."""

Text = Annotated[str, StringConstraints(max_length=100_000), AfterValidator(_free_text)]
"""Free text, possibly empty, several paragraphs allowed."""

OptionalText = Annotated[
    str | None, StringConstraints(max_length=100_000), AfterValidator(_optional_text)
]
"""Free text where blank means absent."""


def _required_text(value: str) -> str:
    text = _free_text(value)
    if not text:
        raise ValueError("must not be empty")
    return text


RequiredText = Annotated[str, StringConstraints(max_length=100_000), AfterValidator(_required_text)]
"""Free text that must not be blank."""


# ---------------------------------------------------------------------------------------------
# Times

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest time accepted."""
LATEST = datetime(2200, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
"""The latest time accepted."""
AS_STORED: dict[str, Any] = {"as_stored": True}
"""Validation context for reading back what the store holds: a time outside the range, or a
list over its ceiling, is kept (an older version may have accepted it) for `rca.store.readback`
to set aside with a note."""


def as_stored(info: ValidationInfo) -> bool:
    """True when validating with the `AS_STORED` context."""
    return bool(info.context and info.context.get("as_stored"))


def at_most(value: Any, limit: int, what: str, info: ValidationInfo) -> Any:
    """A before-validator's check that a list has at most `limit` items (counted before any is
    read), except when reading back what the store holds."""
    if isinstance(value, list | tuple) and len(value) > limit and not as_stored(info):
        raise ValueError(f"at most {limit} {what} are allowed, this one has {len(value)}")
    return value


def time_problem(value: datetime) -> str | None:
    """Why `value` is not a usable time (no offset, or outside 1970-2200 in UTC), or None."""
    if value.utcoffset() is None:
        return "needs a time zone offset, such as Z or +02:00"
    # The local year is within a day of the UTC one: checking it first keeps the conversion
    # from overflowing (9999-12-31T23:59:59-23:59 is in year 10000 in UTC).
    inside = EARLIEST.year - 1 <= value.year <= LATEST.year + 1
    if not inside or not EARLIEST <= value.astimezone(UTC) <= LATEST:
        return "must be between 1970-01-01T00:00:00Z and 2200-12-31T23:59:59Z"
    return None


def _usable_time(value: datetime, info: ValidationInfo) -> datetime:
    if as_stored(info):
        return value
    problem = time_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(_usable_time)]
"""A time: with a time zone offset (kept as given) and between 1970 and 2200 in UTC, so that
converting it and computing with it cannot overflow."""


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; ValueError, not OverflowError, when it has no offset or cannot be one."""
    if value.utcoffset() is None:
        raise ValueError("needs a time zone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside the range of times") from None


class Frozen(BaseModel):
    """Base of every domain model: immutable, and unknown keys are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def no_duplicates(values: list[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


# ---------------------------------------------------------------------------------------------
# Helpers


def canonical_json(model: BaseModel) -> str:
    """Canonical JSON of a model: sorted keys, no whitespace, UTF-8 text."""
    return json.dumps(
        model.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def content_hash(model: BaseModel) -> str:
    """SHA-256 hex digest of the model's canonical JSON."""
    return hashlib.sha256(canonical_json(model).encode("utf-8")).hexdigest()


def new_id(prefix: str) -> str:
    """A fresh, time-ordered id such as `inc-20240302T100200-3f9a1c2b`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{prefix}-{stamp}-{secrets.token_hex(4)}"
