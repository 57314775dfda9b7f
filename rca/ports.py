"""The small interfaces through which rca's core talks to outside services.

Implementations live at the edge (`retrieval/` for embeddings and the index); fakes for tests
live in `rca.testing`. Vendor types never cross these interfaces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal, Protocol

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
