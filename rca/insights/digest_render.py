"""A digest as Markdown (for chat, tickets, a terminal) and as a standalone HTML page (for
e-mail or a browser: inline CSS, no script, nothing loaded from elsewhere).

The text in a digest is untrusted (incident titles come from alerts and people) and already
redacted (`rca.insights.digest`). Here it is escaped: in Markdown every character that could
start markup (links, images, emphasis, HTML, code) is backslash-escaped and untrusted text
never starts a line, so it cannot make a heading, a list or a link; in HTML every string is
entity-escaped. Ids are shown as code. Empty sections say so.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import TypeVar

from rca.domain import ActionStatus
from rca.insights.digest import (
    Digest,
    DigestActionItem,
    DigestIncident,
    DigestPostmortem,
    DigestRecurrence,
    Section,
)

T = TypeVar("T")

_MARKUP = re.compile(r"([\\`*_\[\]<>#|~&@$])")
"""Characters that may start Markdown or HTML inside a line (emphasis, code, links and images
(their brackets), tags and autolinks, entities, tables, strikethrough, math, mentions and
issue references); each is backslash-escaped. Those that matter only at the start of a line
(`-`, `+`, `1.`, `=`) need nothing: untrusted text never starts one."""


def md(text: str) -> str:
    """Untrusted text as literal Markdown, on one line."""
    return _MARKUP.sub(r"\\\1", " ".join(text.split()))


def _code(ident: str) -> str:
    return f"`{ident}`" if "`" not in ident and ident.strip() == ident else md(ident)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _span(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _status(status: ActionStatus) -> str:
    return status.value.replace("_", " ")


def glance(d: Digest) -> list[str]:
    """The totals, as short phrases (the same in every rendering)."""
    c = d.counts
    severities = ", ".join(f"{n} {s}" for s, n in c.incidents_by_severity.items() if n)
    unresolved = f"{c.incidents_unresolved} unresolved" if c.incidents_unresolved else ""
    detail = "; ".join(p for p in (severities, unresolved) if p)
    return [
        _count(c.incidents, "new incident")
        + (f" ({detail})" if c.incidents else "")
        + (
            f", and {_count(c.incidents_backfilled, 'older incident')} imported"
            if c.incidents_backfilled
            else ""
        ),
        _count(c.postmortems, "postmortem")
        + (
            f" ({c.postmortems_finalized} finalized, {c.postmortems_imported} imported)"
            if c.postmortems
            else ""
        )
        + (
            f", and {_count(c.postmortems_backfilled, 'older postmortem')} imported"
            if c.postmortems_backfilled
            else ""
        ),
        _count(c.new_action_items, "new action item")
        + (f" ({c.new_action_items_open} still open)" if c.new_action_items else ""),
        _count(c.overdue_action_items, "overdue action item"),
        _count(c.recurrences, "recurrence")
        + (
            f" ({c.recurrences_confirmed} confirmed, {c.recurrences_flagged} flagged)"
            if c.recurrences
            else ""
        ),
    ]


def title(d: Digest) -> str:
    """The digest's title: its window, by day."""
    return f"Incident digest, {d.window.since:%Y-%m-%d} to {d.window.until:%Y-%m-%d}"


EMPTY = {
    "incidents": "No incident started or was recorded in this window.",
    "postmortems": "No postmortem was finalized or imported in this window.",
    "new_action_items": "No new action item in this window.",
    "overdue_action_items": "No action item is overdue.",
    "recurrences": "No recurrence was proposed or confirmed in this window.",
}
HEADINGS = {
    "incidents": "New incidents",
    "postmortems": "Postmortems",
    "new_action_items": "New action items",
    "overdue_action_items": "Overdue action items",
    "recurrences": "Recurrences",
}


# --- Markdown ------------------------------------------------------------------------------


def _md_incident(i: DigestIncident) -> str:
    parts = [f"**{i.severity.value}** {md(i.title)} ({_code(i.id)})"]
    if i.services:
        parts.append("services: " + ", ".join(md(s) for s in i.services))
    parts.append(f"started {_when(i.started_at)}")
    if (i.recorded_at - i.started_at).total_seconds() > 86_400:
        parts.append(f"recorded {_when(i.recorded_at)}")
    if i.detected_at:
        parts.append(f"detected after {_span((i.detected_at - i.started_at).total_seconds())}")
    if i.resolved_at:
        parts.append(f"resolved after {_span((i.resolved_at - i.started_at).total_seconds())}")
    else:
        parts.append("**unresolved**")
    return " · ".join(parts)


