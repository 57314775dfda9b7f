"""Slack history as chat evidence, from a workspace export or from the Web API.

`read_export` reads a workspace export: a `.zip` (read in memory within `SlackLimits`, never
extracted) or its unpacked folder (links out of it refused) holding `channels.json` (also
`groups.json`, `mpims.json`, `dms.json`), `users.json` and a folder of `YYYY-MM-DD.json` files
per conversation. `read_history` reads a `conversations.history` response and its threads'
`conversations.replies`, as a `SlackHistoryUpload` brings them.

Authors: a user's display name (else real name, else user name), an unknown id as it is; a bot's
`username`, else `bot_profile.name`, else its id. A message stands at its latest text
(`message_changed` replaces it; `message_deleted` and tombstones remove it). Thread replies
follow their parent, oldest first, prefixed by "↳ ". Kept: people's and bots' messages, topic
and purpose changes (incident channels keep their status in the topic), a file share's comment
(not the file), the attachments' fallback text of a message without text (alert bots post so).
Skipped, counted by reason: `join/leave`, `channel event` (renames, pins...), `file upload`,
`deleted`, `empty`, `outside range` (since/until, inclusive); reactions never appear. Markup
becomes plain text (see `_plain`); links are never followed, and text is kept as data only.
Ids are `slack-<ts, '.' as '-'>`, so ingesting the same history again gives the same ids.
An unusable path or archive is an InvalidArgument saying what was expected; a broken document
inside (bad JSON, a message without a usable `ts`, `ok: false`) is an InvalidInput.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

from pydantic import Field, PositiveInt

from rca.domain import ChatMessage
from rca.domain.values import Frozen, time_problem
from rca.errors import InvalidArgument, InvalidInput, Problem


class SlackLimits(Frozen):
    """Bounds on one ingest, so that a mistaken or hostile export cannot exhaust the machine."""

    max_archive_bytes: PositiveInt = 200_000_000
    """Largest export archive accepted, in bytes on disk."""
    max_uncompressed_bytes: PositiveInt = 1_000_000_000
    """Most bytes an archive's members may inflate to, or a directory export's files may hold."""
    max_members: PositiveInt = 100_000
    """Most entries an archive may hold (or files a directory export's conversation folder)."""
    max_messages: PositiveInt = 20_000
    """Most chat messages one ingest may produce."""


DEFAULT_LIMITS = SlackLimits()
"""The limits used when the caller gives none."""


class SlackHistory(Frozen):
    """Chat messages read from Slack, and how many were left out and why."""

    channel: str
    """The conversation's name as the export lists it, or as the upload gives it ('' if not)."""
    messages: list[ChatMessage]
    """In time order, each thread's replies right after their parent."""
    skipped: dict[str, int] = Field(default_factory=dict)
    """Messages left out, counted by reason (`join/leave`, `file upload`, `deleted`, ...)."""


class SlackHistoryUpload(Frozen):
    """Body of `POST /v1/incidents/{id}/evidence/slack`: Slack Web API answers, as fetched."""

    history: dict[str, Any]
    """A `conversations.history` response: `{"ok": true, "messages": [...], ...}`."""
    replies: list[dict[str, Any]] = Field(default_factory=list)
    """`conversations.replies` responses, one per thread; the parent may appear again."""
    users: dict[str, str] = Field(default_factory=dict)
    """User id → display name, for authors and `<@U…>` mentions."""
    channel: str | None = None
    """The channel's name, to record where the messages came from."""


_CHANNEL_EVENTS = """channel_name group_name channel_archive group_archive channel_unarchive
group_unarchive pinned_item unpinned_item channel_posting_permissions message_replied
reminder_add bot_add bot_remove""".split()
_JOIN_LEAVE = ("channel_join", "channel_leave", "group_join", "group_leave")
_SKIP = {
    **dict.fromkeys(_JOIN_LEAVE, "join/leave"),
    **dict.fromkeys(_CHANNEL_EVENTS, "channel event"),
    "tombstone": "deleted",
}
_TS = re.compile(r"(\d{1,10})(?:\.(\d{1,6}))?")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\.json")
_ENTITY = re.compile(r"&(lt|gt|amp);")
_MARKUP = re.compile(r"<([^<>]*)>|&(lt|gt|amp);")
_CHARS = {"lt": "<", "gt": ">", "amp": "&"}
_BROADCASTS = {"here", "channel", "everyone", "group"}
_LISTS = ("channels.json", "groups.json", "mpims.json", "dms.json")
_MAX_TEXT = 100_000


def read_export(
    path: Path,
    channel: str,
    since: datetime | None = None,
    until: datetime | None = None,
    limits: SlackLimits = DEFAULT_LIMITS,
) -> SlackHistory:
    """The messages of one conversation (by name, `#name` or id) of a Slack workspace export."""
    with ExitStack() as stack:
        export = _Export(path, limits, stack)
        conversations = _conversations(export, path)
        entry = _pick(conversations, channel)
        folder, users = str(entry.get("name") or entry["id"]), _users(export)
        days = [f"{folder}/{day}" for day in export.days(folder)]
        batches = [(day, "", export.load(day)) for day in days]
    names = {c["id"]: str(c["name"]) for c in conversations if c.get("name")}
    return _build(batches, _Rules(users, names, since, until), folder, limits)


def read_history(
    history: dict[str, Any],
    replies: list[dict[str, Any]] | None = None,
    users: dict[str, str] | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limits: SlackLimits = DEFAULT_LIMITS,
) -> SlackHistory:
    """The messages of a `conversations.history` response and of its threads' replies.

    `read_history(**upload.model_dump(), since=..., until=...)` reads a `SlackHistoryUpload`.
    """
    answers = [("history", history), *((f"replies[{i}]", r) for i, r in enumerate(replies or []))]
    for where, answer in answers:
        if not isinstance(answer, dict) or answer.get("ok") is not True:
            error = str(_dict(answer).get("error") or "no error given")[:200]
            raise _bad(f"Slack's answer is not `ok: true` ({error})", where)
    batches = [(where, "messages", answer.get("messages")) for where, answer in answers]
    return _build(batches, _Rules(users or {}, {}, since, until), channel or "", limits)


def _bad(reason: str, where: str, location: str | None = None) -> InvalidInput:
    return InvalidInput([Problem(reason, path=where, location=location)])


class _Export:
    """An export's files, from a zip read in memory or from a folder, within the limits."""

    def __init__(self, path: Path, limits: SlackLimits, stack: ExitStack) -> None:
        self.root, self.budget, self.prefix = path.resolve(), limits.max_uncompressed_bytes, ""
        self.files: dict[str, Callable[[], IO[bytes]]] = {}
        refused = f"{path} is over the limits ({limits.max_members} files, {self.budget} bytes)"
        if path.is_dir():
            for folder, _, names in os.walk(path):  # does not descend into linked folders
                for file in (Path(folder, name) for name in names):
                    self.files[file.relative_to(path).as_posix()] = partial(self._open, file)
                if len(self.files) > limits.max_members:
                    raise InvalidArgument(refused)
        elif not zipfile.is_zipfile(path):
            raise InvalidArgument(f"{path} is neither a folder nor a zip; expected a Slack export")
        else:
            if path.stat().st_size > limits.max_archive_bytes:
                raise InvalidArgument(f"{path} is over {limits.max_archive_bytes} bytes")
            archive = stack.enter_context(zipfile.ZipFile(path))
            infos = archive.infolist()
            if len(infos) > limits.max_members or sum(i.file_size for i in infos) > self.budget:
                raise InvalidArgument(refused)
            for info in infos:
                parts = info.filename.replace("\\", "/").split("/")
                if not parts[0] or ".." in parts or ":" in parts[0]:
                    raise InvalidArgument(f"{path}: member {info.filename!r} leads outside it")
                if not info.is_dir():
                    self.files["/".join(parts)] = partial(archive.open, info)
        tops = [n for n in self.files if n.count("/") == 1 and n.endswith("/channels.json")]
        if "channels.json" not in self.files and len(tops) == 1:
            self.prefix = tops[0].removesuffix("channels.json")  # zipped with its folder

    def _open(self, file: Path) -> IO[bytes]:
        if not file.resolve().is_relative_to(self.root):
            raise InvalidArgument(f"{file} links outside the export; links are not followed")
        return file.open("rb")

    def load(self, name: str, default: Any = None) -> Any:
        """The file's JSON, or `default` when the export has no such file."""
        opener = self.files.get(self.prefix + name)
        if opener is None:
            return default
        try:
            with opener() as file:
                data = file.read(self.budget + 1)
            self.budget -= len(data)
            if self.budget >= 0:
                return json.loads(data)
        except (zipfile.BadZipFile, zlib.error, NotImplementedError, RuntimeError, OSError) as exc:
            raise _bad(f"cannot be read ({exc})", name) from None
        except (ValueError, RecursionError) as exc:
            raise _bad(f"not valid JSON ({exc})", name) from None
        raise InvalidArgument("the export holds more bytes than max_uncompressed_bytes")

    def days(self, folder: str) -> list[str]:
        """The day files (`YYYY-MM-DD.json`) of a conversation's folder, oldest first."""
        head = f"{self.prefix}{folder}/"
        days = (n.removeprefix(head) for n in self.files if n.startswith(head))
        return sorted(day for day in days if _DAY.fullmatch(day))


def _conversations(export: _Export, path: Path) -> list[dict[str, Any]]:
    listed = export.load("channels.json")
    if not isinstance(listed, list):
        raise InvalidArgument(
            f"{path} is not a Slack workspace export: expected channels.json (a list of channels)"
            " at its top, next to users.json and one folder of day files per channel"
        )
    found: list[dict[str, Any]] = []
    for name in _LISTS:
        items = listed if name == "channels.json" else export.load(name, [])
        for i, item in enumerate(items if isinstance(items, list) else [None]):
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise _bad("expected a list of conversations, each with an id", name, f"[{i}]")
            found.append(item)
    return found


def _pick(conversations: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    key = wanted.strip().removeprefix("#")
    for item in conversations:
        if key and key in (item["id"], item.get("name")):
            return item
    known = sorted(str(item.get("name") or item["id"]) for item in conversations)
    listed = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
    raise InvalidArgument(f"no channel {wanted!r} in the export; it has {listed or 'none'}")


def _users(export: _Export) -> dict[str, str]:
    listed = export.load("users.json", [])
    if not isinstance(listed, list):
        raise _bad("expected a list of users", "users.json")
    names: dict[str, str] = {}
    for u in (u for u in listed if isinstance(u, dict) and isinstance(u.get("id"), str)):
        p = _dict(u.get("profile"))
        name = _first(p.get("display_name"), p.get("real_name"), u.get("real_name"), u.get("name"))
        if name:
            names[u["id"]] = name
    return names


def _merge(batches: list[tuple[str, str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The batches' (where, field, list) messages at their latest text; how many were deleted."""
    base: dict[str, dict[str, Any]] = {}
    edits: dict[str, tuple[tuple[int, int], dict[str, Any]]] = {}
    deleted: set[str] = set()
    for where, field, items in batches:
        if not isinstance(items, list):
            raise _bad("expected a list of messages", where, field or None)
        for i, msg in enumerate(items):
            when = _time(_dict(msg).get("ts"))
            changed = when is not None and msg.get("subtype") == "message_changed"
            new = _dict(msg.get("message")) if changed else None
            if when is None or (new is not None and _time(new.get("ts")) is None):
                reason = "a message is an object with a Slack `ts` (in 1970-2200)"
                raise _bad(reason, where, f"{field}[{i}]")
            if new is not None:
                if edits.get(new["ts"], ((-1, 0), {}))[0] < when[0]:
                    edits[new["ts"]] = (when[0], new)  # the latest edit wins
            elif msg.get("subtype") == "message_deleted":
                gone = msg.get("deleted_ts") or _dict(msg.get("previous_message")).get("ts")
                deleted.add(str(gone))
            else:
                base.setdefault(msg["ts"], msg)
    for ts, (_, new) in edits.items():
        base[ts] = {**base.get(ts, {}), **new}
    return [msg for ts, msg in base.items() if ts not in deleted], len(deleted)


@dataclass(frozen=True)
class _Rules:
    """What turning a raw message into a chat message needs to know."""

    users: dict[str, str]
    channels: dict[str, str]
    since: datetime | None
    until: datetime | None


def _build(
    batches: list[tuple[str, str, Any]], rules: _Rules, channel: str, limits: SlackLimits
) -> SlackHistory:
    if any(when is not None and when.utcoffset() is None for when in (rules.since, rules.until)):
        raise InvalidArgument("--since and --until need a time zone offset, such as Z or +02:00")
    if rules.since and rules.until and rules.since > rules.until:
        raise InvalidArgument("--since is after --until")
    raw, deleted = _merge(batches)
    skipped: Counter[str] = Counter(deleted=deleted)
    rows: list[tuple[tuple[Any, ...], ChatMessage]] = []
    for msg in raw:
        result = _convert(msg, rules)
        if isinstance(result, str):
            skipped[result] += 1
        elif len(rows) < limits.max_messages:
            rows.append(result)
        else:
            raise InvalidArgument(
                f"more than {limits.max_messages} messages in {channel or 'this history'}; "
                "narrow the time range with --since/--until"
            )
    rows.sort(key=lambda row: row[0])
    counts = dict(sorted((+skipped).items()))  # + drops the zero counts
    return SlackHistory(channel=channel, messages=[m for _, m in rows], skipped=counts)


def _convert(msg: dict[str, Any], rules: _Rules) -> tuple[tuple[Any, ...], ChatMessage] | str:
    """The chat message and its place (a reply sorts right after its parent), or why not."""
    ts, subtype = str(msg["ts"]), msg.get("subtype")
    own, at = _time(ts) or ((0, 0), datetime.now(UTC))  # always a time: checked by _merge
    if (rules.since and at < rules.since) or (rules.until and at > rules.until):
        return "outside range"
    if subtype in _SKIP or msg.get("hidden"):
        return _SKIP.get(str(subtype), "channel event")
    text = _plain(_raw_text(msg), rules)
    if not text:
        return "file upload" if subtype == "file_share" or msg.get("files") else "empty"
    thread = _time(msg.get("thread_ts"))
    root = thread[0] if thread else own
    if root != own:
        text = f"↳ {text}"
    text = text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 12] + " [truncated]"
    author = _author(msg, rules.users)
    message = ChatMessage(id=f"slack-{ts.replace('.', '-')}", at=at, author=author, text=text)
    return (root, root != own, own), message


def _time(value: Any) -> tuple[tuple[int, int], datetime] | None:
    """A Slack `ts` as a sort key and a UTC time; None if it is not one (or not in 1970-2200)."""
    match = _TS.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    key = int(match[1]), int((match[2] or "0").ljust(6, "0"))
    at = datetime.fromtimestamp(key[0], UTC) + timedelta(microseconds=key[1])
    return None if time_problem(at) else (key, at)


def _author(msg: dict[str, Any], users: dict[str, str]) -> str | None:
    user = msg.get("user")
    known = users.get(user) if isinstance(user, str) else None
    if msg.get("subtype") == "bot_message" or msg.get("bot_id"):
        bot = _dict(msg.get("bot_profile"))
        name = _first(msg.get("username"), bot.get("name"), known, msg.get("bot_id"), user)
    else:
        p = _dict(msg.get("user_profile"))
        name = _first(known, p.get("display_name"), p.get("real_name"), p.get("name"), user)
    return " ".join(name.split())[:100] if name else None


def _raw_text(msg: dict[str, Any]) -> str:
    listed = msg.get("attachments")
    attachments = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
    fallback = (_first(a.get("fallback"), a.get("text"), a.get("title")) for a in attachments)
    return _first(msg.get("text")) or "\n".join(text for text in fallback if text)


def _plain(text: str, rules: _Rules) -> str:
    """Slack's markup as the text a reader sees: `<@U1>` → `@Name`, `<@U1|ann>` → `@ann`,
    `<#C1|ops>` → `#ops`, `<#C1>` → `#` + its name if known, `<!here>` → `@here`,
    `<!subteam^S1|@oncall>` → `@oncall`, `<!date^…|Mar 2>` → `Mar 2`, `<https://x|docs>` →
    `docs (https://x)`, `<https://x>` → `https://x`; `&lt; &gt; &amp;` unescaped."""

    def swap(match: re.Match[str]) -> str:
        if match[2]:
            return _CHARS[match[2]]
        target, _, label = (_ENTITY.sub(lambda m: _CHARS[m[1]], p) for p in match[1].partition("|"))
        sigil, rest = target[:1], target[1:]
        word, _, detail = rest.partition("^")
        if sigil == "@":
            return "@" + (label or rules.users.get(rest, rest))
        if sigil == "#":
            return "#" + (label or rules.channels.get(rest, rest))
        if sigil == "!" and word in _BROADCASTS:
            return "@" + word
        if sigil == "!" and word == "subteam":
            return label if label.startswith("@") else "@" + (label or detail)
        if sigil == "!":
            return label or rest
        return f"{label} ({target})" if label and label != target else target

    return _MARKUP.sub(swap, text).strip()


def _first(*values: Any) -> str | None:
    """The first value that is a string with something in it, stripped."""
    return next((v.strip() for v in values if isinstance(v, str) and v.strip()), None)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
