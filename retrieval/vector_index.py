"""The vector index: chromadb, embedded on disk by default or a Chroma server by URL.

We always pass our own embeddings; collections are created without an embedding function, so
chroma never loads (or downloads) a model of its own. One collection per embedding model and
dimension; `rca index rebuild` writes a new generation and switches to it.

One process at a time, on any machine, writes the index: the writer holds a lease in the
database (`rca.store.index_lease`), for an embedded index and a Chroma server alike. A client
whose server went away reconnects by itself (chroma's HTTP client opens a new connection for the
next request), so a sync after a server restart picks up where the failed one stopped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.client import Client
from chromadb.api.models.Collection import Collection
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.api.types import Where
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError, UniqueConstraintError

from rca.config import Settings
from rca.domain.similar import SearchFilters
from rca.errors import ConfigurationError, IndexUnavailable
from rca.store import IndexStateStore
from rca.store.index_lease import IndexLease
from retrieval.chunking import Chunk, Metadata, split_chunk_id


@dataclass(frozen=True)
class VectorHit:
    """One chunk found by dense search: its id says which postmortem and section it is from."""

    chunk_id: str
    similarity: float
    postmortem_id: str = field(init=False, compare=False)
    """The postmortem the chunk belongs to."""
    section: str = field(init=False, compare=False)
    """The section the chunk was cut from."""

    def __post_init__(self) -> None:
        postmortem_id, section = split_chunk_id(self.chunk_id)
        object.__setattr__(self, "postmortem_id", postmortem_id)
        object.__setattr__(self, "section", section)


def collection_base(model_id: str, dimension: int) -> str:
    """`rca-<model>-<dimension>`, in the characters chroma allows."""
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", model_id).strip("-._").lower() or "model"
    return f"rca-{slug[:80]}-{dimension}"


WRITER_LEASE = "vector-index-writer"
"""The name of the index writer's lease."""


def _use_database(client: ClientAPI, database: str) -> None:
    """Point the client at `database` on its server, creating it when missing (two processes
    creating it at once is fine)."""
    admin = chromadb.AdminClient(client.get_settings())  # shares the client's connection
    try:
        admin.get_database(database)
    except NotFoundError:
        try:
            admin.create_database(database)
        except UniqueConstraintError:
            pass
    client.set_database(database)


