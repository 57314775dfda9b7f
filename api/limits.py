"""Request body limits, enforced on the bytes actually received and the time they take.

The declared `Content-Length` is checked first (a larger one is refused before reading), then
the body is read up to the limit whatever the transfer encoding: a chunked body, or one whose
declared length lies, is cut off at the limit and refused with 413. A body not complete within
`timeout_s` of the headers (a client trickling it to hold the connection) is refused with 408
and the connection closed. The app then gets the body from memory.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import PROBLEM


class BodyLimit:
    """ASGI middleware refusing bodies over `max_bytes` with a problem+json 413, and bodies
    slower than `timeout_s` with a 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, f"request bodies are limited to {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        with anyio.move_on_after(self.timeout_s):
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    detail = f"request bodies are limited to {self.max_bytes} bytes"
                    await _refuse(send, 413, detail)
                    return
                chunks.append(chunk)
                more = bool(message.get("more_body", False))
        if more:
            detail = f"the request body did not arrive within {self.timeout_s:g} s"
            await _refuse(send, 408, detail)
            return
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


_KINDS = {
    408: ("body-timeout", "Request timeout"),
    413: ("body-too-large", "Request body too large"),
}


async def _refuse(send: Send, status: int, detail: str) -> None:
    """A problem+json answer that closes the connection (the rest of the body is not read)."""
    kind, title = _KINDS[status]
    body: dict[str, Any] = {
        "type": f"https://rca.dev/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(data)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
