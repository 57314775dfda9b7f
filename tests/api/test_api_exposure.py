"""What the API shows to whom (issue 16, finding 10): the schema and docs need a key and load
nothing from a CDN, readiness names no model, a key is checked before a body is parsed, and
every response says `nosniff` (a Markdown export quoting HTML is read as text)."""

from __future__ import annotations

from rca.store.keys import Role
from tests.api.support import Api

PROBLEM = "application/problem+json"


def test_the_schema_needs_a_key_and_no_docs_page_loads_from_a_cdn(api: Api) -> None:
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect", "/nowhere"):
        refused = api.client.get(path)
        assert refused.status_code == 401, path
        assert refused.headers["content-type"] == PROBLEM
        assert refused.headers["www-authenticate"].startswith("Bearer")
    schema = api.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "rca"
    for page in ("/docs", "/redoc"):
        found = api.get(page)
        assert found.status_code == 404
        assert "cdn" not in found.text.lower()


def test_readiness_names_no_model(api: Api) -> None:
    services = api.services
    for model in ("fake/analyst", "local/some-private-model"):
        llm = services.settings.llm.model_copy(update={"model": model})
        services.settings = services.settings.model_copy(update={"llm": llm})
        ready = api.client.get("/readyz")
        assert "analyst" not in ready.text and "private" not in ready.text, ready.text
        assert set(ready.json()["checks"]) == {"store", "index", "model"}


def test_a_key_is_checked_before_the_body_is_parsed(api: Api) -> None:
    malformed = {"content": b'{"id": "inc-1", ', "headers": {"Content-Type": "application/json"}}
    refused = api.post("/v1/incidents", None, **malformed)
    assert refused.status_code == 401 and refused.headers["content-type"] == PROBLEM
    assert refused.headers["connection"] == "close"  # its body is not read
    bad_key = api.client.post(
        "/v1/incidents", headers={"Authorization": "Bearer rca_x_y", **malformed["headers"]}
    )
    assert bad_key.status_code == 401
    assert api.post("/v1/incidents", Role.ENGINEER, **malformed).status_code == 422
    # A role too low is still told so after authentication.
    assert api.post("/v1/admin/keys", Role.ENGINEER, json={}).status_code == 403


def test_a_web_form_without_a_session_is_sent_to_sign_in_unread(api: Api) -> None:
    answer = api.client.post(
        "/ui/incidents/inc-x/drafts", data={"csrf": "x"}, follow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/sign-in")
    assert answer.headers["connection"] == "close"


def test_every_response_says_nosniff_and_markdown_is_served_as_text(api: Api) -> None:
    body = {
        "id": "pm-html",
        "title": "Checkout <script>alert(1)</script> errors",
        "date": "2025-04-02",
        "severity": "SEV2",
        "services": ["checkout-api"],
        "summary": '<img src=x onerror="alert(1)"> A smaller pool made checkout time out.',
        "root_causes": ["Pool size changes were not load tested."],
    }
    assert api.post("/v1/postmortems", Role.REVIEWER, json=body).status_code == 201
    exported = api.get("/v1/postmortems/pm-html/export")
    assert exported.status_code == 200 and "<script>" in exported.text  # kept as written
    assert exported.headers["content-type"] == "text/markdown; charset=utf-8"
    assert exported.headers["content-disposition"].startswith("attachment")
    assert "sandbox" in exported.headers["content-security-policy"]
    answers = [
        exported,
        api.client.get("/healthz"),
        api.client.get("/readyz"),
        api.client.get("/v1/incidents"),
        api.get("/v1/incidents"),
        api.get("/v1/incidents/nope"),
        api.get("/openapi.json"),
        api.client.get("/ui/sign-in"),
        api.client.get("/ui/static/app.css"),
    ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
        assert answer.headers["content-type"], answer.url
