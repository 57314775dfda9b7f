"""Markdown export → import is lossless, and format errors name the line."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rca.domain import (
    NODE_ID_PATTERN,
    ActionKind,
    ActionStatus,
    FactorCategory,
    NodeKind,
    Postmortem,
    Priority,
    Severity,
)
from rca.errors import InvalidInput
from rca.formats.importer import parse_markdown_postmortem
from rca.formats.markdown import escape_cell, split_cells, to_markdown
from tests.factories import postmortem_data

# Text full of the characters the format gives meaning to.
_TRICKY = "#\\|-:→>[]()*+`_\u2014\u2013'\" \t\n\u2028\x85\x1bÄé中🙂"
_chars = st.one_of(st.sampled_from(_TRICKY), st.characters(exclude_categories=("Cs",)))
_raw = st.text(_chars, min_size=1, max_size=40).filter(lambda s: "\x00" not in s)
_line = _raw.filter(lambda s: bool(s.strip()))
_name = st.text(_chars, min_size=1, max_size=20).filter(lambda s: s.strip() and "\x00" not in s)
_ident = st.from_regex(NODE_ID_PATTERN, fullmatch=True)
_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(-timedelta(hours=5, minutes=30))]
)
_moment = st.datetimes(  # the range a Timestamp accepts, a day inside it whatever the offset
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 12, 30), timezones=_zones
).map(lambda d: d.isoformat())


@st.composite
def _chains(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(_ident, max_size=6, unique=True))
    nodes = []
    for index, ident in enumerate(ids):
        later = ids[index + 1 :]
        targets = draw(st.lists(st.sampled_from(later), unique=True)) if later else []
        kind = draw(st.sampled_from(list(NodeKind))).value
        nodes.append({"id": ident, "kind": kind, "text": draw(_line), "leads_to": targets})
    return nodes


_action = st.fixed_dictionaries(
    {
        "text": _line,
        "kind": st.sampled_from([k.value for k in ActionKind]),
        "priority": st.sampled_from([p.value for p in Priority]),
        "status": st.sampled_from([s.value for s in ActionStatus]),
    },
    optional={"owner": _name},
)

_postmortems = st.fixed_dictionaries(
    {
        "id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}\Z"),
        "title": _line,
        "summary": st.text(_chars, min_size=1, max_size=200).filter(
            lambda s: s.strip() and "\x00" not in s
        ),
    },
    optional={
        "incident_id": st.from_regex(r"\Ainc-[a-z0-9-]{1,20}\Z"),
        "date": st.dates(min_value=date(1900, 1, 1)).map(date.isoformat),
        "severity": st.sampled_from([s.value for s in Severity]),
        "services": st.lists(_name, max_size=3),
        "tags": st.lists(_name, max_size=3),
        "impact": _raw,
        "trigger": _raw,
        "detection": _raw,
        "resolution": _raw,
        "root_causes": st.lists(_line, max_size=3),
        "contributing_factors": st.lists(
            st.fixed_dictionaries(
                {"text": _line, "category": st.sampled_from([c.value for c in FactorCategory])}
            ),
            max_size=3,
        ),
        "causal_chain": _chains(),
        "timeline": st.lists(st.fixed_dictionaries({"at": _moment, "text": _line}), max_size=3),
        "action_items": st.lists(_action, max_size=3),
        "lessons": st.fixed_dictionaries(
            {},
            optional={
                "went_well": st.lists(_line, max_size=2),
                "went_wrong": st.lists(_line, max_size=2),
                "lucky": st.lists(_line, max_size=2),
            },
        ),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_postmortems)
def test_markdown_export_then_import_is_lossless(data: dict[str, Any]) -> None:
    pm = Postmortem.model_validate(data)
    back = parse_markdown_postmortem(to_markdown(pm), "generated.md")
    assert back == pm
    assert back.content_hash() == pm.content_hash()


def test_the_fixture_postmortem_reads_as_written() -> None:
    pm = Postmortem.model_validate(postmortem_data())
    text = to_markdown(pm)
    assert "- n1 (root_cause) → n2: Template fetch per message" in text
    assert "| Alert on consumer lag above 10 minutes | detect | should |  | open |" in text
    assert "- 2025-04-09T08:35:00+02:00 — Support ticket about late emails" in text
    assert parse_markdown_postmortem(text, "x.md") == pm


@given(st.lists(_line, min_size=1, max_size=5))
def test_table_cells_round_trip(cells: list[str]) -> None:
    row = "| " + " | ".join(escape_cell(c.strip()) for c in cells) + " |"
    assert split_cells(row) == [c.strip() for c in cells]


_GOOD = """---
id: pm-x
title: A title
---