def _md_postmortem(p: DigestPostmortem) -> str:
    severity = f"**{p.severity.value}** " if p.severity else ""
    parts = [f"{severity}{md(p.title)} ({_code(p.id)}, revision {p.revision})"]
    parts.append(f"{p.how} {_when(p.at)}")
    if p.date:
        parts.append(f"incident of {p.date.isoformat()}")
    return " · ".join(parts)


def _late(a: DigestActionItem) -> str:
    return _count(a.days_late or 0, "day") + " late"


def _md_action(a: DigestActionItem) -> str:
    parts = [f"**{a.priority.value}**", a.kind.value, md(a.text)]
    parts.append("owner " + md(a.owner) if a.owner else "no owner")
    parts.append(f"due {a.due_on.isoformat()}" if a.due_on else "no due date")
    parts.append(_status(a.status) + (f", **{_late(a)}**" if a.days_late is not None else ""))
    parts.append(f"from {md(a.postmortem_title)} ({_code(a.postmortem_id)})")
    return " · ".join(parts)


def _md_overdue(a: DigestActionItem) -> str:
    return f"**{_late(a)}** · " + _md_action(a).replace(f", **{_late(a)}**", "", 1)


def _md_recurrence(r: DigestRecurrence) -> str:
    newer = f"{md(r.postmortem_title)} ({_code(r.postmortem_id)})"
    past = f"{md(r.past_postmortem_title)} ({_code(r.past_postmortem_id)})"
    if r.state.value == "confirmed":
        lead = "**Flagged**: " if r.flagged else "**Confirmed**: "
        text = f"{lead}{newer} repeats {past}, confirmed {_when(r.at)}"
        if r.decided_by:
            text += f" by {md(r.decided_by)}"
        if r.open_actions:
            text += "; still open then: " + "; ".join(md(a) for a in r.open_actions)
        return text
    return f"**Proposed**: {newer} may repeat {past} (score {r.score:.2f}), {_when(r.at)}"


def _md_section(name: str, section: Section[T], line: Callable[[T], str]) -> list[str]:
    out = [f"## {HEADINGS[name]} ({section.total})", ""]
    if not section.items:
        return [*out, EMPTY[name], ""]
    out += [f"- {line(item)}" for item in section.items]
    if section.more:
        out.append(f"- …and {section.more} more")
    return [*out, ""]


def markdown(d: Digest) -> str:
    """The digest as Markdown."""
    w = d.window
    lines = [
        f"# {title(d)}",
        "",
        f"From {_when(w.since)} up to {_when(w.until)}; overdue items as of "
        f"{w.overdue_on.isoformat()}. Made {_when(d.generated_at)}.",
        "",
        "**At a glance:** " + " · ".join(glance(d)) + ".",
        "",
    ]
    if d.empty:
        lines += ["Nothing new in this window, and nothing overdue.", ""]
    lines += _md_section("incidents", d.incidents, _md_incident)
    lines += _md_section("postmortems", d.postmortems, _md_postmortem)
    lines += _md_section("new_action_items", d.new_action_items, _md_action)
    lines += _md_section("overdue_action_items", d.overdue_action_items, _md_overdue)
    lines += _md_section("recurrences", d.recurrences, _md_recurrence)
    if d.redacted:
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(d.redacted.items()))
        lines += [f"_Redacted: {found}._", ""]
    return "\n".join(lines).rstrip() + "\n"


# --- HTML ----------------------------------------------------------------------------------


def h(value: object) -> str:
    """Any value as escaped HTML text."""
    return html.escape(str(value), quote=True)


CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
background:#f6f7f9;margin:0;padding:24px}
main{max-width:960px;margin:0 auto;background:#fff;border:1px solid #dde1e7;border-radius:8px;
padding:24px 28px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#5b6472;margin:0 0 16px}
ul.glance{list-style:none;padding:0;margin:0;display:flex;flex-wrap:wrap;gap:8px}
ul.glance li{background:#eef1f5;border-radius:6px;padding:6px 10px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid #e6e9ee}
th{font-size:13px;color:#5b6472;font-weight:600}
code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#f1f3f6;padding:1px 4px;
border-radius:4px;word-break:break-all}
.sev{font-weight:700;white-space:nowrap}.SEV1{color:#b3261e}.SEV2{color:#c2410c}
.late,.flag{color:#b3261e;font-weight:700}.empty,.more{color:#5b6472;font-style:italic}
""".strip()


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{h(x)}</th>" for x in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sev(value: str | None) -> str:
    return f'<span class="sev {h(value)}">{h(value)}</span>' if value else "—"


def _html_section(
    name: str, section: Section[T], headers: list[str], row: Callable[[T], list[str]]
) -> str:
    out = f"<section><h2>{h(HEADINGS[name])} ({section.total})</h2>"
    if not section.items:
        return out + f'<p class="empty">{h(EMPTY[name])}</p></section>'
    out += _table(headers, [row(item) for item in section.items])
    if section.more:
        out += f'<p class="more">…and {section.more} more</p>'
    return out + "</section>"


def _html_incident(i: DigestIncident) -> list[str]:
    def after(moment: datetime | None) -> str:
        return _span((moment - i.started_at).total_seconds()) if moment else "—"

    resolved = after(i.resolved_at) if i.resolved_at else '<span class="late">unresolved</span>'
    return [
        _sev(i.severity.value),
        f"{h(i.title)}<br><code>{h(i.id)}</code>",
        h(", ".join(i.services)) or "—",
        h(_when(i.started_at)),
        h(after(i.detected_at)),
        resolved,
    ]


def _html_postmortem(p: DigestPostmortem) -> list[str]:
    return [
        _sev(p.severity.value if p.severity else None),
        f"{h(p.title)}<br><code>{h(p.id)}</code>",
        h(f"{p.how}, revision {p.revision}"),
        h(_when(p.at)),
        h(p.date.isoformat()) if p.date else "—",
    ]


def _day(value: date | None) -> str:
    return h(value.isoformat()) if value else "—"


def _html_action(a: DigestActionItem) -> list[str]:
    late = f'<br><span class="late">{h(_late(a))}</span>' if a.days_late is not None else ""
    return [
        h(f"{a.priority.value} · {a.kind.value}"),
        h(a.text),
        h(a.owner) if a.owner else "—",
        _day(a.due_on),
        h(_status(a.status)) + late,
        f"{h(a.postmortem_title)}<br><code>{h(a.postmortem_id)}</code>",
    ]


def _html_overdue(a: DigestActionItem) -> list[str]:
    cells = _html_action(a)
    cells[4] = h(_status(a.status))
    return [f'<span class="late">{h(_late(a))}</span>', *cells]


def _html_recurrence(r: DigestRecurrence) -> list[str]:
    state = '<span class="flag">flagged</span>' if r.flagged else h(r.state.value)
    return [
        state,
        f"{h(r.postmortem_title)}<br><code>{h(r.postmortem_id)}</code>",
        f"{h(r.past_postmortem_title)}<br><code>{h(r.past_postmortem_id)}</code>",
        "<br>".join(h(a) for a in r.open_actions) or "—",
        h(_when(r.at)) + (f"<br>by {h(r.decided_by)}" if r.decided_by else ""),
    ]


def page(d: Digest) -> str:
    """The digest as a standalone HTML page."""
    w = d.window
    action_headers = ["priority", "action item", "owner", "due", "status", "postmortem"]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{h(title(d))}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{h(title(d))}</h1>",
        f'<p class="meta">From {h(_when(w.since))} up to {h(_when(w.until))}; overdue items as '
        f"of {h(w.overdue_on.isoformat())}. Made {h(_when(d.generated_at))}.</p>",
        '<ul class="glance">' + "".join(f"<li>{h(x)}</li>" for x in glance(d)) + "</ul>",
    ]
    if d.empty:
        parts.append('<p class="empty">Nothing new in this window, and nothing overdue.</p>')
    parts += [
        _html_section(
            "incidents",
            d.incidents,
            ["severity", "incident", "services", "started", "detected after", "resolved after"],
            _html_incident,
        ),
        _html_section(
            "postmortems",
            d.postmortems,
            ["severity", "postmortem", "how", "when", "incident date"],
            _html_postmortem,
        ),
        _html_section("new_action_items", d.new_action_items, action_headers, _html_action),
        _html_section(
            "overdue_action_items",
            d.overdue_action_items,
            ["late", *action_headers],
            _html_overdue,
        ),
        _html_section(
            "recurrences",
            d.recurrences,
            ["state", "postmortem", "repeats", "open action items then", "when"],
            _html_recurrence,
        ),
    ]
    if d.redacted:
        found = ", ".join(f"{n} {kind}" for kind, n in sorted(d.redacted.items()))
        parts.append(f'<p class="meta">Redacted: {h(found)}.</p>')
    parts.append("</main></body></html>")
    return "\n".join(parts) + "\n"
