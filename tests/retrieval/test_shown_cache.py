"""The redacted forms hits show, kept per process (`retrieval.hits.ShownCache`): within a
number of entries and of characters, a newer revision never answered from an older one's form,
and a search redacts a postmortem once while its form is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from rca.config import Settings
from rca.domain import Postmortem
from rca.formats.importer import import_paths
from rca.redaction import Redactor
from rca.store import Store
from rca.testing import FakeEmbedder
from retrieval import hits
from retrieval.hits import Shown, ShownCache
from retrieval.service import open_retrieval

EXAMPLES = Path(__file__).parents[2] / "examples"


def _shown(ident: str, revision: int = 1, summary: str = "x" * 100) -> Shown:
    pm = Postmortem(id=ident, title=f"outage {ident}", summary=summary)
    return Shown.of(pm, revision, Redactor())


def test_forms_are_dropped_least_recently_used_first_by_count_and_by_characters() -> None:
    by_count = ShownCache(entries=2, chars=10_000)
    for ident in ("a", "b"):
        by_count.put(_shown(ident))
    assert by_count.get("a", 1) is not None  # a is now the most recent
    by_count.put(_shown("c"))
    assert (by_count.get("b", 1), len(by_count)) == (None, 2)
    assert by_count.get("a", 1) is not None and by_count.get("c", 1) is not None

    one = _shown("a").size
    by_chars = ShownCache(entries=100, chars=one * 2 + one // 2)
    for ident in ("a", "b", "c"):
        by_chars.put(_shown(ident))
    assert by_chars.get("a", 1) is None and len(by_chars) == 2
    by_chars.put(_shown("b", summary="y" * 10 * one))  # alone over the budget: nothing kept
    assert len(by_chars) == 0 and by_chars.get("b", 1) is None


def test_a_form_of_another_revision_is_not_answered_and_is_replaced() -> None:
    cache = ShownCache(entries=10, chars=10_000)
    cache.put(_shown("a", revision=1))
    assert cache.get("a", 2) is None
    cache.put(_shown("a", revision=2, summary="z" * 50))
    assert cache.get("a", 1) is None and len(cache) == 1
    found = cache.get("a", 2)
    assert found is not None and found.sections["summary"] == "z" * 50


def test_the_form_is_redacted_and_holds_only_what_hits_show() -> None:
    pm = Postmortem(
        id="pm-x",
        title="password=hunter2hunter2 leaked for alice@example.com",
        summary="the key AKIAABCDEFGHIJKLMNOP was pasted in a ticket",
        services=["billing"],
    )
    shown = Shown.of(pm, 3, Redactor())
    text = " ".join([shown.title, *shown.sections.values()])
    assert "hunter2" not in text and "alice@example.com" not in text and "AKIA" not in text
    assert (shown.postmortem_id, shown.revision, shown.services) == ("pm-x", 3, ("billing",))


def test_a_search_redacts_each_postmortem_once_while_its_form_is_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(settings)
    assert import_paths(store, [EXAMPLES / "postmortems"], 5 << 20).ok
    chosen = settings.model_copy(
        update={"retrieval": settings.retrieval.model_copy(update={"result_cache": 0})}
    )
    retrieval = open_retrieval(chosen, store, FakeEmbedder())
    retrieval.indexer.sync()
    redacted: list[str] = []
    real = hits.redact_postmortem

    def counting(pm: Postmortem, *args: object) -> Postmortem:
        redacted.append(pm.id)
        return real(pm, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(hits, "redact_postmortem", counting)
    first = retrieval.search.search("database connection pool exhausted", k=3)
    assert len(redacted) == len(first.hits) == 3
    again = retrieval.search.search("database connection pool exhausted", k=3)
    assert again.hits == first.hits and len(redacted) == 3  # no result kept, the forms are
    retrieval.close()
    store.close()
