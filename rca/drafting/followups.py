"""Follow-up awareness: open action items of similar past incidents that bear on this one.

An open (or in-progress) action item of a retrieved postmortem is reported when it is close to
one of the drafted causes (trigger, root causes, contributing factors): by embedding cosine when
an embedder is at hand, otherwise by shared content words. Reported means: the draft names the
postmortem and the action, and a lesson suggestion says it was still open.
"""

from __future__ import annotations

from collections.abc import Sequence

from rca.domain import ActionStatus, FollowUp, Postmortem, Suggestion, SuggestionSection
from rca.drafting.validation import terms
from rca.ports import Embedder

COSINE_THRESHOLD = 0.5
"""Cosine (MiniLM) above which an action is taken to bear on a cause."""
OVERLAP_THRESHOLD = 0.4
"""Share of the action's content words found in a cause, without an embedder."""

_CAUSES = (
    SuggestionSection.TRIGGER,
    SuggestionSection.ROOT_CAUSE,
    SuggestionSection.CONTRIBUTING_FACTOR,
)


def _text(suggestion: Suggestion) -> str:
    content = suggestion.content
    return content if isinstance(content, str) else getattr(content, "text", "")


def find_follow_ups(
    similar: Sequence[Postmortem],
    suggestions: Sequence[Suggestion],
    embedder: Embedder | None = None,
    limit: int = 5,
) -> list[FollowUp]:
    """Open actions of `similar` related to the causes among `suggestions`, closest first."""
    causes = [s for s in suggestions if s.section in _CAUSES]
    open_items = [
        (pm, item)
        for pm in similar
        for item in pm.action_items
        if item.status in (ActionStatus.OPEN, ActionStatus.IN_PROGRESS)
    ]
    if not causes or not open_items:
        return []
    scores = _similarities(
        [item.text for _, item in open_items], [_text(c) for c in causes], embedder
    )
    threshold = COSINE_THRESHOLD if embedder is not None else OVERLAP_THRESHOLD
    found: list[FollowUp] = []
    for (pm, item), row in zip(open_items, scores, strict=True):
        related = [c.id for c, score in zip(causes, row, strict=True) if score >= threshold]
        if related:
            found.append(
                FollowUp(
                    postmortem_id=pm.id,
                    postmortem_title=pm.title,
                    action=item,
                    related_suggestion_ids=related,
                    similarity=round(max(row), 3),
                )
            )
    found.sort(key=lambda f: (-f.similarity, f.postmortem_id, f.action.text))
    return found[:limit]


def _similarities(
    actions: list[str], causes: list[str], embedder: Embedder | None
) -> list[list[float]]:
    if embedder is not None:
        # "query": the faster (int8) encoder path; MiniLM embeds both sides alike.
        vectors = embedder.embed([*actions, *causes], "query")
        left, right = vectors[: len(actions)], vectors[len(actions) :]
        return [[sum(a * b for a, b in zip(u, v, strict=True)) for v in right] for u in left]
    cause_terms = [terms(c) for c in causes]
    rows: list[list[float]] = []
    for action in actions:
        wanted = terms(action)
        rows.append([len(wanted & have) / len(wanted) if wanted else 0.0 for have in cause_terms])
    return rows
