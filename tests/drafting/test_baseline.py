"""The retrieval-only baseline drafter on an example incident."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rca.domain import ActionStatus, Draft, Incident, Postmortem, SuggestionSection
from rca.drafting.baseline import baseline_draft
from rca.drafting.blameless import check_blameless
from rca.drafting.findings import find
from rca.formats.importer import load_file

EXAMPLES = Path(__file__).parents[2] / "examples"
NOW = datetime(2026, 1, 21, 9, 0, tzinfo=UTC)


def _load(path: Path) -> Incident | Postmortem:
    [doc] = load_file(path, 5 << 20)
    assert isinstance(doc, Incident | Postmortem)
    return doc


def test_baseline_draft_from_the_incident_and_its_nearest_postmortem() -> None:
    incident = _load(EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json")
    past = _load(EXAMPLES / "postmortems" / "pm-2022-11-black-friday-capacity.md")
    assert isinstance(incident, Incident) and isinstance(past, Postmortem)
    draft = baseline_draft(incident, find(incident), [past], "draft-1", NOW)
    assert isinstance(draft, Draft) and draft.model == "baseline"
    assert draft.similar_postmortem_ids == [past.id]
    by_section: dict[SuggestionSection, list[object]] = {}
    for s in draft.suggestions:
        by_section.setdefault(s.section, []).append(s)
    summary = by_section[SuggestionSection.SUMMARY][0]
    assert "Time to detect: 7 min" in summary.content  # type: ignore[attr-defined]
    assert "time to resolve: 1 h 6 min" in summary.content  # type: ignore[attr-defined]
    [trigger] = by_section[SuggestionSection.TRIGGER]
    assert trigger.evidence_ids == ["t2"]  # type: ignore[attr-defined]
    # Every cited id exists in the incident or is the borrowed postmortem.
    allowed = incident.evidence_ids() | {past.id}
    for s in draft.suggestions:
        assert set(s.evidence_ids) <= allowed, s.id
    borrowed = [s for s in draft.suggestions if s.evidence_ids == [past.id]]
    assert borrowed and all(s.confidence <= 0.2 for s in borrowed)
    actions = by_section[SuggestionSection.ACTION_ITEM]
    assert len(actions) == len(past.action_items)
    assert all(a.content.status == ActionStatus.OPEN for a in actions)  # type: ignore[attr-defined]
    nodes = [s.content for s in by_section[SuggestionSection.CAUSAL_NODE]]
    assert nodes == list(past.causal_chain)
    assert all(not check_blameless(str(s.content)) for s in draft.suggestions)


def test_baseline_without_history_still_drafts_the_facts() -> None:
    incident = _load(EXAMPLES / "incidents" / "inc-2026-01-checkout-db-pool.json")
    assert isinstance(incident, Incident)
    draft = baseline_draft(incident, find(incident), [], "draft-2", NOW)
    sections = {s.section for s in draft.suggestions}
    assert SuggestionSection.ROOT_CAUSE not in sections
    assert {
        SuggestionSection.SUMMARY,
        SuggestionSection.TRIGGER,
        SuggestionSection.TIMELINE,
    } <= sections
