"""Redaction of text: the detectors, the placeholder table and `Redactor` (see the package
docstring)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rca.errors import RcaError

PlaceholderKind = str
CUT_MARK = " [\u2026 cut: redaction made this text too long]"
"""Ends a redacted text cut to its field's limit: a placeholder is often longer than what it
replaces ("pw a1b2" -> "pw SECRET_1"), so a text at its limit can outgrow it when redacted."""


class RedactionFailed(RcaError):
    """Redaction could not be completed; nothing may be sent or stored."""


@dataclass(frozen=True)
class _Pattern:
    kind: PlaceholderKind
    regex: re.Pattern[str]
    group: int | str = 0
    """Which group is the secret (the rest of the match is kept, e.g. `password=`)."""
    check: Callable[[str], bool] | None = None
    """A further test the secret must pass (the regex alone would find ordinary words)."""
    wrapped: bool = True
    """Also searched in the text with line breaks removed (a token wrapped by a log shipper);
    not for prose, where joining lines makes words like "revoked.Next"."""


def _p(
    kind: str,
    pattern: str,
    group: int | str = 0,
    flags: int = 0,
    check: Callable[[str], bool] | None = None,
    wrapped: bool = True,
) -> _Pattern:
    return _Pattern(kind, re.compile(pattern, flags), group, check, wrapped)


_B64 = r"[A-Za-z0-9+/=_-]"
SECRET_PATTERNS: tuple[_Pattern, ...] = (
    # Private keys, whole blocks (they span lines).
    _p(
        "SECRET",
        r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----.{0,16384}?-----END [A-Z0-9 ]{0,40}"
        r"PRIVATE KEY"
        r"(?: BLOCK)?-----",
        flags=re.DOTALL,
    ),
    # Credentials inside URLs: scheme://user:password@host -- keep the user and host.
    _p(
        "SECRET",
        r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^\s:/@]{0,256}:(?P<s>[^\s@/]{1,512})@",
        "s",
    ),
    # Authorization headers.
    _p("SECRET", r"(?i)\bauthorization\s*[:=]\s*(?:bearer|basic|token|digest)\s+(?P<s>\S+)", "s"),
    _p("SECRET", r"(?i)\bbearer\s+(?P<s>[A-Za-z0-9._~+/=-]{12,})", "s"),
    # Azure storage / service bus connection strings.
    _p("SECRET", r"(?i)\b(?:AccountKey|SharedAccessKey)=(?P<s>[A-Za-z0-9+/=]{20,})", "s"),
    _p("SECRET", r"(?i)[?&]sig=(?P<s>[A-Za-z0-9%+/=]{16,})", "s"),
    # Well-known token formats.
    _p("SECRET", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}\b"),
    _p("SECRET", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    _p("SECRET", r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"),
    _p("SECRET", r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    _p("SECRET", r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    _p("SECRET", r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"),
    _p("SECRET", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\b"),
    _p("SECRET", r"\bAIza[0-9A-Za-z_-]{35}\b"),
    _p("SECRET", r"\bsk-(?:proj-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{20,}\b"),
    _p("SECRET", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),
    _p("SECRET", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}\b"),
    _p("SECRET", r"\bnpm_[A-Za-z0-9]{36}\b"),
    _p("SECRET", r"\bpypi-[A-Za-z0-9_-]{50,}\b"),
    _p("SECRET", r"\bshp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}\b"),
    _p("SECRET", r"\bhv[sb]\.[A-Za-z0-9_-]{24,}\b"),
    _p("SECRET", r"\bSK[0-9a-fA-F]{32}\b"),
    _p("SECRET", r"\bdop_v1_[a-f0-9]{64}\b"),
    # key = value secrets in configs, env files, JSON and YAML.
    _p(
        "SECRET",
        r"(?i)[\"']?(?<![a-z0-9_.-])(?:[a-z0-9_.-]{0,64}(?:password|passwd|pwd|secret|token|"
        r"api[_-]?key|access[_-]?key|private[_-]?key|client[_-]?secret|auth)[a-z0-9_.-]{0,64})"
        r"[\"']?"
        r"\s*[:=]\s*[\"']?(?!(?:bearer|basic|token|digest)\b)(?P<s>[^\s\"',;]{6,})",
        "s",
    ),
)

_ALNUM_RUN = re.compile(r"[A-Za-z0-9]+")


def _looks_secret(value: str) -> bool:
    """Whether a value prose names a password, token or secret is one: letters with digits
    ("hunter2", "Summer-2024"), a run of six digits or more, mixed case inside a word
    ("hunterTwo") or a quoted phrase with spaces are; words however punctuated ("expired.",
    "short-lived", "REDACTED", "N/A") and dates, times and small numbers ("2026-01-15",
    "14:05", "4096") are not. (A password of letters and punctuation only is missed.)"""
    if any(char.isspace() for char in value):
        return True
    pieces = _ALNUM_RUN.findall(value)
    if not pieces:
        return False
    if all(piece.isdigit() for piece in pieces):
        return max(len(piece) for piece in pieces) >= 6
    if all(piece.isalpha() for piece in pieces):
        return any(re.search(r"[a-z][A-Z]", piece) for piece in pieces)
    return True


# Secrets in plain language: "the db password is hunter2", "api token: a9Zq", "pw Tr1cky#1".
# The keyword starts a run of name characters (so each position is tried once: linear time),
# every repeat is bounded, and `_looks_secret` keeps "the token is invalid" as it is.
_NAMED = (
    r"(?<![a-z0-9_.-])(?:[a-z0-9_.-]{0,32}[_.-])?"
    r"(?:pass(?:word|wd|phrase|code)|pwd|pw|secret|token|credentials?|creds|"
    r"(?:api|access|auth|secret|private|signing)[ _-]?key)s?"
    r"(?:[ \t]{1,4}(?:for|of|on)[ \t]{1,4}(?:the[ \t]{1,4})?[^\s:=]{1,40})?"  # "for admin"
    r"(?:[ \t]{0,4}[:=][ \t]{0,4}"  # "token: X", "secret = X"
    r"|[ \t]{1,4}(?:is|was|are|were)(?:[ \t]{1,4}(?:now|still))?"  # "password is X"
    r"(?:[ \t]{1,4}(?:set|changed|reset)[ \t]{1,4}to)?(?::[ \t]{0,4}|[ \t]{1,4})"
    r"|[ \t]{1,4}(?:set|changed|reset|rotated|updated)[ \t]{1,4}to[ \t]{1,4})"
)
_BARE_VALUE = r"(?P<s>[^\s\"'`,;]{3,127}[^\s\"'`,;.:)\]])"
"""A value up to the next space, quote or separator, less trailing punctuation."""
_QUOTED_VALUE = r"(?P<q>[\"'`])(?P<s>[^\"'`\n]{4,128})(?P=q)"
"""A quoted value, spaces allowed (a passphrase)."""
_PW = r"(?<![a-z0-9_.-])(?:[a-z0-9_.-]{0,32}[_.-])?(?:pass(?:word|wd|phrase)|pwd|pw)[ \t]{1,4}"
"""A password word followed directly by its value: "pw Tr1cky#1", "password hunter2"."""
PROSE_PATTERNS: tuple[_Pattern, ...] = tuple(
    _p("SECRET", pattern, "s", re.IGNORECASE, _looks_secret, wrapped=False)
    for pattern in (_NAMED + _BARE_VALUE, _NAMED + _QUOTED_VALUE, _PW + _BARE_VALUE)
)


PERSONAL_PATTERNS: tuple[_Pattern, ...] = (
    _p(
        "EMAIL",
        r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}\b",
    ),
    _p("CARD", r"\b(?:\d[ -]?){12,18}\d\b"),
    # Phone numbers need a country code, an area code in brackets, or dashes/dots: plain
    # runs of numbers separated by spaces ("512 1024 2048") are metrics far more often.
    _p(
        "PHONE",
        r"(?<![\w.+])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}[ .-]?\d{3,4}[ .-]?\d{3,4}"
        r"|\(\d{2,4}\)[ .-]?\d{3,4}[ .-]\d{3,4}|\d{3}[.-]\d{3,4}[.-]\d{4})(?!\w|\.\d)",
    ),
)

IP_PATTERNS: tuple[_Pattern, ...] = (
    _p("IP", r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
    _p("IP", r"(?i)\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:[0-9a-f:]*\b"),
)

PLACEHOLDER = re.compile(r"\b(?:SECRET|EMAIL|PHONE|CARD|IP)_\d+\b")
"""A placeholder redaction wrote (never itself redacted, never cut in half)."""
_NEWLINE_RUN = re.compile(r"\n[ \t]*")


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _plausible(kind: str, value: str) -> bool:
    if PLACEHOLDER.fullmatch(value):
        return False  # already redacted
    if kind == "CARD":
        digits = re.sub(r"\D", "", value)
        return 13 <= len(digits) <= 19 and _luhn(digits)
    if kind == "PHONE":
        digits = re.sub(r"\D", "", value)
        return 9 <= len(digits) <= 15
    return True


@dataclass
class PlaceholderTable:
    """Original value -> placeholder, consistent for one incident (or one payload)."""

    by_value: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder for a value, the same one every time it is seen."""
        found = self.by_value.get(value)
        if found is None:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            found = f"{kind}_{self.counters[kind]}"
            self.by_value[value] = found
        return found

    def count(self) -> dict[str, int]:
        """How many distinct values of each kind were replaced."""
        return dict(self.counters)


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    kind: str