class ChromaVectorIndex:
    """Dense chunk index for one embedding model."""

    def __init__(
        self, settings: Settings, model_id: str, dimension: int, state: IndexStateStore
    ) -> None:
        self._settings = settings
        self.base = collection_base(model_id, dimension)
        self.dimension = dimension
        self._state = state
        self._client: ClientAPI | None = None
        self._opened: dict[str, Collection] = {}
        """Collections searched, by name: opening one asks chroma's catalogue each time (more
        than the search itself costs). A name is never reused for another collection (each
        rebuild writes a new generation); one that fails is forgotten and opened again."""
        self.directory = settings.data_dir / "chroma"

    # --- connection --------------------------------------------------------------------------

    def _connect(self) -> ClientAPI:
        if self._client is not None:
            return self._client
        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        url = self._settings.retrieval.chroma_url
        database = self._settings.retrieval.chroma_database
        try:
            if url:
                parsed = urlparse(url)
                if parsed.scheme not in ("http", "https") or not parsed.hostname:
                    raise ConfigurationError(f"RCA_RETRIEVAL__CHROMA_URL is not a URL: {url!r}")
                client = chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https",
                    settings=chroma_settings,
                )
                if database:
                    _use_database(client, database)
                self._client = client
            elif database:
                raise ConfigurationError(
                    "RCA_RETRIEVAL__CHROMA_DATABASE names a database on a Chroma server; set"
                    " RCA_RETRIEVAL__CHROMA_URL too (an embedded index is one per data directory)"
                )
            else:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(
                    path=str(self.directory), settings=chroma_settings
                )
        except ConfigurationError:
            raise
        except Exception as err:  # chroma raises many kinds; all mean "unusable"
            # chroma caches one system per path, even a half-opened one; forget it so that a
            # later open (after `rca index rebuild` moved the broken directory) starts afresh.
            # There is no public way to drop a single path's system.
            SharedSystemClient.clear_system_cache()
            raise IndexUnavailable(f"cannot open the vector index: {err}") from err
        return self._client

    @property
    def is_remote(self) -> bool:
        """True when a Chroma server holds the index."""
        return bool(self._settings.retrieval.chroma_url)

    def close(self) -> None:
        """Release the client: chroma stops a path's system when its last client closes."""
        client, self._client = self._client, None
        self._opened.clear()
        if not isinstance(client, Client):  # what Persistent/HttpClient return
            return
        # chroma's HTTP transport keeps httpx sessions (the client's and its admin client's)
        # that client.close() leaves open.
        sessions = [
            getattr(getattr(owner, "_server", None), "_session", None)
            for owner in (client, getattr(client, "_admin_client", None))
        ]
        client.close()
        for session in sessions:
            if session is not None:
                session.close()

    @contextmanager
    def writing(self) -> Iterator[IndexLease]:
        """Hold the index writer's lease in the database while the body writes; a second
        writer anywhere gets IndexLocked at once. The body renews it as it works.

        One lease for every collection: the outbox they are fed from is one queue, so a sync
        or rebuild of one model's collection must not run beside another's either."""
        ttl = timedelta(seconds=self._settings.retrieval.index_lease_s)
        with self._state.lease(WRITER_LEASE, ttl).held() as lease:
            yield lease

    # --- collections -------------------------------------------------------------------------

    @property
    def state_key(self) -> str:
        """The index-state value naming the active collection."""
        return f"active_collection:{self.base}"

    def active_name(self) -> str:
        """The collection searches read."""
        return self.active_from(self._state.get(self.state_key))

    def active_from(self, stored: str | None) -> str:
        """The active collection, given the value of `state_key` (None: never set)."""
        return stored or f"{self.base}-g1"

    def next_name(self) -> str:
        """A fresh generation's name, for a rebuild (g1 when none was ever active)."""
        current = self._state.get(self.state_key)
        generation = int(current.rsplit("-g", 1)[1]) if current else 0
        return f"{self.base}-g{generation + 1}"

    def _collection(self, name: str, create: bool) -> Collection:
        client = self._connect()
        try:
            if create:
                return client.get_or_create_collection(
                    name=name,
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                    metadata={"rca_base": self.base, "dimension": self.dimension},
                )
            opened = self._opened.get(name)
            if opened is None:
                opened = self._opened[name] = client.get_collection(
                    name=name, embedding_function=None
                )
            return opened
        except Exception as err:
            raise IndexUnavailable(f"vector collection {name} is unusable: {err}") from err

    def create(self, name: str) -> None:
        """Create an empty collection (so an empty store still has a usable index)."""
        self._collection(name, create=True)

    def exists(self, name: str | None = None) -> bool:
        """Whether the (active) collection exists."""
        wanted = name or self.active_name()
        try:
            return any(c.name == wanted for c in self._connect().list_collections())
        except (IndexUnavailable, ConfigurationError):
            raise
        except Exception as err:
            raise IndexUnavailable(f"cannot list vector collections: {err}") from err

    def switch_to(self, name: str, lease: IndexLease | None = None) -> None:
        """Make `name` the active collection (only while `lease`, if given, is held) and drop
        older generations of this model."""
        self._state.put(self.state_key, name, lease)
        client = self._connect()
        for collection in client.list_collections():
            if collection.name.startswith(f"{self.base}-g") and collection.name != name:
                self._opened.pop(collection.name, None)
                client.delete_collection(collection.name)

    def drop(self, name: str) -> None:
        """Delete a collection (a failed rebuild's leftovers)."""
        self._opened.pop(name, None)
        try:
            self._connect().delete_collection(name)
        except Exception as err:
            raise IndexUnavailable(f"cannot delete collection {name}: {err}") from err

    # --- writes and reads --------------------------------------------------------------------

    def upsert(
        self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]], name: str | None = None
    ) -> None:
        """Write chunks with their vectors (same ids overwrite: replays are harmless)."""
        if not chunks:
            return
        collection = self._collection(name or self.active_name(), create=True)
        step = 2_000
        try:
            for start in range(0, len(chunks), step):
                part = chunks[start : start + step]
                collection.upsert(
                    ids=[c.id for c in part],
                    embeddings=np.asarray(vectors[start : start + step], dtype=np.float32),
                    documents=[c.text for c in part],
                    metadatas=[_chroma_metadata(c.metadata) for c in part],
                )
        except Exception as err:
            raise IndexUnavailable(f"cannot write the vector index: {err}") from err

    def delete_chunks(self, ids: Sequence[str], name: str | None = None) -> None:
        """Delete chunks by id."""
        if not ids:
            return
        collection = self._collection(name or self.active_name(), create=True)
        try:
            collection.delete(ids=list(ids))
        except Exception as err:
            raise IndexUnavailable(f"cannot delete from the vector index: {err}") from err

    def chunk_revisions(self, name: str | None = None) -> dict[str, tuple[str, int]]:
        """Every chunk id with its postmortem id and revision."""
        collection = self._collection(name or self.active_name(), create=True)
        result: dict[str, tuple[str, int]] = {}
        try:
            total = collection.count()
            for offset in range(0, total, 5_000):
                page = collection.get(include=["metadatas"], limit=5_000, offset=offset)
                for ident, meta in zip(page["ids"], page["metadatas"] or [], strict=True):
                    result[ident] = (str(meta["postmortem_id"]), int(str(meta["revision"])))
        except Exception as err:
            raise IndexUnavailable(f"cannot read the vector index: {err}") from err
        return result

    def chunk_ids_of(self, postmortem_ids: Sequence[str], name: str | None = None) -> list[str]:
        """Ids of the chunks held for some postmortems."""
        if not postmortem_ids:
            return []
        collection = self._collection(name or self.active_name(), create=True)
        try:
            where = cast("Where", {"postmortem_id": {"$in": list(postmortem_ids)}})
            found = collection.get(where=where)
        except Exception as err:
            raise IndexUnavailable(f"cannot read the vector index: {err}") from err
        return list(found["ids"])

    def count(self, name: str | None = None) -> int:
        """Chunks in the (active) collection."""
        name = name or self.active_name()
        try:
            return self._collection(name, create=False).count()
        except (IndexUnavailable, ConfigurationError):
            raise
        except Exception as err:
            self._opened.pop(name, None)
            raise IndexUnavailable(f"cannot count the vector index: {err}") from err

    def query(
        self,
        vector: Sequence[float],
        n: int,
        filters: SearchFilters | None = None,
        name: str | None = None,
    ) -> list[VectorHit]:
        """The `n` nearest chunks (cosine similarity, best first) passing the filter, in the
        collection `name` (default: the active one).

        Only ids and distances are read: fetching hundreds of chunks' metadata and text costs
        ten times the nearest-neighbour search itself, and the ids say everything ranking needs.
        """
        name = name or self.active_name()
        collection = self._collection(name, create=False)
        try:
            found = collection.query(
                query_embeddings=np.asarray([vector], dtype=np.float32),
                n_results=n,
                where=chroma_where(filters) if filters else None,
                include=["distances"],
            )
        except Exception as err:
            self._opened.pop(name, None)
            raise IndexUnavailable(f"cannot search the vector index: {err}") from err
        ids = found["ids"][0]
        distances = (found["distances"] or [[]])[0]
        return [
            VectorHit(ident, 1.0 - float(dist)) for ident, dist in zip(ids, distances, strict=True)
        ]


