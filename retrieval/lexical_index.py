"""BM25 over whole postmortems in a tantivy index: on disk (shared by a machine's processes) or
in memory.

What is indexed is our own analysis (`retrieval.lexical.terms`: lowercased, stop words removed,
stemmed), joined by spaces and split again by tantivy's whitespace tokenizer, so ranking is the
same BM25 (k1 1.2, b 0.75, Lucene's idf) over the same terms as before. Each document also holds
its filter fields (services, severity, incident day, tags), its revision and its section names,
so filters run inside the query and dense hits can be checked against the latest revision
without loading the postmortem. Queries are built from terms, never parsed: user text is never
tantivy query syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tantivy

from rca.domain import Postmortem
from rca.domain.similar import SearchFilters
from retrieval.chunking import full_text, section_texts
from retrieval.lexical import terms

MAX_TERM_CHARS = 200
"""Longer terms (a pasted blob with no spaces) are left out of documents and queries: they
cannot usefully match, and tantivy refuses terms past 65,530 bytes."""
WRITER_HEAP_BYTES = 32_000_000
"""The writer's indexing buffer (tantivy's minimum per thread is 15 MB); one thread."""

_Occur = tantivy.Occur


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("revision", stored=True)
    builder.add_text_field("body", tokenizer_name="whitespace", index_option="freq")
    for name in ("service", "severity", "tag"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("day", indexed=True, fast=True)
    builder.add_text_field("section", stored=True, tokenizer_name="raw", index_option="basic")
    return builder.build()


SCHEMA = _schema()
SCHEMA_VERSION = "v1"
"""Changed with the schema or the analysis: indexes of another version live in another
directory (`data_dir/lexical/<version>`), so a new version rebuilds instead of misreading."""


def index_terms(text: str) -> list[str]:
    """`terms(text)` without the over-long ones, as documents and queries are indexed."""
    return [t for t in terms(text) if len(t) <= MAX_TERM_CHARS]


def document(pm: Postmortem, revision: int) -> tantivy.Document:
    """A postmortem's latest revision as the index stores it."""
    doc = tantivy.Document()
    doc.add_text("id", pm.id)
    doc.add_integer("revision", revision)
    doc.add_text("body", " ".join(index_terms(full_text(pm))))
    for service in pm.services:
        doc.add_text("service", service)
    if pm.severity is not None:
        doc.add_text("severity", pm.severity.value)
    for tag in pm.tags:
        doc.add_text("tag", tag)
    if pm.date is not None:
        doc.add_integer("day", pm.date.toordinal())
    for section in section_texts(pm):
        doc.add_text("section", section)
    return doc


def _any_of(field: str, values: Iterable[str]) -> tantivy.Query:
    return tantivy.Query.boolean_query(
        [(_Occur.Should, tantivy.Query.term_query(SCHEMA, field, v)) for v in values]
    )


def filter_query(filters: SearchFilters) -> tantivy.Query | None:
    """The filters as a query that matches and scores nothing of its own (None: no filter).

    Services and severities: any of them; tags: all of them; the date range: inclusive, and a
    postmortem without a date fails it (as `passes` did)."""
    clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
    if filters.services:
        clauses.append((_Occur.Must, _any_of("service", filters.services)))
    if filters.severities:
        clauses.append((_Occur.Must, _any_of("severity", [s.value for s in filters.severities])))
    for tag in filters.tags:
        clauses.append((_Occur.Must, tantivy.Query.term_query(SCHEMA, "tag", tag)))
    if filters.date_from or filters.date_to:
        clauses.append(
            (
                _Occur.Must,
                tantivy.Query.range_query(
                    SCHEMA,
                    "day",
                    tantivy.FieldType.Integer,
                    filters.date_from.toordinal() if filters.date_from else -(2**62),
                    filters.date_to.toordinal() if filters.date_to else 2**62,
                ),
            )
        )
    if not clauses:
        return None
    return tantivy.Query.const_score_query(tantivy.Query.boolean_query(clauses), 0.0)


@dataclass(frozen=True)
class IndexedDoc:
    """What the index holds about one postmortem besides its terms."""

    revision: int
    sections: frozenset[str]


@dataclass(frozen=True)
class LexicalHit:
    """One postmortem found by BM25, with the revision that was scored."""

    postmortem_id: str
    score: float
    revision: int


class _View:
    """One searcher (a commit as it was when opened) and what was read of its stored fields:
    a document's stored fields never change within a searcher, so each is read once."""

    def __init__(self, searcher: tantivy.Searcher) -> None:
        self.searcher = searcher
        self.docs: dict[str, IndexedDoc] = {}
        self.hits: dict[tuple[int, int], tuple[str, int]] = {}

    def hit(self, address: tantivy.DocAddress) -> tuple[str, int]:
        """The id and revision stored at `address`."""
        key = (address.segment_ord, address.doc)
        found = self.hits.get(key)
        if found is None:
            stored = self.searcher.doc(address)
            found = self.hits[key] = (str(stored["id"][0]), int(stored["revision"][0]))
        return found


