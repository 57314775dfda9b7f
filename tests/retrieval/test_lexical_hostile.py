"""The lexical index under hostile text (huge documents, control characters, tantivy query
syntax in queries and filters) and `rca index check|rebuild|sync` covering it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rca.config import Settings
from rca.domain import Postmortem
from rca.domain.similar import SearchFilters
from rca.errors import InvalidQuery
from rca.store import Store
from retrieval.lexical_index import MAX_TERM_CHARS, SCHEMA_VERSION
from retrieval.search import SimilarSearch
from tests.factories import postmortem_data
from tests.support import run

EXAMPLES = Path(__file__).parents[2] / "examples"


def make_pm(ident: str, summary: str, **changes: object) -> Postmortem:
    return Postmortem.model_validate(
        postmortem_data(id=ident, incident_id=None, summary=summary, **changes)
    )


@pytest.fixture
def search(tmp_path: Path) -> Iterator[SimilarSearch]:
    settings = Settings(data_dir=tmp_path / "data")
    store = Store.open(settings)
    yield SimilarSearch(store, None, None, settings)
    store.close()


def lexical_ids(search: SimilarSearch, text: str, **filters: object) -> list[str]:
    found = search.search(text, k=20, mode="lexical", filters=SearchFilters(**filters))
    return [hit.postmortem_id for hit in found.hits]


def test_huge_documents_and_control_characters_are_indexed(search: SimilarSearch) -> None:
    blob = "x" * 90_000  # one "word" past tantivy's term limit (65,530 bytes)
    causes = [" ".join(f"word{n}" for n in range(k, k + 380)) for k in range(0, 38_000, 380)]
    search.store.save(
        [
            make_pm(
                "pm-huge",
                f"Zebra stampede. {blob} giraffe",
                root_causes=causes,  # as many and as long as a postmortem may have
            ),
            make_pm("pm-ctrl", "Zebra\x00 stam\x1bpede \u202e\ufeff okapi\x07 \r\n\t sighted."),
        ],
        "t",
    )
    assert lexical_ids(search, "giraffe") == ["pm-huge"]
    assert lexical_ids(search, "okapi\x00") == ["pm-ctrl"]
    assert lexical_ids(search, "word37999") == ["pm-huge"]
    assert lexical_ids(search, blob + " word") == []  # the blob matches nothing
    assert lexical_ids(search, "y" * (MAX_TERM_CHARS + 1)) == []


@pytest.mark.parametrize(
    "query",
    [
        'title:zebra AND (stampede OR "okapi") -giraffe +x* ~2 ^3',
        "zebra\\ [a TO z] {b TO c} body:* id:pm-a",
        'zebra OR OR AND NOT ((( ))) ::: "unterminated',
        "zebra /regex.*/ field:>5 service:api",
    ],
)
def test_query_syntax_is_just_text(search: SimilarSearch, query: str) -> None:
    search.store.save(
        [make_pm("pm-a", "Zebra sighted near the api.", services=["api"], tags=["x:y"])], "t"
    )
    assert lexical_ids(search, query) == ["pm-a"]


def test_hostile_filter_values_are_terms_not_syntax(search: SimilarSearch) -> None:
    search.store.save(
        [
            make_pm("pm-a", "Zebra.", services=["api OR *"], tags=['x:y "z"']),
            make_pm("pm-b", "Zebra.", services=["api"], tags=["dns"]),
        ],
        "t",
    )
    assert lexical_ids(search, "zebra", services=["api OR *"]) == ["pm-a"]
    assert lexical_ids(search, "zebra", services=["*"]) == []
    assert lexical_ids(search, "zebra", tags=['x:y "z"']) == ["pm-a"]
    assert lexical_ids(search, "zebra", services=["api"], tags=["dns"]) == ["pm-b"]


def test_a_query_without_words_is_refused(search: SimilarSearch) -> None:
    with pytest.raises(InvalidQuery):
        search.search("AND OR ((( ))) :: * ~ ^", mode="lexical")


@pytest.fixture
def _fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RCA_RETRIEVAL__EMBEDDER", "fake")


@pytest.mark.usefixtures("_fake_embedder")
def test_index_commands_cover_the_lexical_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    code, out, err = run(data, "import", str(EXAMPLES / "postmortems"), capsys=capsys)
    assert code == 0, err
    root = data / "lexical" / SCHEMA_VERSION
    assert (root / "current").exists()  # the import left it searchable

    code, out, _ = run(data, "index", "check", capsys=capsys)
    assert code == 0 and "lexical index in sync" in out

    generation = (root / "current").read_text()
    (root / f"{generation}.synced").unlink()  # drift: the index lost its newest documents
    store = Store.open(Settings(data_dir=data))
    try:
        search = SimilarSearch(store, None, None, Settings(data_dir=data))
        index = search.lexical.current()
        ids = sorted(index.revisions())
        index.write([], deleted=ids[:2])
    finally:
        store.close()
    code, out, _ = run(data, "index", "check", "--no-repair", capsys=capsys)
    assert code == 1 and f"missing: 2 postmortems ({ids[0]}, {ids[1]})" in out
    code, out, _ = run(data, "index", "check", capsys=capsys)
    assert code == 0 and "lexical index repaired" in out

    code, out, _ = run(data, "index", "rebuild", capsys=capsys)
    assert code == 0 and "lexical index: 31 postmortems (31 written, 0 removed)" in out
    assert (root / "current").read_text() != generation

    code, out, _ = run(data, "index", "sync", capsys=capsys)
    assert code == 0 and "lexical index: 31 postmortems (0 written, 0 removed)" in out
