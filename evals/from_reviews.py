"""`rca eval from-reviews`: learn from reviewers — finalized drafts become eval cases.

For every finalized draft in the store it writes an eval case (the incident, and the
postmortem the reviewers finalized as `reviewed`) and the draft *as the model wrote it*
(edited suggestions restored to their original content from the review log), so the harness
can score what the model wrote against what people kept. It also reports, per section, how
many suggestions were accepted as they were, edited (with how much was changed) or rejected.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select

from rca.domain import Draft, ReviewStatus, Suggestion, SuggestionContent
from rca.domain.values import AS_STORED
from rca.store import Store
from rca.store.engine import drafts, read_transaction, reviews

_CONTENT: TypeAdapter[SuggestionContent] = TypeAdapter(SuggestionContent)


@dataclass
class SectionStats:
    """Review outcomes of one section's suggestions."""

    accepted: int = 0
    edited: int = 0
    rejected: int = 0
    pending: int = 0
    edit_distances: list[float] = field(default_factory=list)

    @property
    def mean_edit_distance(self) -> float | None:
        """Mean normalised edit distance of the edits (0 same text, 1 all new)."""
        if not self.edit_distances:
            return None
        return sum(self.edit_distances) / len(self.edit_distances)


def edit_distance(before: str, after: str) -> float:
    """1 - difflib's similarity ratio of the two texts: 0 when equal, 1 when nothing is kept."""
    return round(1.0 - difflib.SequenceMatcher(None, before, after, autojunk=False).ratio(), 4)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return str(content.get("text", "")) if isinstance(content, dict) else ""


@dataclass
class FromReviews:
    """What `from_reviews` wrote and counted."""

    cases: list[Path] = field(default_factory=list)
    stats: dict[str, SectionStats] = field(default_factory=lambda: defaultdict(SectionStats))


def from_reviews(store: Store, out: Path) -> FromReviews:
    """Write `out/cases/<draft>.json` and `out/drafts/<draft>.json` for every finalized draft."""
    result = FromReviews()
    (out / "cases").mkdir(parents=True, exist_ok=True)
    (out / "drafts").mkdir(parents=True, exist_ok=True)
    with read_transaction(store.engine) as conn:
        rows = conn.execute(
            select(drafts)
            .where(drafts.c.finalized_postmortem_id.is_not(None))
            .order_by(drafts.c.id)
        ).all()
        originals: dict[tuple[str, str], str] = {}
        for review in conn.execute(select(reviews).order_by(reviews.c.id)).all():
            originals.setdefault((review.draft_id, review.suggestion_id), review.original)
    for row in rows:
        draft = Draft.model_validate_json(row.document, context=AS_STORED)
        incident = store.get_incident(row.incident_id)
        final = store.get_postmortem(row.finalized_postmortem_id).postmortem
        restored: list[Suggestion] = []
        for suggestion in draft.suggestions:
            stats = result.stats[suggestion.section.value]
            original = originals.get((draft.id, suggestion.id))
            content = suggestion.content
            if suggestion.status is ReviewStatus.EDITED and original is not None:
                raw = json.loads(original)
                stats.edit_distances.append(edit_distance(_text(raw), _text(_dump(content))))
                content = _CONTENT.validate_python(raw)
            match suggestion.status:
                case ReviewStatus.ACCEPTED:
                    stats.accepted += 1
                case ReviewStatus.EDITED:
                    stats.edited += 1
                case ReviewStatus.REJECTED:
                    stats.rejected += 1
                case ReviewStatus.PENDING:
                    stats.pending += 1
            restored.append(
                suggestion.model_copy(update={"content": content, "status": ReviewStatus.PENDING})
            )
        as_written = draft.model_copy(update={"suggestions": restored, "version": 1})
        case = {
            "id": draft.id,
            "incident": incident.model_dump(mode="json", exclude_none=True),
            "reviewed": final.model_dump(mode="json", exclude_none=True),
        }
        path = out / "cases" / f"{draft.id}.json"
        path.write_text(json.dumps(case, indent=2) + "\n", encoding="utf-8")
        (out / "drafts" / f"{draft.id}.json").write_text(
            as_written.model_dump_json(indent=2), encoding="utf-8"
        )
        result.cases.append(path)
    return result


def _dump(content: SuggestionContent) -> Any:
    return content if isinstance(content, str) else content.model_dump(mode="json")


def format_stats(stats: dict[str, SectionStats]) -> str:
    """A Markdown table of review outcomes per section."""
    lines = [
        "| section | accepted | edited | rejected | pending | mean edit distance |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for section in sorted(stats):
        s = stats[section]
        distance = "-" if s.mean_edit_distance is None else f"{s.mean_edit_distance:.2f}"
        lines.append(
            f"| {section} | {s.accepted} | {s.edited} | {s.rejected} | {s.pending} | {distance} |"
        )
    return "\n".join(lines) + "\n"