class LexicalIndex:
    """A tantivy index of postmortems: in memory (`path=None`) or in a directory.

    Any number of processes may read a directory; one writes at a time (tantivy's own lock
    refuses a second writer). Readers see a commit after `reload()`. What searches read of
    the stored fields is kept until the next reload (at most a few small values per document).
    """

    def __init__(self, path: Path | None = None) -> None:
        """Open the index in `path`, creating it if the directory is empty or missing; raises
        ValueError when the directory holds something tantivy cannot open."""
        self.path = path
        if path is None:
            self._index = tantivy.Index(SCHEMA)
        else:
            path.mkdir(parents=True, exist_ok=True)
            if tantivy.Index.exists(str(path)):
                self._index = tantivy.Index.open(str(path))
            else:
                self._index = tantivy.Index(SCHEMA, path=str(path), reuse=False)
        self._index.config_reader("manual")
        self._view = _View(self._index.searcher())

    def reload(self) -> None:
        """See the latest commit (of any process)."""
        self._index.reload()
        self._view = _View(self._index.searcher())

    def __len__(self) -> int:
        return int(self._view.searcher.num_docs)

    def write(
        self, postmortems: Iterable[tuple[Postmortem, int]], deleted: Sequence[str] = ()
    ) -> int:
        """Replace these postmortems' documents and delete those of `deleted`, in one commit
        (readers see all of it or none); raises ValueError while another writer holds the
        directory. Returns how many documents were written."""
        writer = self._index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
        written = 0
        try:
            for ident in deleted:
                writer.delete_documents_by_term("id", ident)
            for pm, revision in postmortems:
                writer.delete_documents_by_term("id", pm.id)
                writer.add_document(document(pm, revision))
                written += 1
            writer.commit()
        except BaseException:
            writer.rollback()
            raise
        finally:
            writer.wait_merging_threads()  # releases the directory's writer lock
        self.reload()
        return written

    def revisions(self) -> dict[str, int]:
        """Every indexed postmortem id with the revision indexed."""
        searcher = self._view.searcher
        found: dict[str, int] = {}
        if not searcher.num_docs:
            return found
        hits = searcher.search(tantivy.Query.all_query(), limit=searcher.num_docs, count=False)
        for _score, address in hits.hits:
            stored = searcher.doc(address)
            found[str(stored["id"][0])] = int(stored["revision"][0])
        return found

    def lookup(self, ids: Iterable[str]) -> dict[str, IndexedDoc]:
        """The indexed revision and section names of these postmortems (absent ones left out)."""
        view = self._view
        known = view.docs
        asked = set(ids)
        found = {i: known[i] for i in asked if i in known}
        wanted = sorted(asked - found.keys())
        if not wanted:
            return found
        searcher = view.searcher
        query = tantivy.Query.term_set_query(SCHEMA, "id", wanted)
        for _score, address in searcher.search(query, limit=len(wanted), count=False).hits:
            stored = searcher.doc(address)
            ident = str(stored["id"][0])
            found[ident] = known[ident] = IndexedDoc(
                int(stored["revision"][0]), frozenset(str(s) for s in stored.get_all("section"))
            )
        return found

    def search(
        self, query_terms: Sequence[str], k: int, filters: SearchFilters | None = None
    ) -> list[LexicalHit]:
        """The `k` best documents for these (already analysed) terms with a positive score,
        best first, ties by id. A term given twice counts twice, as in the query."""
        wanted = [t for t in query_terms if len(t) <= MAX_TERM_CHARS]
        view = self._view
        searcher = view.searcher
        if not wanted or k <= 0 or not searcher.num_docs:
            return []
        text = tantivy.Query.boolean_query(
            [(_Occur.Should, tantivy.Query.term_query(SCHEMA, "body", t)) for t in wanted]
        )
        narrowed = filter_query(filters) if filters is not None else None
        query = text
        if narrowed is not None:
            query = tantivy.Query.boolean_query([(_Occur.Must, text), (_Occur.Must, narrowed)])
        hits = searcher.search(query, limit=min(k, searcher.num_docs), count=False).hits
        ranked = []
        for score, address in hits:
            ident, revision = view.hit(address)
            ranked.append(LexicalHit(ident, float(score), revision))
        ranked.sort(key=lambda hit: (-hit.score, hit.postmortem_id))
        return [hit for hit in ranked if hit.score > 0.0]
