"""The insights report and the definition of each of its measures (served with the report,
so a chart and the CSV say what they count)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

DEFINITIONS: dict[str, str] = {
    "range": "Incidents count in the month (UTC) they started; postmortems by their date. "
    "`since` is inclusive, `until` exclusive. Without a range: the last five years.",
    "incidents": "Incidents that started in the range, by month and severity.",
    "time_to_detect": "detected_at minus started_at, per incident. Incidents without a "
    "detection time are left out of it and counted under `missing`.",
    "time_to_mitigate": "mitigated_at minus started_at (when the impact stopped); incidents "
    "without one are left out and counted under `missing`.",
    "time_to_resolve": "resolved_at minus started_at (when the incident was closed); incidents "
    "without one are left out and counted under `missing`.",
    "median": "The middle value (the mean of the two middle ones for an even count).",
    "p90": "The 90th percentile by the nearest-rank method: the smallest value at or above "
    "which no more than 10% of the values lie.",
    "by_service": "An incident counts once for each service it names, so the rows of a "
    "breakdown by service can add up to more than the total.",
    "failure_modes": "Postmortems in the range whose root causes or trigger (else "
    "contributing factors) show a failure mode of the drafting library; one postmortem can "
    "show several.",
    "factor_categories": "Contributing factors' fishbone categories: how many postmortems "
    "in the range name at least one factor in each.",
    "chain_services": "How many postmortems in the range name each of their services in the "
    "causal chain.",
    "undated": "Postmortems without a date, left out of every ranged measure.",
    "stale": "Postmortems just imported or revised whose failure modes, factor categories and "
    "chain services are not found yet (a request finds at most 100; `rca import` and the "
    "draft workers find the rest): counted as postmortems, left out of those three measures.",
    "recurrence_rate": "Of the postmortems in the range, the share a reviewer confirmed as a "
    "recurrence of an earlier postmortem (rca proposes the links when a postmortem is "
    "finalized; proposals awaiting review are not counted). Per service and per failure mode: "
    "the same share among the postmortems naming that service or showing that mode.",
    "flagged": "A confirmed recurrence whose earlier postmortem still had action items open "
    "when it was confirmed: the promised fix had not landed when the failure came back.",
}


class Spread(BaseModel):
    """A duration measure over a set of incidents."""

    count: int
    """Incidents with the time (the others are under `missing`)."""
    missing: int
    """Incidents without it."""
    median_s: float | None
    """Median, in seconds; null without data."""
    p90_s: float | None
    """90th percentile (nearest rank), in seconds; null without data."""


class Times(BaseModel):
    """Time to detect, mitigate and resolve over a set of incidents."""

    incidents: int
    detect: Spread
    mitigate: Spread
    resolve: Spread


class MonthRow(BaseModel):
    """One month: incidents by severity and their times."""

    month: str
    """`YYYY-MM`, UTC."""
    by_severity: dict[str, int]
    times: Times


class GroupRow(BaseModel):
    """One service or severity: its incidents' times."""

    key: str
    times: Times


class Count(BaseModel):
    """How many postmortems have a value."""

    key: str
    name: str
    postmortems: int


class RecurrenceRate(BaseModel):
    """How often the postmortems of one service or failure mode were recurrences."""

    key: str
    name: str
    postmortems: int
    """Postmortems in the range with this service or failure mode."""
    recurrences: int
    """Those confirmed as a recurrence of an earlier postmortem."""
    rate: float
    """recurrences / postmortems."""


class RecurrenceItem(BaseModel):
    """A recurrence in the range: a postmortem and the earlier one it repeats."""

    postmortem_id: str
    title: str
    postmortem_date: date | None
    past_postmortem_id: str
    past_title: str
    past_postmortem_date: date | None
    state: str
    """`confirmed` or `proposed` (awaiting a reviewer)."""
    flagged: bool
    open_actions: list[str]
    reasons: list[str]


class Recurrences(BaseModel):
    """Recurrences among the postmortems in the range."""

    confirmed: int
    """Postmortems confirmed as a recurrence of an earlier one."""
    flagged: int
    """Of those, how many came back while a fix promised last time was still open."""
    proposed: int
    """Proposed links awaiting a reviewer."""
    rate: float | None
    """confirmed / postmortems in the range; null without postmortems."""
    by_service: list[RecurrenceRate]
    by_failure_mode: list[RecurrenceRate]
    items: list[RecurrenceItem]
    """Newest first: confirmed ones, then proposals; at most `ITEMS_SHOWN`."""


ITEMS_SHOWN = 50


class Range(BaseModel):
    """What the report covers."""

    since: date
    until: date
    services: list[str]
    severities: list[str]


class InsightsReport(BaseModel):
    """Measures over the incidents and postmortems in a range."""

    range: Range
    definitions: dict[str, str] = Field(default_factory=lambda: dict(DEFINITIONS))
    incidents: int
    by_severity: dict[str, int]
    times: Times
    months: list[MonthRow]
    """Every month of the range, empty ones included (oldest first)."""
    by_service: list[GroupRow]
    """Services by incident count, most first."""
    by_severity_times: list[GroupRow]
    postmortems: int
    undated_postmortems: int
    stale_postmortems: int = 0
    """Postmortems whose facts are not found yet (just imported or revised; the workers and
    `rca import` find them), left out of the failure-mode, factor and chain counts."""
    failure_modes: list[Count]
    factor_categories: list[Count]
    chain_services: list[Count]
    recurrences: Recurrences
    empty: bool
    """True when the range holds no incident and no postmortem."""
