"""Action items of similar past postmortems, offered as candidates for this draft.

A past action is offered only when it is about the same failure: the past root cause it comes
from must resemble a drafted one (sharing a failure mode of the remediation library, or most of
its words), and the action must be about that past cause (sharing a word with it), not about
another cause of the same postmortem. It is adapted to this incident (the past services replaced
by this one's) and left out if anything of the past incident remains in it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rca.domain import ActionItem, Postmortem
from rca.drafting.assembly import Claim
from rca.drafting.remedies import Library, detect
from rca.drafting.validation import terms

RESEMBLES = 0.25
"""A past root cause sharing this share of a drafted cause's words, and a failure mode of the
library, resembles it."""
SAME_WORDS = 0.5
"""A past root cause sharing this share of the words resembles it without a shared mode."""


@dataclass(frozen=True)
class Precedent:
    """A past action adapted to this incident, and the drafted cause it addresses."""

    item: ActionItem
    text: str
    source: str
    cause: int


def precedents(
    roots: Sequence[Claim],
    similar: Sequence[Postmortem],
    service: str | None,
    library: Library | None = None,
) -> list[Precedent]:
    """The adapted actions of `similar` postmortems that address the drafted `roots`."""
    past = [  # each past cause's words and failure modes, found once for every drafted cause
        (pm, terms(cause), _modes(cause, library)) for pm in similar for cause in pm.root_causes
    ]
    found: list[Precedent] = []
    for index, root in enumerate(roots):
        mine = terms(root.text)
        if not mine:
            continue
        modes = _modes(root.text, library)
        for pm, theirs, their_modes in past:
            overlap = len(mine & theirs) / len(mine)
            if overlap < SAME_WORDS and not (overlap >= RESEMBLES and modes & their_modes):
                continue
            about = theirs - {w for s in pm.services for w in terms(s)}
            for item in pm.action_items:
                if not terms(item.text) & about:
                    continue
                text = adapted(item.text, pm, service)
                if text is not None:
                    found.append(Precedent(item, text, f"similar past incident {pm.id}", index))
    return found


def _modes(text: str, library: Library | None) -> set[str]:
    """The failure modes a root cause's own words show."""
    return {d.mode.id for d in detect([(text, [])], None, {}, library)}


def adapted(text: str, pm: Postmortem, service: str | None) -> str | None:
    """A past action naming this incident's service instead of the past one's; None if it
    still names the past incident (its id or a service this incident does not have)."""
    result = text
    for past in sorted(pm.services, key=len, reverse=True):
        if service is None:
            if re.search(rf"\b{re.escape(past)}\b", result, re.I):
                return None
            continue
        result = re.sub(rf"\b{re.escape(past)}\b", service, result, flags=re.I)
    if pm.id.lower() in result.lower():
        return None
    return result
