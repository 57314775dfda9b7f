"""Text analysis for lexical search: words lowercased, English stop words (bm25s's list) removed,
stemmed (Snowball). The index (`retrieval.lexical_index`) stores and matches these terms."""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import Stemmer

_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_stemmer = Stemmer.Stemmer("english")
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)


def terms(text: str) -> list[str]:
    """Lowercased, stop words removed, stemmed."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
    stems: list[str] = _stemmer.stemWords(words)
    return stems


def first_match(words: Sequence[str], wanted: set[str]) -> int | None:
    """Index of the first word whose stemmed terms include one of `wanted` (stemmed in one
    batch: stemming word by word costs milliseconds per section)."""
    owners: list[int] = []
    tokens: list[str] = []
    for index, word in enumerate(words):
        for token in _TOKEN.findall(word.lower()):
            if token not in _STOPWORDS:
                owners.append(index)
                tokens.append(token)
    for index, stem in zip(owners, _stemmer.stemWords(tokens), strict=True):
        if stem in wanted:
            return index
    return None