## Summary

Something broke.
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        parse_markdown_postmortem(text, "pm.md")
    return [str(p) for p in info.value.problems]


def test_human_written_variants_are_accepted() -> None:
    text = _GOOD.replace("## Summary", "## SUMMARY ##") + (
        "\n## causal chain\n\n* n1 (trigger) -> n2: deploy\n"
        "  that wrapped\n- n2 (impact): outage\n"
        "\n## Timeline\n\n- 2024-01-01T00:00:00Z - start\n"
    )
    pm = parse_markdown_postmortem(text, "pm.md")
    assert [n.leads_to for n in pm.causal_chain] == [["n2"], []]
    assert pm.causal_chain[0].text == "deploy that wrapped"
    assert pm.timeline[0].text == "start"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no front matter\n", ["pm.md:1: missing YAML front matter"]),
        ("---\nid: x\n", ["pm.md:1: YAML front matter is not closed"]),
        ("---\nid: [unclosed\n---\n", ["pm.md:2: invalid YAML front matter"]),
        ("---\nid: a\nid: b\n---\n", ["pm.md:3: invalid YAML front matter: duplicate key 'id'"]),
        (_GOOD.replace("title:", "owner: me\ntitle:"), ["pm.md:3: unknown front matter key"]),
        (_GOOD + "\n## Root Cause Analysis\n\nbody\n", ["pm.md:10: unknown heading 'Root Cause"]),
        (_GOOD + "\n## summary\n\nagain\n", ["pm.md:10: heading 'summary' appears twice"]),
        (_GOOD + "\n## Root Causes\n\nnot a bullet\n", ["pm.md:12: Root Causes: expected"]),
        (_GOOD + "\n## Contributing Factors\n\n- no category\n", ["pm.md:12: Contributing"]),
        (_GOOD + "\n## Causal Chain\n\n- n1 trigger: x\n", ["pm.md:12: Causal Chain: expected"]),
        (_GOOD + "\n## Timeline\n\n- yesterday\n", ["pm.md:12: Timeline: expected"]),
        (
            _GOOD + "\n## Action Items\n\n| Do | Kind |\n|---|---|\n",
            ["pm.md:12: Action Items: the table must have the columns"],
        ),
        (
            _GOOD + "\n## Action Items\n\n| Action | Kind | Priority | Owner | Status |\n"
            "|---|---|---|---|---|\n| a | prevent |\n",
            ["pm.md:14: Action Items: expected 5 cells, got 2"],
        ),
        (
            _GOOD + "\n## Lessons Learned\n\n### Surprises\n\n- x\n",
            ["pm.md:12: Lessons Learned: unknown heading"],
        ),
        ("---\nid: pm-x\ntitle: t\n---\nstray text\n", ["pm.md:5: text before the first heading"]),
    ],
)
def test_format_errors_name_the_line(text: str, expected: list[str]) -> None:
    problems = _problems(text)
    assert len(problems) == len(expected), problems
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start), problem


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            "## Causal Chain\n\n- n1 (trigger) → n9: x\n",
            r"pm\.md:10: causal_chain: causal chain node n1 leads to missing node 'n9'",
        ),
        ("## Contributing Factors\n\n- [vibes] x\n", r"pm\.md:12: contributing_factors\[0\]"),
        (
            "## Action Items\n\n| Action | Kind | Priority | Owner | Status |\n"
            "|---|---|---|---|---|\n| a | prevent | urgent | x | open |\n",
            r"pm\.md:14: action_items\[0\]\.priority: Input should be 'must'",
        ),
        ("## Timeline\n\n- 2024-01-01T00:00:00 — naive\n", r"pm\.md:12: timeline\[0\]\.at"),
    ],
)
def test_content_errors_name_the_line(section: str, expected: str) -> None:
    text = _GOOD.replace("## Summary\n\nSomething broke.\n", "## Summary\n\nx\n\n" + section)
    problems = _problems(text)
    assert len(problems) == 1 and re.match(expected, problems[0]), problems


def test_missing_summary_is_reported() -> None:
    problems = _problems("---\nid: pm-x\ntitle: t\n---\n\n## Impact\n\nsome\n")
    assert problems == ["pm.md:2: summary: required field missing"]
