"""`create_app(settings)`: the HTTP service.

Built once from settings (no globals read at import), so tests pass their own. The app owns
its `Services` (store, search, model clients, service tables) and, unless told otherwise,
runs `settings.api.draft_workers` draft workers in threads for the life of the app.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import (
    problems,
    routes_admin,
    routes_drafts,
    routes_incidents,
    routes_misc,
    routes_postmortems,
)
from api.limits import BodyLimit
from api.metrics import Metrics, MetricsMiddleware
from api.services import Services
from api.worker import DraftWorker
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
        services = Services.open(settings, embedder)
        app.state.services = services
        running = [DraftWorker(services, f"server-{n + 1}") for n in range(count)]
        for worker in running:
            worker.start()
        app.state.workers = running
        try:
            yield
        finally:
            for worker in running:
                worker.stop()
            services.close()

    app = FastAPI(
        title="rca",
        version="0.1.0",
        summary="AI-assisted root-cause analysis: draft, review and search postmortems.",
        lifespan=lifespan,
    )
    app.state.metrics = Metrics()
    problems.install(app)
    app.include_router(routes_incidents.router)
    app.include_router(routes_drafts.router)
    app.include_router(routes_postmortems.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_misc.router)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    return app
