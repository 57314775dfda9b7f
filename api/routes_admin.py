"""Administration: API keys and vector-index maintenance (admin role only)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.auth import require
from api.routes_incidents import services_of
from api.schemas_postmortems import (
    IndexCheckResult,
    IndexSyncResult,
    KeyCreate,
    KeyCreated,
    KeyPublic,
)
from rca.store.keys import Principal, Role

router = APIRouter(prefix="/v1/admin", tags=["admin"])
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


@router.post("/keys", status_code=201, response_model=KeyCreated)
def create_key(body: KeyCreate, request: Request, response: Response, _p: Admin) -> KeyCreated:
    """A new API key; the full key is in this answer only (it is stored hashed)."""
    lifetime = timedelta(days=body.expires_days) if body.expires_days is not None else None
    key, info = services_of(request).keys.create(body.name, body.role, lifetime)
    response.headers["Cache-Control"] = "no-store"
    return KeyCreated(key=key, **KeyPublic.of(info).model_dump())


@router.get("/keys", response_model=list[KeyPublic])
def list_keys(request: Request, _p: Admin) -> list[KeyPublic]:
    """Every key, newest first, without secrets."""
    return [KeyPublic.of(info) for info in services_of(request).keys.list()]


@router.delete("/keys/{key_id}", response_model=KeyPublic)
def revoke_key(
    key_id: Annotated[str, Path(max_length=32)], request: Request, _p: Admin
) -> KeyPublic:
    """Revoke a key (revoking it again changes nothing); requests with it then get 401."""
    return KeyPublic.of(services_of(request).keys.revoke(key_id))


@router.post("/index/sync", response_model=IndexSyncResult)
def sync_index(request: Request, _p: Admin) -> IndexSyncResult:
    """Index every postmortem revision waiting in the outbox (rebuild a missing collection);
    503 while another process writes the index."""
    return IndexSyncResult.of(services_of(request).retrieval.indexer.sync())


@router.post("/index/check", response_model=IndexCheckResult)
def check_index(
    request: Request,
    _p: Admin,
    repair: Annotated[bool, Query(description="Repair drift found (default: yes).")] = True,
) -> IndexCheckResult:
    """Compare the store's latest revisions with the vector index and repair drift."""
    return IndexCheckResult.of(services_of(request).retrieval.indexer.check(repair=repair))
