"""Headers on every response: `X-Content-Type-Options: nosniff`, so a browser never reads a
text or JSON answer (a Markdown export quoting HTML from a postmortem) as something else; and
outside the web UI, which sets its own, a Content-Security-Policy that lets nothing run or load
should such an answer be opened in a browser anyway."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_CSP = b"default-src 'none'; frame-ancestors 'none'; sandbox"


class SecurityHeaders:
    """ASGI middleware adding the headers a response does not set itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        web = path == "/ui" or path.startswith("/ui/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if not web and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", API_CSP))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
