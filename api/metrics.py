"""Prometheus metrics: requests by route and status, latency histogram, draft jobs by status.

A small hand-written exposition (text format 0.0.4) instead of a client library: three metric
families, no labels beyond method, route template and status.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counters and histograms, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request."""
        with self._lock:
            self.requests[(method, route, status)] += 1
            key = (method, route)
            counts = self.buckets.setdefault(key, [0] * (len(BUCKETS) + 1))
            counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[key] += seconds

    def render(self, jobs: dict[str, int]) -> str:
        """The exposition text."""
        lines = [
            "# HELP rca_http_requests_total HTTP requests by method, route and status.",
            "# TYPE rca_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), count in sorted(self.requests.items()):
                lines.append(
                    f'rca_http_requests_total{{method="{method}",route="{_esc(route)}",'
                    f'status="{status}"}} {count}'
                )
            lines += [
                "# HELP rca_http_request_seconds HTTP request latency.",
                "# TYPE rca_http_request_seconds histogram",
            ]
            for (method, route), counts in sorted(self.buckets.items()):
                labels = f'method="{method}",route="{_esc(route)}"'
                running = 0
                for bound, count in zip((*BUCKETS, float("inf")), counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f'rca_http_request_seconds_bucket{{{labels},le="{le}"}} {running}')
                lines.append(
                    f"rca_http_request_seconds_sum{{{labels}}} {self.sums[(method, route)]:.6f}"
                )
                lines.append(f"rca_http_request_seconds_count{{{labels}}} {running}")
        lines += [
            "# HELP rca_draft_jobs Draft jobs by status.",
            "# TYPE rca_draft_jobs gauge",
        ]
        lines += [f'rca_draft_jobs{{status="{s}"}} {n}' for s, n in sorted(jobs.items())]
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsMiddleware:
    """Times every HTTP request; the route label is the matched route's template (so ids do
    not blow up the label set), or `unmatched`."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
