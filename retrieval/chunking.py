"""Postmortems cut into section chunks, with the metadata search filters on.

Chunk ids are deterministic (`<postmortem id>#<section>#<n>`), so indexing the same revision
twice writes the same rows: a replay is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass

from rca.domain import Postmortem

SECTIONS = (
    "summary",
    "root_causes",
    "causal_chain",
    "contributing_factors",
    "timeline",
    "action_items",
)

Metadata = dict[str, str | int | float | bool | list[str]]


@dataclass(frozen=True)
class Chunk:
    """One piece of a postmortem to embed and search."""

    id: str
    postmortem_id: str
    revision: int
    section: str
    text: str
    metadata: Metadata


def split_chunk_id(chunk_id: str) -> tuple[str, str]:
    """(postmortem id, section) of a chunk id; postmortem ids never contain `#`."""
    postmortem_id, section, _n = chunk_id.rsplit("#", 2)
    return postmortem_id, section


def section_texts(pm: Postmortem) -> dict[str, str]:
    """The text of each section, empty sections left out."""
    summary = [pm.summary, pm.impact or "", pm.detection or "", pm.resolution or ""]
    causes = [f"Trigger: {pm.trigger}" if pm.trigger else "", *pm.root_causes]
    texts = {
        "summary": "\n".join(part for part in summary if part),
        "root_causes": "\n".join(part for part in causes if part),
        "causal_chain": "\n".join(
            f"{node.kind.value.replace('_', ' ')}: {node.text}" for node in pm.causal_chain
        ),
        "contributing_factors": "\n".join(
            f"{f.category.value}: {f.text}" for f in pm.contributing_factors
        ),
        "timeline": "\n".join(entry.text for entry in pm.timeline),
        "action_items": "\n".join(f"{item.kind.value}: {item.text}" for item in pm.action_items),
    }
    return {name: text for name, text in texts.items() if text.strip()}


def full_text(pm: Postmortem) -> str:
    """Everything searchable in a postmortem, for lexical search."""
    parts = [pm.title, " ".join(pm.services), " ".join(pm.tags), *section_texts(pm).values()]
    return "\n".join(part for part in parts if part)


def split_words(text: str, max_words: int, overlap: int) -> list[str]:
    """Windows of at most `max_words` words, consecutive windows sharing `overlap` words."""
    words = text.split()
    if len(words) <= max_words:
        return [" ".join(words)] if words else []
    step = max(1, max_words - overlap)
    windows = []
    for start in range(0, len(words), step):
        windows.append(" ".join(words[start : start + max_words]))
        if start + max_words >= len(words):
            break
    return windows


def metadata_for(pm: Postmortem, revision: int, section: str) -> Metadata:
    """Chunk metadata: identity plus the fields search filters on."""
    meta: Metadata = {"postmortem_id": pm.id, "revision": revision, "section": section}
    if pm.severity is not None:
        meta["severity"] = pm.severity.value
    if pm.date is not None:
        meta["date"] = pm.date.year * 10_000 + pm.date.month * 100 + pm.date.day
    if pm.services:
        meta["services"] = list(pm.services)
    if pm.tags:
        meta["tags"] = list(pm.tags)
    return meta


def chunk_postmortem(pm: Postmortem, revision: int, max_words: int = 180) -> list[Chunk]:
    """Section chunks of one postmortem revision; long sections are split with overlap."""
    chunks = []
    overlap = max_words // 6
    for section, text in section_texts(pm).items():
        for n, window in enumerate(split_words(text, max_words, overlap)):
            chunks.append(
                Chunk(
                    id=f"{pm.id}#{section}#{n}",
                    postmortem_id=pm.id,
                    revision=revision,
                    section=section,
                    text=window,
                    metadata=metadata_for(pm, revision, section),
                )
            )
    return chunks


def embedding_text(pm_title: str, chunk: Chunk) -> str:
    """What the embedder reads for a chunk: the title gives each section its context."""
    return f"{pm_title}. {chunk.section.replace('_', ' ')}: {chunk.text}"
