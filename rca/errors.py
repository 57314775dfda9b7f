"""Errors, grouped by who must act.

The CLI prints them as one line; the API maps them to HTTP once.
"""

from __future__ import annotations

from dataclasses import dataclass


class RcaError(Exception):
    """Base of every error rca raises on purpose; its message is safe to show to a user."""


# --- the caller sent something we cannot use -------------------------------------------------


@dataclass
class Problem:
    """One thing wrong with an input: where (file, line, field path) and why."""

    reason: str
    path: str | None = None
    line: int | None = None
    location: str | None = None

    def __str__(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.location:
            return f"{where}: {self.location}: {self.reason}"
        return f"{where}: {self.reason}"


class InvalidInput(RcaError):
    """An input document is malformed or breaks the format; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


class InvalidArgument(RcaError):
    """A command option or request parameter has a value we cannot use."""


class NotFound(RcaError):
    """The thing asked for does not exist."""

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} not found")


class Conflict(RcaError):
    """The write collides with the stored state (stale version, immutable record)."""

    def __init__(self, message: str, current_version: int | None = None) -> None:
        self.current_version = current_version
        super().__init__(message)


class PreconditionFailed(RcaError):
    """The caller's version (If-Match) is not the stored one: someone changed it meanwhile."""

    def __init__(self, message: str, current_version: int) -> None:
        self.current_version = current_version
        super().__init__(message)


class PreconditionRequired(RcaError):
    """A write that must say which version it changes (If-Match) did not."""


class Busy(RcaError):
    """Too much work in flight; try again after `retry_after_s`."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message)


# --- the operator must fix the installation or configuration ---------------------------------


class ConfigurationError(RcaError):
    """A setting is missing or wrong."""


class StoreUnavailable(RcaError):
    """The system of record cannot be opened or written."""


class IndexUnavailable(RcaError):
    """The vector index cannot be opened or read; search falls back to lexical."""


class IndexLocked(RcaError):
    """Another process is writing the vector index."""


class InvalidQuery(RcaError):
    """A search query with nothing to search for."""


# --- a service rca depends on failed: trying again later may work ------------------------------


class ModelUnavailable(RcaError):
    """No model answered any question of a draft: every attempt at the model and its fallbacks
    failed (rate limits, server errors, timeouts, unusable answers). Nothing was drafted."""
