"""Attack groups on who gets in and how long a connection may stay: the role matrix over the
whole OpenAPI schema and the web forms (issue 16's baseline), slow and malformed connections
(finding 9), and what the service exposes without a key (finding 10)."""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

from bench._probe import Probe

RANK = {"engineer": 0, "reviewer": 1, "admin": 2}
PUBLIC = {"/healthz", "/readyz"}


def needed_role(method: str, path: str) -> str | None:
    """The least role an operation needs, as the README's role matrix says: admin for keys,
    index maintenance and /metrics; reviewer for review, finalize, audit, postmortem imports
    and action-item updates; engineer for the rest; None for the probes."""
    if path in PUBLIC:
        return None
    if path.startswith("/v1/admin/") or path == "/metrics":
        return "admin"
    if path.endswith(("/review", "/finalize", "/audit")):
        return "reviewer"
    if (method, path) == ("POST", "/v1/postmortems") or (
        method == "PATCH" and path.startswith("/v1/action-items/")
    ):
        return "reviewer"
    return "engineer"


def _filled(path: str, ids: dict[str, str]) -> str:
    values = {
        "incident_id": ids["incident"],
        "draft_id": ids.get("draft", "draft-none"),
        "suggestion_id": "s1",
        "postmortem_id": ids["postmortem"],
        "item": "0",
        "key_id": "nokey0000000",  # never one that exists: admins would revoke it
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def auth(probe: Probe) -> None:
    """Every documented operation as every principal; unknown paths; the web forms."""
    world = probe.world
    draft = probe.finished_draft(world.ids["incident"])
    if draft is not None:
        world.ids["draft"] = draft["id"]
    schema = probe.get("/openapi.json", "admin")
    if not probe.expect(schema.status_code == 200, f"schema with admin key: {schema.status_code}"):
        return
    operations = [
        (method.upper(), path)
        for path, ops in schema.json()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    ]
    probe.expect(len(operations) >= 20, f"only {len(operations)} operations in the schema")
    outsiders: dict[str, dict[str, str]] = {
        "no key": {},
        "bad key": {"Authorization": "Bearer rca_AAAAAAAA_notarealsecretvalue"},
        "revoked key": world.auth("revoked"),
    }
    if not world.quick:
        outsiders |= {
            "basic auth": {"Authorization": "Basic YWRtaW46YWRtaW4="},
            "bare bearer": {"Authorization": "Bearer"},
            "key in query": {},  # ?api_key= must not count as a key
        }
    for method, template in operations:
        path = _filled(template, world.ids)
        needed = needed_role(method, template)
        body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        if template.endswith("/drafts") and method == "POST":
            body = {"json": {"model": "attack/none"}}  # reaches the handler, queues nothing
        for name, headers in outsiders.items():
            target = path + (f"?api_key={world.keys['admin']}" if name == "key in query" else "")
            answer = probe.call(method, target, None, headers=headers, **body)
            if needed is None:
                probe.expect(answer.status_code < 400, f"{method} {path} open route: {answer}")
            elif answer.is_success:
                probe.leak(f"{method} {path} as {name} -> {answer.status_code}")
            else:
                probe.expect(
                    answer.status_code == 401
                    and "bearer" in answer.headers.get("www-authenticate", "").lower(),
                    f"{method} {path} as {name} -> {answer.status_code}, not 401 with a challenge",
                )
        for role, rank in RANK.items():
            answer = probe.call(method, path, role, **body)
            allowed = needed is None or rank >= RANK[needed]
            if not allowed and answer.is_success:
                probe.leak(f"{method} {path} as {role} -> {answer.status_code} (needs {needed})")
            elif not allowed:
                probe.expect(answer.status_code == 403, f"{method} {path} as {role} -> {answer}")
            else:
                probe.expect(
                    answer.status_code not in (401, 403),
                    f"{method} {path} as {role} refused: {answer.status_code} (needs {needed})",
                )
    for path in ("/v1/nowhere", "/admin", "/.env", "/v1/admin/keys/../../metrics"):
        probe.expect(probe.get(path, None).status_code == 401, f"GET {path} without key")
        probe.expect(probe.get(path, "engineer").status_code in (403, 404), f"GET {path} engineer")
    _web_forms(probe)


def _csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    return found.group(1) if found else ""


def _web_forms(probe: Probe) -> None:
    """Pages and forms without a session, with a stale CSRF token, with a role too low;
    sign-in with bad keys, from another site, with an outside `next`."""
    ids = probe.world.ids
    incident, draft = ids["incident"], ids.get("draft", "draft-none")
    for path in ("/ui/incidents", f"/ui/incidents/{incident}", f"/ui/drafts/{draft}"):
        page = probe.get(path, None, follow_redirects=False)
        probe.expect(
            page.status_code == 303 and page.headers["location"].startswith("/ui/sign-in"),
            f"GET {path} without session -> {page.status_code}",
        )
    forms = [f"/ui/incidents/{incident}/drafts", f"/ui/drafts/{draft}/finalize"]
    for path in forms:
        posted = probe.post(path, None, data={"csrf": "x", "version": "2"}, follow_redirects=False)
        probe.expect(
            posted.status_code == 303 and "sign-in" in posted.headers.get("location", ""),
            f"POST {path} without session -> {posted.status_code}",
        )
    with probe.browser("engineer") as browser:
        page = probe.get(f"/ui/drafts/{draft}", None, client=browser)
        token = _csrf_of(page.text)
        probe.expect(bool(token), "no CSRF token on the draft page")
        stale = probe.post(
            forms[0], None, client=browser, data={"csrf": "stale"}, follow_redirects=False
        )
        probe.expect(stale.status_code == 403, f"form with a stale CSRF token -> {stale}")
        finalize = {"csrf": token, "version": "2"}
        low = probe.post(forms[1], None, client=browser, data=finalize, follow_redirects=False)
        probe.expect(low.status_code == 403, f"engineer finalizing through the form -> {low}")
    for key in ("rca_nope_nope", probe.world.keys["revoked"]):
        refused = probe.post("/ui/sign-in", None, data={"api_key": key}, follow_redirects=False)
        probe.expect(
            refused.status_code == 401 and "set-cookie" not in refused.headers,
            f"sign-in with a bad key -> {refused.status_code}",
        )
    good = {"api_key": probe.world.keys["engineer"]}
    foreign = probe.post("/ui/sign-in", None, data=good, headers={"Origin": "http://evil.example"})
    probe.expect(foreign.status_code == 403, f"sign-in posted from another site -> {foreign}")
    for target in (
        "https://evil.example/",
        "//evil.example/ui/",
        "/\\evil.example",
        "javascript:x",
    ):
        signed = probe.post(
            "/ui/sign-in", None, data={**good, "next": target}, follow_redirects=False
        )
        location = signed.headers.get("location", "")
        probe.expect(
            urlsplit(urljoin(probe.world.base, location)).netloc
            == urlsplit(probe.world.base).netloc
            and location.startswith("/")
            and not location.startswith(("//", "/\\")),
            f"sign-in with next={target} redirects off the site: {location!r}",
        )


# --- slow and malformed connections (finding 9) ------------------------------------------


def _watch(socks: dict[socket.socket, bytes], limit_s: float) -> list[tuple[float, bytes]]:
    """Send each socket its piece every 0.5 s until the server answers or closes it, at most
    `limit_s` + 5 s; for each, the seconds it took (inf if still open) and what came back."""
    started = time.monotonic()
    done: dict[socket.socket, tuple[float, bytes]] = {}
    next_send = 0.0
    while len(done) < len(socks) and time.monotonic() - started < limit_s + 5:
        now = time.monotonic() - started
        if now >= next_send:
            for sock in [s for s in socks if s not in done]:
                try:
                    if socks[sock]:
                        sock.sendall(socks[sock])
                except OSError:
                    done[sock] = (now, b"")
            next_send = now + 0.5
        readable, _, _ = select.select([s for s in socks if s not in done], [], [], 0.1)
        for sock in readable:
            try:
                answer = sock.recv(65536)
            except OSError:
                answer = b""
            done[sock] = (time.monotonic() - started, answer)
    return [done.get(s, (float("inf"), b"(still open)")) for s in socks]


def slow_clients(probe: Probe) -> None:
    """Slow-header and idle connections are closed within the header timeout while a normal
    request still answers; a slow body gets 408; an oversized head 431; an unauthenticated
    upload 401 before its body; an unparsable request a problem."""
    world = probe.world
    limit = world.header_timeout_s + 3.0  # a loaded 2-core machine
    count = 10 if world.quick else 50

    def connect() -> socket.socket:
        probe.spend()
        return socket.create_connection(("127.0.0.1", world.port), timeout=10)

    socks: dict[socket.socket, bytes] = {}
    try:
        for n in range(count):
            sock = connect()
            if n % 5 == 4:
                socks[sock] = b""  # idle: connects and says nothing
            else:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                socks[sock] = b"X-Slow: 1\r\n"
        started = time.monotonic()
        healthz = probe.get("/healthz", None)
        listed = probe.get("/v1/incidents?limit=5")
        answered = time.monotonic() - started
        probe.expect(
            healthz.status_code == 200 and listed.status_code == 200 and answered < 2.0,
            f"normal requests beside {count} slow clients: {answered:.1f} s",
        )
        took = [t for t, _answer in _watch(socks, limit)]
        late = [t for t in took if t > limit]
        probe.expect(
            not late,
            f"{len(late)} of {count} slow/idle connections held past {limit:.0f} s "
            f"(longest {max(took):.1f} s)",
        )
    finally:
        for sock in socks:
            sock.close()
    _malformed(probe, connect, limit)


def _exchange(sock: socket.socket, data: bytes, wait_s: float) -> bytes:
    sock.sendall(data)
    readable, _, _ = select.select([sock], [], [], wait_s)
    try:
        return sock.recv(65536) if readable else b"(no answer)"
    except OSError:
        return b""


def _malformed(probe: Probe, connect: Callable[[], socket.socket], limit: float) -> None:
    key = probe.world.keys["engineer"]
    head = (
        "POST /v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
    slow_body = head.format(auth=f"Authorization: Bearer {key}\r\n", length=100_000)
    with connect() as sock:
        sock.sendall(slow_body.encode() + b"[")
        [(took, answer)] = _watch({sock: b" "}, limit)
    probe.expect(
        took <= limit and answer.startswith(b"HTTP/1.1 408"),
        f"a slow body -> {answer[:40]!r} after {took:.1f} s",
    )
    for auth in ("", "Authorization: Bearer rca_nope_nope\r\n"):
        with connect() as sock:
            answer = _exchange(sock, head.format(auth=auth, length=1_500_000).encode(), 3.0)
        probe.expect(
            answer.startswith(b"HTTP/1.1 401"), f"unauthenticated upload -> {answer[:60]!r}"
        )
    with connect() as sock:
        start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        answer = _exchange(sock, start + b"a" * 70_000 + b"\r\n\r\n", 5.0)
    probe.expect(answer.startswith(b"HTTP/1.1 431"), f"70 KB of headers at once -> {answer[:60]!r}")
    with connect() as sock:
        answer = _exchange(sock, b"GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 3.0)
    problem = b"application/problem+json" in answer and b"nosniff" in answer
    probe.expect(answer.startswith(b"HTTP/1.1 400") and problem, f"unparsable -> {answer[:60]!r}")


# --- exposure (finding 10) ---------------------------------------------------------------

INVISIBLE = ["\x00", "\u200b", "\u200d", "\u202e", "\u2066", "\ufeff"]
_JSON = {"Content-Type": "application/json"}


def exposure(probe: Probe) -> None:
    world = probe.world
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        refused = probe.get(path, None)
        probe.expect(refused.status_code == 401, f"GET {path} without key -> {refused}")
    for path in ("/docs", "/redoc"):
        page = probe.get(path, "engineer")
        probe.expect(page.status_code == 404, f"GET {path} with a key -> {page.status_code}")
    ready = probe.get("/readyz", None)
    named = [w for w in ("fake", "analyst", str(world.data_dir), "/tmp") if w in ready.text]
    probe.expect(not named, f"/readyz names {named}: {ready.text[:200]}")
    malformed = b'{"id": "inc-x", "title": '
    for who in (None, "revoked"):
        answer = probe.post("/v1/incidents", who, content=malformed, headers=_JSON)
        probe.expect(answer.status_code == 401, f"malformed JSON as {who} -> {answer}")
    answer = probe.post("/v1/incidents", "engineer", content=malformed, headers=_JSON)
    probe.expect(answer.status_code == 422, f"malformed JSON with a key -> {answer}")
    _invisible(probe)
    export = probe.get(f"/v1/postmortems/{world.ids['postmortem']}/export")
    probe.expect(
        export.status_code == 200
        and export.headers.get("content-type", "").startswith("text/markdown")
        and "sandbox" in export.headers.get("content-security-policy", ""),
        f"Markdown export headers: {dict(export.headers)}",
    )
    with probe.browser("engineer") as browser:
        evals = probe.get("/ui/evals", None, client=browser)
        probe.expect(
            evals.status_code == 200 and str(world.data_dir.resolve()) not in evals.text,
            f"/ui/evals shows the data directory ({evals.status_code})",
        )


def _invisible(probe: Probe) -> None:
    """NUL, zero-width and bidi controls in an incident never reach its pages as such."""
    marks = "".join(INVISIBLE)
    body = _incident(probe)
    body |= {"id": "inc-attack-invisible", "title": f"Checkout{marks} errors {marks}again"}
    body["summary"] = f"pool{marks}exhausted"
    body["logs"][0]["text"] = f"ERROR pool{marks}exhausted"
    created = probe.post("/v1/incidents", json=body)
    if created.status_code == 422:  # NUL refused at the edge: try the rest
        body["title"] = body["title"].replace("\x00", "")
        body["summary"] = body["summary"].replace("\x00", "")
        body["logs"][0]["text"] = body["logs"][0]["text"].replace("\x00", "")
        created = probe.post("/v1/incidents", json=body)
    if not probe.expect(created.status_code == 201, f"invisible incident -> {created}"):
        return
    with probe.browser("engineer") as browser:
        for path in ("/ui/incidents", "/ui/incidents/inc-attack-invisible"):
            page = probe.get(path, None, client=browser)
            shown = [hex(ord(c)) for c in INVISIBLE if c in page.text]
            probe.expect(page.status_code == 200 and not shown, f"{path} shows {shown}")


def _incident(probe: Probe) -> dict[str, Any]:
    found = probe.get(f"/v1/incidents/{probe.world.ids['incident']}")
    body: dict[str, Any] = found.json()
    return body
