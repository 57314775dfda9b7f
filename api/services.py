"""Everything the routes and workers share, built once by `create_app` from the settings."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import ParamSpec, TypeVar

import anyio

from rca.config import Settings
from rca.domain import ActionStatus, Incident
from rca.domain.additions import EvidenceAdditions, IncidentChange, NewTimelineEvent
from rca.domain.change import as_timeline_event
from rca.domain.similar import SearchFilters, SearchMode, SearchResult, SimilarHit
from rca.drafting import Drafter
from rca.errors import InvalidArgument, RcaError
from rca.insights.measures import report
from rca.insights.recurrence import propose_recurrences
from rca.llm import LlmClient, client_from_settings
from rca.ports import Embedder
from rca.redaction import Redactor
from rca.review import Reviews
from rca.store import Store
from rca.store.changes import ChangeFeed
from rca.store.idempotency import IdempotencyKeys
from rca.store.integrations import Integrations
from rca.store.jobs import DraftJob, DraftJobs
from rca.store.keys import ApiKeys, Principal
from rca.store.recurrences import Recurrence, decide
from rca.store.sessions import WebSessions
from retrieval.history import SearchHistory, drafting_options
from retrieval.service import Retrieval, open_retrieval

P = ParamSpec("P")
T = TypeVar("T")
BASELINE = "baseline"
log = logging.getLogger("rca.api")


@dataclass
class Services:
    """The store, search, model clients and the service tables."""

    settings: Settings
    store: Store
    retrieval: Retrieval
    keys: ApiKeys
    jobs: DraftJobs
    reviews: Reviews
    idempotency: IdempotencyKeys
    sessions: WebSessions
    integrations: Integrations
    changes: ChangeFeed
    _clients: dict[str, LlmClient | None] = field(default_factory=dict)
    _read_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
        field(default_factory=weakref.WeakKeyDictionary)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, settings: Settings, embedder: Embedder | None = None) -> Services:
        """Open the store (migrating it) and wire search; models load on first use."""
        store = Store.open(settings)
        api = settings.api
        return cls(
            settings=settings,
            store=store,
            retrieval=open_retrieval(settings, store, embedder),
            keys=ApiKeys(store.engine, remember_s=api.key_cache_s),
            jobs=DraftJobs(
                store.engine,
                lease=timedelta(seconds=api.lease_s),
                max_attempts=api.max_attempts,
                max_queued=api.max_queued_drafts,
                max_queued_per_key=api.max_queued_drafts_per_key,
            ),
            reviews=Reviews(store.engine, Redactor(ip_addresses=settings.redaction.ip_addresses)),
            idempotency=IdempotencyKeys(store.engine),
            sessions=WebSessions(store.engine),
            integrations=Integrations(store.engine),
            changes=ChangeFeed(store.engine),
        )

    async def quick(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a short read: inline on the event loop for SQLite (an indexed local read takes
        well under a millisecond, less than handing it to a thread and back under load); for a
        database across the network in a worker thread, at most `api.read_threads` at once
        (more threads waiting on the GIL and the database measured tails of a second at 32
        clients, fewer than the throughput lost)."""
        if self.store.engine.dialect.name == "sqlite":
            return read(*args, **kwargs)
        call = functools.partial(read, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self._read_limiter())

    def _read_limiter(self) -> anyio.CapacityLimiter:
        """The read threads' limiter of the running event loop (one per loop: a limiter is
        bound to the loop it is first used on)."""
        loop = asyncio.get_running_loop()
        limiter = self._read_limiters.get(loop)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self.settings.api.read_threads)
            self._read_limiters[loop] = limiter
        return limiter

    def warm_up(self) -> None:
        """Load what the first search would load (embedding model, vector index, lexical
        corpus) and the insights' columns, so the first requests do not wait for them and the
        long-lived objects exist before `create_app` freezes them out of the garbage
        collector's full passes."""
        try:
            self.retrieval.search.search("warm up the search path", k=1)
        except RcaError as err:  # an empty or unavailable index: /readyz reports it
            log.info("warm-up search skipped: %s", err)
        try:
            report(self.store)  # the insights' columns, read once here instead of by a request
        except RcaError as err:  # pragma: no cover - a store that cannot be read fails later
            log.info("warm-up insights skipped: %s", err)

    def submit_draft(self, incident_id: str, model: str, principal: Principal) -> DraftJob:
        """Queue a draft job, or refuse with Busy (429, Retry-After) when the queue, or the
        principal's key's share of it, is full (checked atomically by `DraftJobs.submit`)."""
        return self.jobs.submit(
            incident_id,
            model,
            requested_by=principal.name,
            deadline=timedelta(seconds=self.settings.api.draft_deadline_s),
            requested_key=principal.key_id,
        )

    def attach_changes(self, incident_id: str) -> int:
        """Add the change feed's changes on the incident's services, from shortly before it
        started to shortly after, to its timeline as candidate triggers (a new revision when
        any is new); how many were new."""
        incident = self.store.get_incident(incident_id)
        window = self.settings.integrations
        if not incident.services or not window.max_attached_changes:
            return 0
        found = self.changes.between(
            incident.services,
            incident.started_at - timedelta(seconds=window.changes_before_s),
            incident.started_at + timedelta(seconds=window.changes_after_s),
            window.max_attached_changes,
        )
        if not found:
            return 0
        events = [NewTimelineEvent(**as_timeline_event(c).model_dump()) for c in found]
        change = IncidentChange(evidence=EvidenceAdditions(timeline=events))
        done = self.store.change_incident(incident_id, change, "change feed", "changes")
        return len(done.added)

    def propose_recurrences(self, postmortem_id: str) -> int:
        """Propose links from a postmortem to past ones of the same failure (similar search on
        its own text plus the failure-mode library); how many new proposals."""
        return propose_recurrences(self.store, self.similar, postmortem_id)

    def decide_recurrence(
        self, postmortem_id: str, past_postmortem_id: str, confirm: bool, actor: str
    ) -> Recurrence:
        """Confirm or dismiss a proposed recurrence. Confirming records the past postmortem's
        action items still open (open or in progress): the fix promised last time had not
        landed when the failure came back."""
        still_open: list[str] = []
        if confirm:
            statuses = [ActionStatus.OPEN, ActionStatus.IN_PROGRESS]
            rows = self.store.action_item_page(
                200, None, statuses, postmortem_id=past_postmortem_id
            )
            still_open = [row.action.text for row in rows]
        engine = self.store.engine
        return decide(engine, postmortem_id, past_postmortem_id, confirm, actor, still_open)

    async def search_similar(
        self,
        query: str | Incident,
        k: int,
        filters: SearchFilters | None = None,
        mode: SearchMode = "hybrid",
    ) -> SearchResult:
        """`SimilarSearch.search` for a request: a search asked again while nothing changed
        is a short read (`quick`); any other runs in a request thread. (In the request threads
        on PostgreSQL, repeated searches' database reads waited on the GIL with the slow ones:
        p99 0.6-0.8 s at 32 clients, against 73 ms on SQLite.)"""
        search = self.retrieval.search
        kept, state = await self.quick(search.kept, query, k, filters, mode)
        if kept is not None:
            return kept
        call = functools.partial(search.search, query, k, filters, mode, state)
        return await anyio.to_thread.run_sync(call)

    def similar(self, text: str, k: int) -> list[SimilarHit]:
        """The `k` past postmortems most similar to a text (hybrid search)."""
        return self.retrieval.search.search(text, k=k).hits

    def propose_recurrences_quietly(self, postmortem_id: str) -> None:
        """`propose_recurrences` after a finalization: a failure (the index unavailable, say)
        is logged and leaves the finalization alone; proposing again is one request away."""
        try:
            self.propose_recurrences(postmortem_id)
        except RcaError as err:
            log.warning("recurrence proposals for %s skipped: %s", postmortem_id, err)

    def allowed_models(self) -> list[str]:
        """Models a draft may ask for: the configured one, its fallbacks, and the baseline."""
        llm = self.settings.llm
        return list(dict.fromkeys([llm.model, *llm.fallbacks, BASELINE]))

    def check_model(self, model: str | None) -> str:
        """The model a draft request names (default: the configured one), if allowed."""
        chosen = model or self.settings.llm.model
        if chosen not in self.allowed_models():
            raise InvalidArgument(
                f"model {chosen!r} is not configured; use one of {', '.join(self.allowed_models())}"
            )
        return chosen

    def client(self, model: str) -> LlmClient | None:
        """The model client for `model` (None for the baseline), made once."""
        with self._lock:
            if model not in self._clients:
                if model == BASELINE:
                    self._clients[model] = None
                else:
                    llm = self.settings.llm.model_copy(update={"model": model})
                    settings = self.settings.model_copy(update={"llm": llm})
                    self._clients[model] = client_from_settings(settings)
            return self._clients[model]

    def drafter(self, model: str) -> Drafter:
        """A drafter for `model` with the store's history. A draft job needs the model: when
        it answers nothing, the job fails (retryable) rather than store a rules-only draft."""
        llm = self.settings.llm.model_copy(update={"model": model})
        options = replace(
            drafting_options(self.settings.model_copy(update={"llm": llm})), model_required=True
        )
        return Drafter(
            self.client(model),
            SearchHistory(self.retrieval.search),
            Redactor(ip_addresses=self.settings.redaction.ip_addresses),
            options=options,
            embedder=self.retrieval.embedder,
        )

    def close(self) -> None:
        """Free models, the index client and the database pool."""
        for client in self._clients.values():
            if client is not None:
                try:
                    client.close()
                except RcaError:  # pragma: no cover - closing never matters for correctness
                    log.warning("closing a model client failed")
        self.retrieval.close()
        self.store.close()
