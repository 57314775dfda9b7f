"""Health, readiness, metrics and the configured models."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from api import metrics as prometheus
from api.auth import PUBLIC_ROUTES, require
from api.routes_incidents import services_of
from api.services import Services
from rca.errors import RcaError
from rca.llm import weights
from rca.store.keys import Principal, Role

router = APIRouter(tags=["service"])
__all__ = ["PUBLIC_ROUTES", "router"]
log = logging.getLogger("rca.api")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers, the vector index opens, the model is present. Open to
    anyone, so it names no model, path or error: those go to the server log."""
    services = services_of(request)
    checks: dict[str, Any] = {}
    try:
        services.store.counts()
        checks["store"] = "ok"
    except RcaError as err:
        log.warning("readiness: the store is unavailable: %s", err)
        checks["store"] = "unavailable"
    try:
        services.retrieval.vectors.exists()
        checks["index"] = "ok"
    except RcaError as err:
        log.warning("readiness: the vector index is unavailable: %s", err)
        checks["index"] = "degraded (lexical search only)"
    checks["model"] = _model_check(services.settings.llm.model, services)
    ready = checks["store"] == "ok" and not str(checks["model"]).startswith("unavailable")
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


def _model_check(model: str, services: Services) -> str:
    if "+" in model:  # a split: both halves must be ready
        checks = [_model_check(part, services) for part in model.split("+")]
        return next((c for c in checks if c.startswith("unavailable")), checks[0])
    if not model.startswith("local/"):
        return "configured (hosted; not called by the probe)"
    name = model.split("/", 1)[1]
    if name.endswith(".gguf"):
        return "ok" if Path(name).is_file() else "unavailable: no such file"
    try:
        spec = weights.spec_for(name)
    except RcaError as err:
        log.warning("readiness: %s", err)
        return "unavailable: unknown embedded model"
    path = weights.model_path(services.settings.data_dir, spec)
    if not path.is_file() or path.stat().st_size != spec.size:
        return "unavailable: run `rca model pull`"
    return "ok"


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, _p: Annotated[Principal, Depends(require(Role.ADMIN))]) -> Response:
    """Prometheus metrics (text format): every server process's and the draft worker's, and
    the queue depth and index lag read from the database (`api.metrics`)."""
    body = prometheus.exposition(services_of(request))
    return Response(body, media_type=prometheus.CONTENT_TYPE)


@router.get("/v1/models")
def models(
    request: Request, _p: Annotated[Principal, Depends(require(Role.ENGINEER))]
) -> dict[str, Any]:
    """The models a draft may ask for; the first is the default."""
    return {"models": services_of(request).allowed_models()}
