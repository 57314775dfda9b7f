"""Counting tokens, for fitting prompts into a model's context: a counter is a function of the
text; hosted models count with tiktoken, the embedded model with its own tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

TokenCount = Callable[[str], int]


@lru_cache(maxsize=4)
def _encoding(name: str) -> object:
    import tiktoken

    return tiktoken.get_encoding(name)


def tiktoken_counter(encoding: str = "cl100k_base") -> TokenCount:
    """A counter for hosted models (their tokenizers are close to cl100k/o200k for budgeting)."""
    enc = _encoding(encoding)

    def count(text: str) -> int:
        return len(enc.encode(text, disallowed_special=()))  # type: ignore[attr-defined]

    return count
