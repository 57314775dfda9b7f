"""Prometheus metrics with `prometheus-client`, counted across every process of `rca serve`.

Exported at `/metrics` (admin role):

- `rca_http_requests_total{method,route,status}` and the histogram
  `rca_http_request_seconds{method,route}`. `route` is the template of the route the request
  matched, or would have matched had it not been refused first (`/v1/drafts/{draft_id}`),
  the path of a mounted app (`/mcp`, `/ui/static`), or `unmatched`; never the raw path.
- `rca_draft_job_seconds{outcome}` (histogram): a draft job from claim to end, by `succeeded`,
  `failed` or `lease_lost`.
- `rca_model_tokens_total{model,kind}` (`prompt`, `completion`), `rca_model_cost_usd_total{model}`
  and `rca_model_calls_total{model,ok}`, from the usage of each draft made.
- `rca_webhooks_received_total{integration,outcome}`: deliveries to `/v1/hooks/alertmanager`,
  `/pagerduty`, `/github` and Slack history uploads, by what they did (`opened`, `appended`,
  ...) or why they were refused (`unauthorized`, `invalid`, ...).
- `rca_webhook_deliveries_total{outcome}`: outbound webhook attempts (`delivered`, `failed`
  and to be retried, `dead`).
- Read from the database at scrape time: `rca_draft_jobs{status}`, `rca_draft_queue_depth`
  (queued jobs) and `rca_index_outbox_pending` (finalized postmortems not yet indexed).

Labels take values from closed sets (methods, route templates, model names of the configured
list, integration kinds, outcomes); anything else is `other`.

Multi-process mode: with `PROMETHEUS_MULTIPROC_DIR` set (by `rca serve --workers N`, for its
server processes and its `rca worker`, before they import this module), each process writes
its samples to files there and a scrape sums them all (`MultiProcessCollector`). Without it,
the process exports its own samples.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rca.domain.draft import DraftUsage

if TYPE_CHECKING:
    from api.services import Services

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's own variable: where the processes' sample files live."""
CONTENT_TYPE: Final = prometheus_client.CONTENT_TYPE_LATEST
OTHER: Final = "other"
UNMATCHED: Final = "unmatched"
METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HOOK_ROUTES: Final = {
    "/v1/hooks/alertmanager": "alertmanager",
    "/v1/hooks/pagerduty": "pagerduty",
    "/v1/hooks/github": "github",
    "/v1/incidents/{incident_id}/evidence/slack": "slack",
}
"""The routes of webhook intake and the integration each serves."""
INTAKE_OUTCOMES: Final = frozenset(
    {"opened", "appended", "resolved", "unchanged", "repeat", "ignored", "recorded"}
)
_REFUSALS: Final = {
    400: "invalid",
    401: "unauthorized",
    403: "unauthorized",
    413: "too_large",
    422: "invalid",
    429: "busy",
}
_INTAKE_KEY: Final = "rca_intake_outcome"
DraftOutcome = Literal["succeeded", "failed", "lease_lost"]
DeliveryOutcome = Literal["delivered", "failed", "dead"]

# In multi-process mode `_created` samples are not exported; leave them out in both modes.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
_OWN = CollectorRegistry()
"""This process's samples, when not in multi-process mode."""

HTTP_REQUESTS = Counter(
    "rca_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=_OWN,
)
HTTP_SECONDS = Histogram(
    "rca_http_request_seconds",
    "HTTP request latency by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=_OWN,
)
DRAFT_SECONDS = Histogram(
    "rca_draft_job_seconds",
    "Draft jobs from claim to end, by outcome.",
    ["outcome"],
    buckets=(1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0),
    registry=_OWN,
)
MODEL_TOKENS = Counter(
    "rca_model_tokens",
    "Model tokens of the drafts made, by model and kind (prompt, completion).",
    ["model", "kind"],
    registry=_OWN,
)
MODEL_COST = Counter(
    "rca_model_cost_usd",
    "Model cost of the drafts made, in US dollars (0 for local models), by model.",
    ["model"],
    registry=_OWN,
)
MODEL_CALLS = Counter(
    "rca_model_calls",
    "Model calls of the drafts made, by model and whether they answered.",
    ["model", "ok"],
    registry=_OWN,
)
WEBHOOKS_RECEIVED = Counter(
    "rca_webhooks_received",
    "Webhook deliveries from other tools, by integration and outcome.",
    ["integration", "outcome"],
    registry=_OWN,
)
WEBHOOK_DELIVERIES = Counter(
    "rca_webhook_deliveries",
    "Outbound webhook delivery attempts, by outcome.",
    ["outcome"],
    registry=_OWN,
)


# --- labels ---------------------------------------------------------------------------------


def method_label(method: str) -> str:
    """An HTTP method, or `other` (a client may send any token there)."""
    return method if method in METHODS else OTHER


def route_label(scope: Scope) -> str:
    """The template of the route a request went to, or would have gone to: a request refused
    before routing (no key, too large) is looked up among the app's routes (a full match
    first, else one for another method); a mounted app counts under its mount path."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str) and path:
        return path
    partial: str | None = None
    for route in walk_routes(getattr(scope.get("app"), "routes", ())):
        match, _child = route.matches(scope)
        if match is Match.FULL:
            return str(route.path)
        if match is Match.PARTIAL and partial is None:
            partial = str(route.path)
    return partial or UNMATCHED


def walk_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes with a path, in the order the router tries them. FastAPI keeps an included
    router as one entry (its routes, prefix applied, in `original_router`)."""
    for route in routes:
        if isinstance(getattr(route, "path", None), str):
            yield route
        else:
            inner = getattr(getattr(route, "original_router", None), "routes", None)
            yield from walk_routes(inner or ())