class Redactor:
    """Finds and replaces secrets and personal data; `ip_addresses` adds IP addresses."""

    def __init__(self, ip_addresses: bool = False, entropy: bool = True) -> None:
        self.patterns = (
            SECRET_PATTERNS
            + PROSE_PATTERNS
            + PERSONAL_PATTERNS
            + (IP_PATTERNS if ip_addresses else ())
        )
        self.entropy = entropy

    def redact(self, text: str, table: PlaceholderTable | None = None) -> str:
        """`text` with every finding replaced by its placeholder."""
        table = table if table is not None else PlaceholderTable()
        try:
            spans = self._spans(text)
            out: list[str] = []
            position = 0
            for span in spans:
                out.append(text[position : span.start])
                value = _NEWLINE_RUN.sub("", text[span.start : span.end])
                out.append(table.placeholder(span.kind, value))
                position = span.end
            out.append(text[position:])
            return "".join(out)
        except RedactionFailed:
            raise
        except Exception as err:  # any bug here must stop the payload, not leak it
            raise RedactionFailed(f"redaction failed: {type(err).__name__}") from None

    def _spans(self, text: str) -> list[_Span]:
        found = list(self._find(text, range(len(text))))
        # The same text with line breaks (and the indentation after them) removed, so that a
        # secret wrapped across lines is found; positions map back to the original.
        keep = [i for i, _ in _kept_positions(text)]
        if len(keep) < len(text):
            joined = "".join(text[i] for i in keep)
            found.extend(self._find(joined, keep, wrapped=True))
        return _merge(found)

    def _find(
        self, text: str, positions: range | list[int], wrapped: bool = False
    ) -> Iterator[_Span]:
        for pattern in self.patterns:
            if wrapped and not pattern.wrapped:
                continue
            for match in pattern.regex.finditer(text):
                start, end = match.span(pattern.group)
                if start < 0 or end <= start:
                    continue
                value = match.group(pattern.group)
                if not _plausible(pattern.kind, value):
                    continue
                if pattern.check is not None and not pattern.check(value):
                    continue
                yield _Span(positions[start], positions[end - 1] + 1, pattern.kind)
        if self.entropy:
            for start, end in _entropy_secrets(text):
                yield _Span(positions[start], positions[end - 1] + 1, "SECRET")


