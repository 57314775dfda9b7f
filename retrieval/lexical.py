"""Lexical search: BM25 (bm25s) over whole postmortems, English stemming and stop words."""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import numpy as np
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


class LexicalIndex:
    """BM25 over a fixed set of documents; rebuilt (cheaply) when the documents change."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], k1: float = 1.2, b: float = 0.75):
        self.ids = list(ids)
        self._position = {ident: i for i, ident in enumerate(self.ids)}
        corpus_terms = [terms(text) for text in texts]
        self._vocab: set[str] = {t for doc in corpus_terms for t in doc}
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if self.ids and self._vocab:
            self._bm25.index(corpus_terms, show_progress=False)
        self._empty = not self.ids or not self._vocab

    def __len__(self) -> int:
        return len(self.ids)

    def search(
        self, query: str, k: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """The `k` best documents with a positive score, best first."""
        query_terms = [t for t in terms(query) if t in self._vocab]
        if self._empty or not query_terms:
            return []
        scores = np.asarray(self._bm25.get_scores(query_terms), dtype=np.float64)
        if allowed is not None:
            mask = np.zeros(len(self.ids), dtype=bool)
            for ident in allowed:
                position = self._position.get(ident)
                if position is not None:
                    mask[position] = True
            scores = np.where(mask, scores, 0.0)
        k = min(k, len(self.ids))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(self.ids) else np.arange(len(scores))
        ranked = sorted(top.tolist(), key=lambda i: (-scores[i], self.ids[i]))
        return [(self.ids[i], float(scores[i])) for i in ranked if scores[i] > 0.0]
