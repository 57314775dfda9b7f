"""The small interfaces through which rca's core talks to outside services.

Implementations live at the edge (`retrieval/` for embeddings and the index); fakes for tests
live in `rca.testing`. Vendor types never cross these interfaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from rca.domain import Incident, Postmortem

InputType = Literal["query", "document"]
"""Whether a text is a search query or a document to be found (some models embed them apart)."""


class Embedder(Protocol):
    """Turns texts into unit-length vectors. Blocking: call `aembed` from async code."""

    @property
    def model_id(self) -> str:
        """A stable id of the model (its name); part of the vector collection's name."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        ...

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        """One normalised vector per text, in order."""
        ...


async def aembed(
    embedder: Embedder, texts: Sequence[str], input_type: InputType
) -> list[list[float]]:
    """Embed on a worker thread, keeping the event loop free."""
    return await asyncio.to_thread(embedder.embed, list(texts), input_type)


@dataclass(frozen=True)
class Retrieved:
    """Past postmortems found similar to an incident, best first."""

    postmortems: list[Postmortem]
    scores: list[float] = field(default_factory=list)
    """The search's score of each, in order (comparable only within this list)."""
    degraded: bool = False
    """True when search ran without part of the index (or not at all)."""
    notes: list[str] = field(default_factory=list)
    """Why it was degraded, in plain words."""


class History(Protocol):
    """Where drafting finds similar past postmortems."""

    def similar(self, incident: Incident, k: int) -> Retrieved:
        """The `k` past postmortems most similar to `incident`."""
        ...
