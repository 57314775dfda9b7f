"""`create_app(settings)`: the HTTP service.

Built once from settings (no globals read at import), so tests pass their own. The app owns
its `Services` (store, search, model clients, service tables) and, unless told otherwise,
runs `settings.api.draft_workers` draft workers in threads for the life of the app.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from api import (
    mcp_server,
    metrics,
    problems,
    routes_action_items,
    routes_admin,
    routes_changes,
    routes_digest,
    routes_drafts,
    routes_evidence,
    routes_hooks,
    routes_incidents,
    routes_insights,
    routes_misc,
    routes_postmortems,
    routes_recurrences,
    routes_webhooks,
    web,
)
from api.auth import AuthenticateFirst
from api.digest_schedule import DigestSchedule
from api.headers import SecurityHeaders
from api.limits import BodyLimit
from api.services import Services
from api.webhook_sender import WebhookSenders
from api.worker import InServerWorkers
from rca.config import Settings
from rca.ports import Embedder

log = logging.getLogger("rca.api")


def create_app(
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    workers: int | None = None,
) -> FastAPI:
    """The service for `settings`; `workers` overrides `settings.api.draft_workers`."""
    count = settings.api.draft_workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Few request threads: on a small machine, dozens of threads wanting the GIL make the
        # event loop wait its turn behind them (long tails even for /healthz).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api.threads
        services = Services.open(settings, embedder)
        if settings.api.warm_up:
            await anyio.to_thread.run_sync(services.warm_up)
        app.state.services = services
        workers = InServerWorkers(services, count)
        workers.start()
        app.state.workers = workers
        senders = WebhookSenders(
            services.store.engine, settings.outbound, DigestSchedule(services.store, settings)
        )
        senders.start()
        # What start-up loaded (models, libraries) lives as long as the process: keep it out
        # of the collector's full passes, which otherwise pause every request for 100+ ms.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            workers.stop()
            senders.stop()
            services.close()
            gc.unfreeze()
            metrics.process_ended(os.getpid())

    app = FastAPI(
        title="rca",
        version="0.1.0",
        summary="AI-assisted root-cause analysis: draft, review and search postmortems.",
        lifespan=lifespan,
        # The schema needs a key like every route; no /docs or /redoc (their pages load
        # scripts from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    problems.install(app)
    app.include_router(routes_incidents.router)
    app.include_router(routes_evidence.router)
    app.include_router(routes_changes.router)
    app.include_router(routes_hooks.router)
    app.include_router(routes_insights.router)
    app.include_router(routes_digest.router)
    app.include_router(routes_drafts.router)
    app.include_router(routes_postmortems.router)
    app.include_router(routes_recurrences.router)
    app.include_router(routes_action_items.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_misc.router)
    web.install(app)
    mcp_server.install(app)  # /mcp: the tools for AI assistants
    api = settings.api
    app.add_middleware(BodyLimit, max_bytes=api.max_body_bytes, timeout_s=api.body_timeout_s)
    app.add_middleware(AuthenticateFirst)  # before any body is read
    app.add_middleware(metrics.MetricsMiddleware)  # refusals counted too
    app.add_middleware(SecurityHeaders)
    return app


def app_from_environment() -> FastAPI:
    """The app for settings read from the environment: what each process of
    `rca serve --workers N` builds (uvicorn imports it by name in every process)."""
    return create_app(Settings())
