"""The embedding service: one process holds the embedding model and embeds for the others
(`rca embedder serve`; `rca serve --workers N` starts one on a Unix socket as `python -m
api.embedder_service --socket PATH`, which skips the CLI's imports: faster to start, lighter).
A plain ASGI app, so the process imports uvicorn and the model, not the API.

- `GET /v1/models`: `{"object": "list", "data": [{"id", "object": "model", "dimension"}]}`;
- `POST /v1/embeddings` with `{"input": text | [texts], "input_type": "query" | "document",
  "model": id?}`: `{"object": "list", "model", "data": [{"object": "embedding", "index",
  "embedding"}]}` (OpenAI's shape; `input_type` is ours, `retrieval.remote_embedder` speaks it);
- `GET /healthz`: `{"status": "ok"}`.

Errors are problem+json: 400 (not JSON), 404, 405, 413 (body over `MAX_REQUEST_BYTES`, more than
`MAX_TEXTS` texts), 422 (wrong shape or types, another model named), 503 (the model cannot be
loaded). No authentication: listen on a Unix socket, loopback or a private network only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, ValidationError

from rca.config import Settings
from rca.errors import ConfigurationError, RcaError
from rca.ports import Embedder
from retrieval.embedder import close_embedder, local_embedder
from retrieval.remote_embedder import MAX_REQUEST_BYTES, MAX_TEXTS

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_CONCURRENT = 64
"""Requests in the service at once (503 beyond): each may hold a body of up to 8 MiB."""
SOCKET_PATH_MAX = 107
"""The longest Unix socket path Linux accepts (sun_path holds 108 bytes with the final NUL)."""
TITLES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: "Payload too large",
    422: "Unprocessable content",
    503: "Service unavailable",
}


class EmbeddingRequest(BaseModel):
    """What `POST /v1/embeddings` reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: StrictStr | list[StrictStr]
    """One text or a list of texts."""
    input_type: Literal["query", "document"] = "document"
    """Whether the texts are search queries or documents to be found."""
    model: StrictStr | None = None
    """The model the caller expects (422 if this service embeds with another)."""


