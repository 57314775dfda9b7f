"""A draft rendered as Markdown: layout, causal chain order, flags, usage, inert untrusted text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rca.domain import (
    ActionItem,
    ActionKind,
    Basis,
    CausalNode,
    ContributingFactor,
    Draft,
    DraftNote,
    DraftUsage,
    FactorCategory,
    FollowUp,
    Incident,
    LanguageFlag,
    LessonContent,
    ModelCall,
    NodeKind,
    NoteKind,
    Postmortem,
    Priority,
    Suggestion,
    SuggestionContent,
    SuggestionOrigin,
    SuggestionSection,
)
from rca.drafting.baseline import baseline_draft
from rca.drafting.findings import find
from rca.formats.draft_markdown import chain_order, inline, render_draft
from rca.formats.importer import load_file
from tests.factories import incident_data

EXAMPLES = Path(__file__).parents[2] / "examples"
NOW = datetime(2026, 1, 21, 9, 0, tzinfo=UTC)
S = SuggestionSection


def _example_incident() -> Incident:
    [doc] = load_file(EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json", 5 << 20)
    assert isinstance(doc, Incident)
    return doc


def _example_postmortem() -> Postmortem:
    [doc] = load_file(EXAMPLES / "postmortems" / "pm-2022-11-black-friday-capacity.md", 5 << 20)
    assert isinstance(doc, Postmortem)
    return doc


def _suggestion(
    ident: str,
    section: SuggestionSection,
    content: SuggestionContent,
    evidence: list[str] | None = None,
    **extra: object,
) -> Suggestion:
    return Suggestion.model_validate(
        {
            "id": ident,
            "section": section,
            "content": content,
            "evidence_ids": evidence or [],
            "confidence": 0.8,
        }
        | extra
    )


def _node(ident: str, kind: NodeKind, text: str, *leads_to: str) -> CausalNode:
    return CausalNode(id=ident, kind=kind, text=text, leads_to=list(leads_to))


FLAG = LanguageFlag(
    phrase="human error",
    reason="'human error' ends the analysis where it should begin",
    suggestion="name the system condition",
)


def _hand_built(**changes: object) -> Draft:
    suggestions = [
        _suggestion("s1", S.SUMMARY, "Order emails were late after a deploy.", ["a1"]),
        _suggestion(
            "s2",
            S.ROOT_CAUSE,
            "A human error in the worker config.",
            ["t1", "l1"],
            basis=Basis.HYPOTHESIS,
            rationale="The fetch latency starts right after the deploy.",
            flags=[FLAG],
        ),
        # Listed impact first and root cause last: the rendering must reorder them.
        _suggestion("s3", S.CAUSAL_NODE, _node("n4", NodeKind.IMPACT, "Emails late"), ["a1"]),
        _suggestion("s4", S.CAUSAL_NODE, _node("n3", NodeKind.SYMPTOM, "Lag grows", "n4"), ["a1"]),
        _suggestion("s5", S.CAUSAL_NODE, _node("n2", NodeKind.TRIGGER, "4.2.0 out", "n3"), ["t1"]),
        _suggestion(
            "s6", S.CAUSAL_NODE, _node("n1", NodeKind.ROOT_CAUSE, "No cache", "n2", "n3"), ["l1"]
        ),
        _suggestion(
            "s7",
            S.CONTRIBUTING_FACTOR,
            ContributingFactor(text="Lag had no alert", category=FactorCategory.MONITORING),
            ["a1"],
        ),
        _suggestion(
            "s8",
            S.ACTION_ITEM,
            ActionItem(text="Alert on lag", kind=ActionKind.DETECT, priority=Priority.SHOULD),
            ["a1"],
        ),
        _suggestion(
            "s9",
            S.ACTION_ITEM,
            ActionItem(
                text="Cache templates",
                kind=ActionKind.PREVENT,
                priority=Priority.MUST,
                owner="messaging",
            ),
            ["l1"],
            origin=SuggestionOrigin.HISTORY,
        ),
        _suggestion("s10", S.LESSON, LessonContent(heading="went_well", text="Quick rollback"), []),
    ]
    draft = Draft(
        id="draft-7",
        incident_id="inc-test-queue-2025",
        created_at=NOW,
        model="ollama/qwen2.5",
        prompt_version="draft@4",
        similar_postmortem_ids=["pm-test-queue-2025"],
        suggestions=suggestions,
        degraded=True,
        notes=[
            DraftNote(
                kind=NoteKind.DEGRADED,
                message="The vector index was unavailable; lexical search only.",
            ),
            DraftNote(
                kind=NoteKind.DROPPED,
                section=S.TRIGGER,
                message="A trigger citing no evidence was removed.",
                evidence_ids=["c1"],
            ),
        ],
        follow_ups=[
            FollowUp(
                postmortem_id="pm-test-queue-2025",
                postmortem_title="Order emails delayed by a stuck consumer group",
                action=ActionItem(
                    text="Alert on consumer lag", kind=ActionKind.DETECT, owner="messaging"
                ),
                related_suggestion_ids=["s2", "s7"],
                similarity=0.62,
            )
        ],
        usage=DraftUsage(
            calls=[
                ModelCall(
                    section="trigger",
                    model="m",
                    ok=True,
                    latency_s=1.0,
                    prompt_tokens=1200,
                    completion_tokens=80,
                    cost_usd=0.0021,
                ),
                ModelCall(
                    section="root_causes",
                    model="m",
                    ok=False,
                    latency_s=30.0,
                    error="timeout after 30 s",
                ),
            ],
            stages_s={"redaction": 0.01, "retrieval": 0.2, "model": 31.0},
        ),
    )
    return draft.model_copy(update=changes)


def test_baseline_draft_of_an_example_incident() -> None:
    incident, past = _example_incident(), _example_postmortem()
    draft = baseline_draft(incident, find(incident), [past], "draft-1", NOW)
    out = render_draft(draft, incident)

    assert out.startswith(
        "# Draft analysis: Checkout latency and errors in prod-eu after afternoon release\n\n"
        "- Incident: inc-2026-01-checkout-db-pool · SEV2 · "
        "services: checkout-api, orders-db, payments-api\n"
        "- Draft: draft-1 · created 2026-01-21T09:00:00Z · model baseline · prompt baseline@1\n"
        "- Time to detect 7 min · time to mitigate 42 min · time to resolve 1 h 6 min\n"
    )
    headings = re.findall(r"(?m)^#{2,3} .*$", out)
    assert [h for h in headings if h.startswith("## ")] == [
        "## Summary",
        "## Impact",
        "## Trigger",
        "## Root Causes",
        "## Causal Chain",
        "## Contributing Factors",
        "## Timeline",
        "## Action Items",
        "## Similar Past Incidents",
    ]
    assert "- **s3** (40%, hypothesis, rules) [t2] — checkout-api v7.12.0 rolled out" in out
    assert "p99 latency 8.4s &gt; 2s" in out  # incident text is HTML-escaped
    # Every action item of the borrowed postmortem is a table row, "must" ones first.
    rows = [line for line in out.splitlines() if line.startswith("| ") and "**s" in line]
    assert len(rows) == len(past.action_items)
    priorities = [row.split(" | ")[0].removeprefix("| ") for row in rows]
    assert priorities == sorted(priorities, key=["must", "should", "could", "wont"].index)
    assert rows[0] == (
        "| must | prevent | Put PgBouncer in transaction mode in front of orders-db "
        "| data-platform | **s26** (20%, hypothesis, history) [pm-2022-11-black-friday-capacity] |"
    )
    assert out.endswith("## Similar Past Incidents\n\n- pm-2022-11-black-friday-capacity\n")
    assert "Degraded" not in out and "## Usage" not in out  # no calls, no stage times
    assert render_draft(draft, incident) == out


def test_sections_without_content_are_left_out() -> None:
    incident = Incident.model_validate(incident_data(alerts=[], timeline=[], logs=[], chat=[]))
    draft = baseline_draft(incident, find(incident), [], "draft-2", NOW)
    out = render_draft(draft, incident)
    assert re.findall(r"(?m)^## .*$", out) == ["## Summary", "## Timeline"]
    assert "[no evidence]" in out


def test_hand_built_draft_with_notes_flags_follow_ups_and_usage() -> None:
    incident = Incident.model_validate(incident_data())
    out = render_draft(_hand_built(), incident)
    lines = out.splitlines()

    assert "> **⚠ Degraded draft.**" in out
    assert out.index("⚠ Degraded draft") < out.index("## Notes") < out.index("## Summary")
    assert "- **degraded**: The vector index was unavailable; lexical search only." in lines
    assert "- **dropped** (trigger): A trigger citing no evidence was removed. [c1]" in lines

    at = lines.index(
        "- **s2** (80%, hypothesis, model) [t1, l1] — A human error in the worker config."
    )
    assert lines[at + 1 : at + 3] == [
        "  - why: The fetch latency starts right after the deploy.",
        "  - ⚠ 'human error': 'human error' ends the analysis where it should begin "
        "— consider: name the system condition",
    ]

    chain = out[out.index("## Causal Chain") : out.index("## Contributing Factors")]
    assert chain.splitlines()[2:] == [
        "- **s6** (80%, hypothesis, model) [l1] — **n1** root cause: No cache",
        "  → leads to: n2, n3",
        "- **s5** (80%, hypothesis, model) [t1] — **n2** trigger: 4.2.0 out",
        "  → leads to: n3",
        "- **s4** (80%, hypothesis, model) [a1] — **n3** symptom: Lag grows",
        "  → leads to: n4",
        "- **s3** (80%, hypothesis, model) [a1] — **n4** impact: Emails late",
        "",
    ]

    assert "### Monitoring\n\n- **s7** (80%, hypothesis, model) [a1] — Lag had no alert" in out
    assert (
        "| Priority | Kind | Action | Owner | Suggestion |\n|---|---|---|---|---|\n"
        "| must | prevent | Cache templates | messaging "
        "| **s9** (80%, hypothesis, history) [l1] |\n"
        "| should | detect | Alert on lag | — | **s8** (80%, hypothesis, model) [a1] |\n"
    ) in out
    assert "## Lessons Learned\n\n### What went well\n\n- **s10**" in out
    assert (
        "## Open Follow-ups from Similar Incidents\n\n"
        "- **pm-test-queue-2025** Order emails delayed by a stuck consumer group — "
        "Alert on consumer lag (detect, should) · owner: messaging · status: open · "
        "relates to: s2, s7 · similarity 0.62\n"
    ) in out
    assert out.endswith(
        "## Usage\n\n"
        "- Model calls: 2 (1 failed)\n"
        "  - failed: root_causes on m: timeout after 30 s\n"
        "- Tokens: 1,200 prompt · 80 completion\n"
        "- Cost: 0.0021 USD\n"
        "- Stages: redaction 0.01 s · retrieval 0.20 s · model 31.00 s (total 31.21 s)\n"
    )
    assert "Degraded" not in render_draft(_hand_built(degraded=False), incident)


def test_chain_order_puts_root_causes_first_and_survives_cycles() -> None:
    nodes = [
        _node("i", NodeKind.IMPACT, "impact"),
        _node("t", NodeKind.TRIGGER, "trigger", "i"),
        _node("c", NodeKind.CONTRIBUTING_FACTOR, "factor", "t"),
        _node("r", NodeKind.ROOT_CAUSE, "root", "t"),
    ]
    assert [nodes[i].id for i in chain_order(nodes)] == ["r", "c", "t", "i"]
    looped = [_node("a", NodeKind.CAUSE, "a", "b"), _node("b", NodeKind.CAUSE, "b", "a")]
    assert chain_order([*looped, _node("z", NodeKind.IMPACT, "z")]) == [2, 0, 1]
    dangling = _suggestion("s1", S.CAUSAL_NODE, _node("a", NodeKind.CAUSE, "a", "gone"))
    out = render_draft(
        _hand_built(suggestions=[dangling]), Incident.model_validate(incident_data())
    )
    assert "  → leads to: gone (not in the chain)\n" in out


INJECTIONS = (
    "<script>alert(1)</script>",
    "![x](https://evil.example/a.png)",
    "[click](javascript:alert(1))",
    "\u202e",
)
HOSTILE = "Pwned " + " then ".join(INJECTIONS) + "\nsecond line"


def test_untrusted_text_cannot_inject_markup() -> None:
    incident = Incident.model_validate(
        incident_data(title=HOSTILE, summary=HOSTILE, services=[HOSTILE[:90]])
    )
    draft = _hand_built(
        model=HOSTILE[:90],
        suggestions=[
            _suggestion("s1", S.SUMMARY, HOSTILE, ["a1"], rationale=HOSTILE, flags=[FLAG]),
            _suggestion("s2", S.CAUSAL_NODE, _node("n1", NodeKind.ROOT_CAUSE, HOSTILE), ["a1"]),
            _suggestion(
                "s3",
                S.ACTION_ITEM,
                ActionItem(text=HOSTILE + " | x", kind=ActionKind.DETECT, owner=HOSTILE[:90]),
            ),
        ],
        notes=[DraftNote(kind=NoteKind.SUSPICIOUS_INPUT, message=HOSTILE)],
    )
    out = render_draft(draft, incident)

    for raw in (*INJECTIONS, "<script", "](", "![", "<", "\u202e", "javascript:alert(1)"):
        assert raw not in out, raw
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in out
    assert "!\\[x\\]\\(https://evil.example/a.png\\)" in out
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\)" in out
    assert "&lt;" in out.splitlines()[0]  # the title too
    # Line breaks are folded: every hostile text stays on the line it started on.
    assert not any(line.startswith("second line") for line in out.splitlines())
    summary = next(line for line in out.splitlines() if line.startswith("- **s1**"))
    assert summary.endswith("then \\[click\\]\\(javascript:alert\\(1\\)\\) then second line")
    row = next(line for line in out.splitlines() if line.startswith("| should | detect |"))
    assert row.count(" | ") == 4  # the pipe in the action text is escaped, not a new cell


def _unescaped(out: str, char: str) -> bool:
    """True when `char` occurs without an odd run of backslashes before it."""
    return any(
        (len(out[:i]) - len(out[:i].rstrip("\\"))) % 2 == 0 for i, c in enumerate(out) if c == char
    )


@given(st.text())
def test_inline_text_is_one_inert_line(text: str) -> None:
    out = inline(text)
    assert not re.search("[<>\n\r\u2028\u2029\x85\x1b\u202a-\u202e\u2066-\u2069\u200e\u200f]", out)
    assert not any(_unescaped(out, c) for c in "[]()`*")
    assert not re.search("&(?!amp;|lt;|gt;)", out)
    assert inline(text) == out