def _overlap(a: _Span, b: _Span) -> bool:
    return a.start < b.end and b.start < a.end


def _kept_positions(text: str) -> Iterator[tuple[int, str]]:
    skip: set[int] = set()
    for match in _NEWLINE_RUN.finditer(text):
        skip.update(range(match.start(), match.end()))
    for index, char in enumerate(text):
        if index not in skip:
            yield index, char


def _merge(spans: list[_Span]) -> list[_Span]:
    """Overlapping findings become one span (the kind of the earliest, longest one); personal
    data that overlaps a secret is part of the secret (`user:password@host` is no e-mail)."""
    secrets = [s for s in spans if s.kind == "SECRET"]
    spans = secrets + [
        s for s in spans if s.kind != "SECRET" and not any(_overlap(s, t) for t in secrets)
    ]
    merged: list[_Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            merged[-1] = _Span(last.start, max(last.end, span.end), last.kind)
        else:
            merged.append(span)
    return merged


_CANDIDATE = re.compile(r"[A-Za-z0-9+/_=-]{24,}")


def _entropy_secrets(text: str) -> Iterator[tuple[int, int]]:
    """Long random-looking tokens (detect-secrets' base64 entropy measure), not words or ids.

    Unlabelled pure-hex tokens are left alone: in incident data they are commit SHAs, image
    digests and trace ids, which responders need; hex secrets are caught by their labels
    (`api_key=...`) or formats instead.
    """
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    base64 = Base64HighEntropyString(limit=4.5)
    for match in _CANDIDATE.finditer(text):
        token = match.group(0).strip("=")
        if PLACEHOLDER.search(token) or re.fullmatch(r"[0-9a-fA-F-]+", token):
            continue
        if not (re.search(r"\d", token) and re.search(r"[a-zA-Z]", token)):
            continue
        if "-" in token and all(part.isalpha() or part.isdigit() for part in token.split("-")):
            continue  # kebab-case names such as release-2024-05-01
        if base64.calculate_shannon_entropy(token) > base64.entropy_limit:
            yield match.start(), match.end()
