"""An `Embedder` that asks the embedding service (`rca embedder serve`) over HTTP, so a process
that only searches holds no model: it imports httpx, never torch or sentence-transformers.

The wire format is close to OpenAI's `/v1/embeddings`: `POST {"input": [texts],
"input_type": "query" | "document", "model": id?}` answers `{"data": [{"index": i,
"embedding": [floats]}], "model": id}`; `GET /v1/models` names the model and its dimension.
Floats travel as JSON numbers (shortest round-trip form), so the vectors are bit-for-bit those
the model made in the service.

When the service is down, each call fails with `EmbedderUnavailable` -- an `IndexUnavailable`,
so similar search answers lexically and says why, as it does when the vector index is unusable.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import httpx

from rca.errors import IndexUnavailable
from rca.ports import InputType

MAX_TEXTS = 256
"""Most texts one request may carry (the service answers 413 beyond)."""
MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Largest request body the service reads (413 beyond); the client splits batches below it."""
QUERY_CACHE_SIZE = 1_024
"""Query vectors remembered (the same incident's similar search is asked for again and again)."""
CONNECT_TIMEOUT_S = 2.0
RETRY_S = 3.0
"""How long a refused connection is retried (the service is starting or restarting)."""
OPEN_WAIT_S = 60.0
"""How long the first contact (model id and dimension) waits for a service that is starting
(`rca serve --workers N` starts it beside the server processes, on a machine then busy)."""
DOWN_FOR_S = 5.0
"""After a failed call, calls in this window try once, without retrying: a search while the
service is down answers lexically at once instead of waiting `RETRY_S` every time."""
UNIX_HOST = "http://embedder"
"""The base URL of requests sent over a Unix socket (the host part is not used)."""


class EmbedderUnavailable(IndexUnavailable):
    """The embedding service is not answering, or answered with an error; dense search is off
    until it answers again (lexical search goes on)."""


def split_url(url: str) -> tuple[str, str | None]:
    """The base URL of requests and the Unix socket path (None over TCP) of `url`:
    `http(s)://host:port[/prefix]`, `unix:/path` or `/path`."""
    if url.startswith("unix:"):
        return UNIX_HOST, url.removeprefix("unix:")
    if url.startswith("/"):
        return UNIX_HOST, url
    return url.rstrip("/"), None