def chroma_where(filters: SearchFilters) -> Where | None:
    """The filters as a chroma `where` clause."""
    clauses: list[dict[str, object]] = []
    if filters.services:
        clauses.append({"$or": [{"services": {"$contains": s}} for s in filters.services]})
    if filters.severities:
        clauses.append({"severity": {"$in": [s.value for s in filters.severities]}})
    if filters.date_from:
        d = filters.date_from
        clauses.append({"date": {"$gte": d.year * 10_000 + d.month * 100 + d.day}})
    if filters.date_to:
        d = filters.date_to
        clauses.append({"date": {"$lte": d.year * 10_000 + d.month * 100 + d.day}})
    clauses.extend({"tags": {"$contains": tag}} for tag in filters.tags)
    flat: list[dict[str, object]] = []
    for clause in clauses:  # chroma wants at least two operands in an $or
        if "$or" in clause and len(cast(list[object], clause["$or"])) == 1:
            flat.append(cast(list[dict[str, object]], clause["$or"])[0])
        else:
            flat.append(clause)
    if not flat:
        return None
    return cast(Where, flat[0] if len(flat) == 1 else {"$and": flat})


def _chroma_metadata(meta: Metadata) -> dict[str, Any]:
    return {key: value for key, value in meta.items() if value != []}
