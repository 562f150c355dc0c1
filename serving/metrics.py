"""Prometheus metrics of the service: requests and latencies per route, models, scoring-run age.

Routes are labelled by their template (``/v1/customers/{customer_id}``), never by the
raw path: no customer id becomes a label, and the label set stays small. Each app has
its own registry, so several apps in one process (tests) do not collide.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values

from serving.logsafe import mark_sensitive, new_request_scope
from serving.schemas import ModelsReady

BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        # Importing Feast switches prometheus_client to multiprocess mode (file-backed values
        # shared by every same-named series of the process, for Feast's own gunicorn server).
        # The service is one process with its own registry: plain in-memory values.
        values.ValueClass = values.MutexValue
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cem_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cem_http_request_duration_seconds",
            "Request latency by route",
            ["method", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.model_version = Gauge(
            "cem_model_version",
            "Registered version of each champion model served",
            ["model"],
            registry=self.registry,
        )
        self.models_loaded = Gauge(
            "cem_models_loaded", "1 when champion models are loaded", registry=self.registry
        )
        self.registry_reachable = Gauge(
            "cem_model_registry_reachable", "1 when the last champion check worked", registry=self.registry
        )
        self.run_age = Gauge(
            "cem_scoring_run_age_seconds",
            "Seconds since the latest complete scoring run",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, models: ModelsReady, run_age: float | None) -> bytes:
        """The exposition text, gauges brought up to date first."""
        self.models_loaded.set(1 if models.loaded else 0)
        self.registry_reachable.set(1 if models.registry_reachable else 0)
        for name, version in models.versions.items():
            try:
                self.model_version.labels(name).set(float(version))
            except ValueError:
                self.model_version.labels(name).set(-1)
        self.run_age.set(float("nan") if run_age is None else run_age)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body copy): times every HTTP request by route template."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        new_request_scope()
        started, status = time.perf_counter(), 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                mark_sensitive(scope.get("path_params", {}).get("customer_id"))
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
