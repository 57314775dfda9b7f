"""Fakes that ship with the package, for tests and offline demos."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from rca.ports import InputType

_WORD = re.compile(r"\w\w+", re.UNICODE)


class FakeEmbedder:
    """A deterministic bag-of-words embedder: texts sharing words get similar vectors.

    Each lowercased word is hashed to a few signed buckets; the sum is normalised. Good enough
    for tests to check ranking behaviour without loading a model.
    """

    def __init__(self, dimension: int = 64, model_id: str = "fake-bow") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls: list[tuple[int, InputType]] = []

    @property
    def model_id(self) -> str:
        """The fake model's id."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Vector length."""
        return self._dimension

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        """Normalised hashed bag-of-words vectors."""
        self.calls.append((len(texts), input_type))
        return [self._vector(text) for text in texts]

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * self._dimension
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            for i in range(2):
                bucket = int.from_bytes(digest[i * 3 : i * 3 + 3], "big") % self._dimension
                vector[bucket] += 1.0 if digest[6 + i] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vector))
        if norm == 0.0:
            vector[0] = 1.0
            return vector
        return [v / norm for v in vector]