class Refused(Exception):
    """A request answered with a problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class EmbeddingService:
    """The ASGI app around one embedder."""

    def __init__(
        self, embedder: Embedder, max_texts: int = MAX_TEXTS, max_bytes: int = MAX_REQUEST_BYTES
    ) -> None:
        self.embedder = embedder
        self.max_texts = max_texts
        self.max_bytes = max_bytes
        # A thread per request in the service (not asyncio's default few), so that concurrent
        # queries wait together and the embedder encodes them as one batch.
        self._calls = ThreadPoolExecutor(MAX_CONCURRENT, thread_name_prefix="rca-embed-call")

    def close(self) -> None:
        """Stop the request threads (calls still waiting are dropped: the server has stopped
        answering) and the embedder's model thread, if it has one."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        close_embedder(self.embedder)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            status, body = await self._answer(scope, receive)
        except Refused as err:
            status, body = err.status, _problem(err.status, err.detail)
            content_type = b"application/problem+json"
        else:
            content_type = b"application/json"
        payload = json.dumps(body).encode()
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(payload))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _answer(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        path, method = scope["path"], scope["method"]
        routes = {"/healthz": "GET", "/v1/models": "GET", "/v1/embeddings": "POST"}
        if path not in routes:
            raise Refused(404, f"no such endpoint: {path}")
        if method != routes[path]:
            raise Refused(405, f"{path} answers {routes[path]} only")
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path == "/v1/models":
            return 200, {"object": "list", "data": [await asyncio.to_thread(self._model)]}
        request = self._parse(await self._body(scope, receive))
        texts = [request.input] if isinstance(request.input, str) else request.input
        if len(texts) > self.max_texts:
            raise Refused(413, f"at most {self.max_texts} texts per request; got {len(texts)}")
        model_id = await asyncio.to_thread(lambda: self.embedder.model_id)
        if request.model is not None and request.model != model_id:
            raise Refused(422, f"this service embeds with {model_id}, not {request.model}")
        try:
            vectors = await asyncio.get_running_loop().run_in_executor(
                self._calls, self.embedder.embed, texts, request.input_type
            )
        except RcaError as err:
            log.error("embedding failed: %s", err)
            raise Refused(503, f"the model cannot embed: {err}") from err
        data = [
            {"object": "embedding", "index": i, "embedding": vector}
            for i, vector in enumerate(vectors)
        ]
        return 200, {"object": "list", "model": model_id, "data": data}

    def _model(self) -> dict[str, Any]:
        try:
            model_id, dimension = self.embedder.model_id, self.embedder.dimension
        except RcaError as err:
            raise Refused(503, f"the model cannot be loaded: {err}") from err
        return {"id": model_id, "object": "model", "dimension": dimension}

    async def _body(self, scope: Scope, receive: Receive) -> bytes:
        """The request body, refused with 413 as soon as it is known to exceed the limit."""
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise Refused(413, f"request bodies are limited to {self.max_bytes} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise Refused(400, "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise Refused(413, f"request bodies are limited to {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    def _parse(body: bytes) -> EmbeddingRequest:
        try:
            data = json.loads(body)
        except ValueError as err:  # UnicodeDecodeError too
            raise Refused(400, f"the body is not JSON: {err}") from err
        try:
            return EmbeddingRequest.model_validate(data)
        except ValidationError as err:
            first = err.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            raise Refused(422, f"{where}: {first['msg']} ({err.error_count()} problem(s))") from err


def _problem(status: int, detail: str) -> dict[str, Any]:
    return {
        "type": f"https://rca.dev/problems/{status}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def serve(settings: Settings, socket_path: Path | None, host: str, port: int) -> None:
    """Serve the settings' embedder on `socket_path` (made 0600, removed at exit) or on
    `host:port`, until SIGTERM or SIGINT."""
    import uvicorn

    embedder = local_embedder(settings)
    if socket_path is not None:
        listener = _unix_listener(socket_path)
        where = str(socket_path)
    else:
        try:
            listener = socket.create_server((host, port))
        except OSError as err:
            raise ConfigurationError(f"cannot listen on {host}:{port}: {err}") from err
        where = f"http://{host}:{port}"
    if settings.api.warm_up:  # the model loads while the socket already accepts
        threading.Thread(target=_warm_up, args=(embedder,), daemon=True).start()
    service = EmbeddingService(embedder)
    config = uvicorn.Config(
        service,
        log_level="warning",
        access_log=False,
        limit_concurrency=MAX_CONCURRENT,
        timeout_graceful_shutdown=5,
        ws="none",
    )
    log.warning("rca embedder: %s on %s", embedder.model_id, where)
    # uvicorn raises the signal that stopped it again once it has stopped: let that one end
    # this function, so the socket is removed, rather than the process at once.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda *_: None)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        service.close()
        listener.close()
        if socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                socket_path.unlink()


def _unix_listener(path: Path) -> socket.socket:
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise ConfigurationError(
            f"the socket path {path} is longer than {SOCKET_PATH_MAX} bytes; choose a shorter one"
        )
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # a socket nobody listens on: left by a process that died
        else:
            raise ConfigurationError(f"another process listens on {path}")
        finally:
            probe.close()
    elif path.exists():
        raise ConfigurationError(f"{path} exists and is not a socket; choose another path")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # 0600 from the start: only this user may connect
    try:
        listener.bind(str(path))
    except OSError as err:
        listener.close()
        raise ConfigurationError(f"cannot listen on {path}: {err}") from err
    finally:
        os.umask(old)
    listener.listen(128)
    return listener


def _warm_up(embedder: Embedder) -> None:
    try:
        embedder.embed(["warm up the embedding model"], "query")
        embedder.embed(["warm up the embedding model"], "document")
    except RcaError as err:  # requests will report it too
        log.warning("embedding model warm-up failed: %s", err)


def main(argv: list[str] | None = None) -> int:
    """`python -m api.embedder_service --socket PATH`: what `rca serve --workers N` starts."""
    parser = argparse.ArgumentParser(prog="python -m api.embedder_service")
    parser.add_argument("--socket", type=Path, required=True, help="Unix socket to listen on.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        serve(Settings(), args.socket, "", 0)
    except (RcaError, ValidationError) as err:
        print(f"rca embedder: error: {err}", file=sys.stderr)  # noqa: T201 - a CLI's one line
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