def model_label(model: str, allowed: Iterable[str]) -> str:
    """A model name if configured (a split `a+b` allows both halves), else `other`."""
    known = {part for name in allowed for part in (name, *name.split("+"))}
    return model if model in known else OTHER


def intake_label(outcome: str | None, status: int) -> str:
    """What a webhook delivery did, or why it was refused (from the answer's status)."""
    if outcome is not None:
        return outcome if outcome in INTAKE_OUTCOMES else OTHER
    if status in (200, 201, 202):
        return "unchanged" if status == 200 else "appended"
    if status >= 500:
        return "error"
    return _REFUSALS.get(status, OTHER)


def note_intake(request: Request, outcome: str) -> None:
    """Say what a webhook delivery did, for `rca_webhooks_received_total`."""
    request.scope.setdefault("state", {})[_INTAKE_KEY] = outcome  # `request.state`


# --- recording ------------------------------------------------------------------------------


def draft_finished(outcome: DraftOutcome, seconds: float) -> None:
    """Count a draft job that ended."""
    DRAFT_SECONDS.labels(outcome).observe(seconds)


def model_usage(usage: DraftUsage, allowed: Sequence[str]) -> None:
    """Count a draft's model calls, tokens and cost."""
    for call in usage.calls:
        model = model_label(call.model, allowed)
        MODEL_CALLS.labels(model, "true" if call.ok else "false").inc()
        MODEL_TOKENS.labels(model, "prompt").inc(call.prompt_tokens)
        MODEL_TOKENS.labels(model, "completion").inc(call.completion_tokens)
        MODEL_COST.labels(model).inc(max(call.cost_usd, 0.0))


def webhook_delivery(outcome: DeliveryOutcome) -> None:
    """Count an outbound webhook attempt."""
    WEBHOOK_DELIVERIES.labels(outcome).inc()


class MetricsMiddleware:
    """Times and counts every HTTP request, refusals included (it runs outside them), and
    counts the webhook deliveries among them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        state = scope.setdefault("state", {})  # shared with the request: `note_intake`

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            method, route = method_label(scope["method"]), route_label(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            integration = HOOK_ROUTES.get(route)
            if integration is not None and method == "POST":
                outcome = intake_label(state.get(_INTAKE_KEY), status)
                WEBHOOKS_RECEIVED.labels(integration, outcome).inc()


# --- exposition -----------------------------------------------------------------------------


class _ThisProcess(Collector):
    def collect(self) -> Iterable[Metric]:
        return _OWN.collect()


class _StoreGauges(Collector):
    """Gauges read from the database at scrape time (the same whichever process answers)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterable[Metric]:
        counts = self.services.jobs.counts()
        jobs = GaugeMetricFamily("rca_draft_jobs", "Draft jobs by status.", labels=["status"])
        for status, count in sorted(counts.items()):
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily(
            "rca_draft_queue_depth", "Draft jobs waiting for a worker.", counts.get("queued", 0)
        )
        yield GaugeMetricFamily(
            "rca_index_outbox_pending",
            "Index lag: finalized postmortems waiting in the outbox to be indexed.",
            self.services.store.index_state.pending_count(),
        )


def multiprocess_dir() -> Path | None:
    """The shared directory of multi-process mode, if this process is in it."""
    found = os.environ.get(MULTIPROC_ENV)
    return Path(found) if found else None


def exposition(services: Services) -> bytes:
    """The text of a scrape: every process's samples (or this one's), and the gauges read
    from the database."""
    registry = CollectorRegistry(auto_describe=False)
    shared = multiprocess_dir()
    if shared is not None:
        MultiProcessCollector(registry, str(shared))  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    registry.register(_StoreGauges(services))
    return generate_latest(registry)


# --- the multi-process directory ------------------------------------------------------------


def start_multiprocess(data_dir: Path) -> tuple[Path, bool]:
    """Put the processes started from here (after this call) in multi-process mode: the
    directory named by `PROMETHEUS_MULTIPROC_DIR` with its sample files of earlier runs
    removed, else a new one, `metrics/<pid>` under the data directory. Directories left there
    by supervisors that no longer run (SIGKILLed, say) are removed first. The directory, and
    whether it is ours to remove."""
    given = multiprocess_dir()
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        for stale in given.glob("*.db"):
            stale.unlink(missing_ok=True)
        return given, False
    parent = data_dir / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    for left in parent.iterdir():
        if left.is_dir() and left.name.isdigit() and not _running(int(left.name)):
            shutil.rmtree(left, ignore_errors=True)
    made = parent / str(os.getpid())
    shutil.rmtree(made, ignore_errors=True)  # a pid reused since an earlier run
    made.mkdir()
    os.environ[MULTIPROC_ENV] = str(made)
    return made, True


def _running(pid: int) -> bool:
    """Whether a process with this pid exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def end_multiprocess(directory: Path, ours: bool) -> None:
    """Remove the directory `start_multiprocess` made."""
    if ours:
        shutil.rmtree(directory, ignore_errors=True)


def process_ended(pid: int) -> None:
    """Let a process's live gauges go (multi-process mode); its counters keep counting."""
    shared = multiprocess_dir()
    if shared is not None:
        mark_process_dead(pid, str(shared))  # type: ignore[no-untyped-call]
