"""The outbound-webhooks page in a real headless Chromium: an admin sees the subscriptions and
the dead deliveries and retries one; other roles get neither the page nor its link."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from api.services import Services
from api.webhook_sender import WebhookSender
from rca.config import OutboundSettings
from rca.store.keys import Role
from rca.store.webhooks import DeliveryState, RetryPolicy, WebhookEvent, Webhooks, enqueue
from rca.store.writes import writing
from tests.api.module_backend import (  # fixtures: pytest finds them in the module
    PER_MODULE,
    ModuleBackend,
    module_backend_fixture,  # noqa: F401
)
from tests.api.support import api_settings, free_port, served

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")
# The module's server is built once per back end (`module_backend`), not once per test.
pytestmark = [
    PER_MODULE,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)"
    ),
]


@dataclass
class Site:
    url: str
    keys: dict[Role, str]
    webhooks: Webhooks
    dead: str
    """The id of a delivery that died (its receiver was down)."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, module_backend: ModuleBackend) -> Iterator[Site]:
    outbound = OutboundSettings(max_attempts=1, timeout_s=0.5, senders=0)
    settings = api_settings(tmp_path_factory.mktemp("hooks")).model_copy(
        update={"outbound": outbound}
    )
    app = create_app(settings, workers=0)
    with served(app) as url:
        services: Services = app.state.services
        module_backend.holds(services.store.engine)
        webhooks = Webhooks(services.store.engine, RetryPolicy.of(outbound))
        down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
        webhooks.create(down, [WebhookEvent.ACTION_ITEM_UPDATED.value], "follow-up <b>bot</b>")
        with writing(services.store.engine) as conn:
            [dead] = enqueue(conn, WebhookEvent.ACTION_ITEM_UPDATED, {"n": 1})
        sender = WebhookSender(webhooks, outbound, "page-test", lambda: datetime.now(UTC))
        try:
            sender.run_once()
        finally:
            sender.close()
        assert webhooks.delivery(dead).state is DeliveryState.DEAD
        keys = {role: services.keys.create(f"{role.value} user", role)[0] for role in Role}
        yield Site(url, keys, webhooks, dead)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


def signed_in(browser: Any, site: Site, role: Role) -> Any:
    page = browser.new_context().new_page()
    page.on("dialog", lambda d: pytest.fail(f"a script ran: dialog {d.message!r}"))
    page.goto(site.url + "/ui/sign-in")
    page.fill("#api_key", site.keys[role])
    page.click("button[type=submit]")
    page.wait_for_url("**/ui/incidents")
    return page


def test_an_admin_sees_dead_deliveries_and_retries_one(browser: Any, site: Site) -> None:
    page = signed_in(browser, site, Role.ADMIN)
    page.click("nav >> text=Webhooks")
    page.wait_for_url("**/ui/webhooks")
    subscriptions = page.locator("#subscriptions tbody tr")
    assert subscriptions.count() == 1
    assert "follow-up <b>bot</b>" in subscriptions.inner_text()  # shown as text, not markup
    row = page.locator(f"#delivery-{site.dead}")
    assert "action_item.updated" in row.inner_text()
    assert "cannot connect" in row.inner_text()
    row.locator("button", has_text="Retry").click()
    page.wait_for_url("**/ui/webhooks")
    assert page.locator(f"#delivery-{site.dead}").count() == 0
    assert "No dead deliveries." in page.inner_text("main")
    retried = site.webhooks.delivery(site.dead)
    assert (retried.state, retried.attempts) == (DeliveryState.PENDING, 0)
    page.context.close()


def test_other_roles_get_neither_the_page_nor_its_link(browser: Any, site: Site) -> None:
    for role in (Role.ENGINEER, Role.REVIEWER):
        page = signed_in(browser, site, role)
        assert page.locator("nav >> text=Webhooks").count() == 0
        answer = page.goto(site.url + "/ui/webhooks")
        assert answer.status == 403
        page.context.close()
