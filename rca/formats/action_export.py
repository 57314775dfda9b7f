"""Action items for a team's tracker: CSV in the shape Jira's CSV import takes, JSON in the shape
of GitHub's create-issue request, one per item.

Text leaves rca here, so it is redacted like any text that leaves (postmortems imported as
written may hold secrets). A CSV cell that a spreadsheet would read as a formula (starting with
`=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'`, so an action item's text
cannot run anything in the program that opens the file.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from rca.domain import Priority
from rca.redaction import Redactor
from rca.store.action_items import ActionItemRow

JIRA_PRIORITY = {
    Priority.MUST: "Highest",
    Priority.SHOULD: "High",
    Priority.COULD: "Medium",
    Priority.WONT: "Lowest",
}
"""MoSCoW priority → Jira's default priority scheme."""
JIRA_COLUMNS = (
    "Summary",
    "Description",
    "Issue Type",
    "Priority",
    "Assignee",
    "Team",
    "Labels",
    "Labels",
    "Labels",
    "External ID",
    "Due Date",
)
"""Jira's importer maps each column in its wizard; repeated `Labels` columns give one label
each. `Assignee` is left empty: an owner in rca is a team or role, not a Jira user. `Due Date`
is `YYYY-MM-DD` (tell the wizard that date format), empty when the item has none."""
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def item_key(row: ActionItemRow) -> str:
    """The item's id in rca: `<postmortem id>#<stable key>` (the key survives a later
    revision that reorders the items, so a tracker can match the issue to it again)."""
    return f"{row.postmortem_id}#{row.key}"


def safe_cell(text: str) -> str:
    """A spreadsheet cell that cannot run as a formula (a leading `=`, `+`, `-`, `@`, tab or
    carriage return gets a quote)."""
    return f"'{text}" if text.startswith(_FORMULA) else text


def _description(row: ActionItemRow, redactor: Redactor) -> str:
    action = row.action
    owner = redactor.redact(action.owner) if action.owner else "no owner yet"
    due = ""
    if row.due_on is not None:
        due = f" Due: {row.due_on.isoformat()}{' (overdue)' if row.overdue else ''}."
    return (
        f"{redactor.redact(action.text)}\n\n"
        f"Kind: {action.kind.value}. Priority: {action.priority.value} (MoSCoW). "
        f"Owner: {owner}. Status in rca: {action.status.value}.{due}\n"
        f"From the postmortem {row.postmortem_id}: {redactor.redact(row.postmortem_title)} "
        f"(rca item {item_key(row)})."
    )


def to_jira_csv(rows: Sequence[ActionItemRow], redactor: Redactor) -> str:
    """The items as a CSV file for Jira's CSV import, with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(JIRA_COLUMNS)
    for row in rows:
        action = row.action
        values = [
            redactor.redact(action.text),
            _description(row, redactor),
            "Task",
            JIRA_PRIORITY[action.priority],
            "",
            redactor.redact(action.owner) if action.owner else "",
            "rca",
            f"rca-{action.kind.value}",
            f"postmortem-{row.postmortem_id}"[:255],
            item_key(row),
            row.due_on.isoformat() if row.due_on else "",
        ]
        writer.writerow([safe_cell(v) for v in values])
    return out.getvalue()


def to_github_issues(rows: Sequence[ActionItemRow], redactor: Redactor) -> str:
    """The items as a JSON array of GitHub create-issue request bodies (`title`, `body`,
    `labels`, `assignees`), to post one by one to `POST /repos/{owner}/{repo}/issues`. An
    issue has no due date field: the body says it (and the rca item `pm-id#key`)."""
    issues = []
    for row in rows:
        action = row.action
        labels = ["rca", f"rca:{action.kind.value}", f"priority:{action.priority.value}"]
        if action.owner:
            labels.append(f"team:{redactor.redact(action.owner)}"[:50])
        issues.append(
            {
                "title": redactor.redact(action.text)[:256],
                "body": _description(row, redactor),
                "labels": labels,
                "assignees": [],
            }
        )
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"