class RemoteEmbedder:
    """Embeds by asking the embedding service at `url`; thread-safe, remembers query vectors."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 30.0,
        batch_size: int = 16,
        open_wait_s: float = OPEN_WAIT_S,
    ) -> None:
        self.url = url
        base, socket_path = split_url(url)
        transport = httpx.HTTPTransport(uds=socket_path) if socket_path else None
        self._socket_path = socket_path
        self._client = httpx.Client(
            base_url=base,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            trust_env=False,  # a proxy from the environment has no business on this hop
        )
        self._timeout_s = timeout_s
        self._batch_size = min(batch_size, MAX_TEXTS)
        self._open_wait_s = open_wait_s
        self._lock = threading.Lock()
        self._info: tuple[str, int] | None = None
        self._down_until = 0.0
        self._queries: OrderedDict[bytes, list[float]] = OrderedDict()

    @property
    def model_id(self) -> str:
        """The service's model id (asked once)."""
        return self._model()[0]

    @property
    def dimension(self) -> int:
        """The service's vector length (asked once)."""
        return self._model()[1]

    def _model(self) -> tuple[str, int]:
        if self._info is None:
            body = self._request("GET", "/v1/models", None, self._open_wait_s)
            try:
                model = body["data"][0]
                info = (str(model["id"]), int(model["dimension"]))
            except (KeyError, IndexError, TypeError, ValueError) as err:
                raise self._unavailable(f"answered GET /v1/models with {body!r:.200}") from err
            with self._lock:
                self._info = info
        return self._info

    def embed(self, texts: Sequence[str], input_type: InputType) -> list[list[float]]:
        """One normalised vector per text, in order: batches of at most `batch_size` texts and
        `MAX_REQUEST_BYTES` bytes, one request each (so a query waits behind at most one batch
        of documents in the service)."""
        if not texts:
            return []
        if input_type == "query" and len(texts) == 1:
            return [self._cached_query(texts[0])]
        vectors: list[list[float]] = []
        for batch in self._batches(texts):
            vectors += self._post(batch, input_type)
        return vectors

    def _batches(self, texts: Sequence[str]) -> list[list[str]]:
        limit = MAX_REQUEST_BYTES // 2  # room for JSON escapes of what is counted
        batches: list[list[str]] = [[]]
        size = 0
        for text in texts:
            length = len(text.encode("utf-8")) + 4
            if batches[-1] and (len(batches[-1]) >= self._batch_size or size + length > limit):
                batches.append([])
                size = 0
            batches[-1].append(text)
            size += length
        return batches

    def _cached_query(self, text: str) -> list[float]:
        key = hashlib.sha256(text.encode("utf-8")).digest()
        with self._lock:
            found = self._queries.get(key)
            if found is not None:
                self._queries.move_to_end(key)
                return found
        vector = self._post([text], "query")[0]
        with self._lock:
            self._queries[key] = vector
            while len(self._queries) > QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
        return vector

    def _post(self, texts: list[str], input_type: InputType) -> list[list[float]]:
        model_id, dimension = self._model()
        payload = {"input": texts, "input_type": input_type, "model": model_id}
        body = self._request("POST", "/v1/embeddings", payload, RETRY_S)
        try:
            rows = sorted(body["data"], key=lambda row: int(row["index"]))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError) as err:
            raise self._unavailable(f"answered with {body!r:.200}") from err
        if len(vectors) != len(texts) or any(len(v) != dimension for v in vectors):
            raise self._unavailable(
                f"answered {len(vectors)} vectors for {len(texts)} texts, or not of length "
                f"{dimension}"
            )
        return vectors

    def _request(self, method: str, path: str, payload: Any, retry_s: float) -> Any:
        """The JSON answer; connection refusals are retried for `retry_s` (unless the service
        was found down a moment ago); errors become `EmbedderUnavailable`."""
        content = None if payload is None else json.dumps(payload).encode()
        headers = {"content-type": "application/json"} if content is not None else {}
        now = time.monotonic()
        deadline = now + (0.0 if now < self._down_until else retry_s)
        pause = 0.05
        while True:
            try:
                if self._socket_path is not None and not os.path.exists(self._socket_path):
                    # Not even there: refused without a connection attempt (httpcore 1.0
                    # leaves the socket of a failed Unix connection open until collected).
                    raise httpx.ConnectError(f"no socket at {self._socket_path}")
                response = self._client.request(method, path, content=content, headers=headers)
                break
            except httpx.ConnectError as err:
                if time.monotonic() + pause > deadline:
                    raise self._down(f"is not answering ({err or 'connection refused'})") from err
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
            except httpx.TimeoutException as err:
                raise self._down(f"did not answer within {self._timeout_s:g} s") from err
            except httpx.HTTPError as err:
                raise self._down(f"failed: {type(err).__name__}: {err}") from err
        if response.status_code >= 400:
            raise self._unavailable(f"refused the request: {_problem(response)}")
        try:
            return response.json()
        except ValueError as err:
            raise self._unavailable("answered with something that is not JSON") from err

    def _down(self, what: str) -> EmbedderUnavailable:
        self._down_until = time.monotonic() + DOWN_FOR_S
        return EmbedderUnavailable(
            f"the embedding service at {self.url} {what}; start `rca embedder serve` there, "
            "or unset RCA_RETRIEVAL__EMBEDDER to load the model in this process"
        )

    def _unavailable(self, what: str) -> EmbedderUnavailable:
        return EmbedderUnavailable(f"the embedding service at {self.url} {what}")

    def close(self) -> None:
        """Close the connections."""
        self._client.close()


def _problem(response: httpx.Response) -> str:
    """`413 Payload too large: ...` from a problem+json answer (or its status alone)."""
    try:
        problem = response.json()
        return f"{response.status_code} {problem['title']}: {problem.get('detail', '')}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.reason_phrase}"
