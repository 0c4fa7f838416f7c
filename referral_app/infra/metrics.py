"""Prometheus metrics (prometheus-client): what ``GET /metrics`` shows.

- ``referral_http_requests_total{method, route, status}`` and
  ``referral_http_request_duration_seconds{method, route}`` (a histogram, seconds): every
  HTTP request, by route template (``/api/v1/profile/me/``, ``/admin/{identity}/list``,
  ``/{path}`` for the pages and their files), never by raw path, so the number of series
  stays bounded. The websocket (``/_event``) is not an HTTP request here.
- ``referral_sign_ins_total``, ``referral_invite_activations_total``,
  ``referral_codes_sent_total``: counted from the domain's events
  (``referral_app.domain.events``, subscribers on the bus), so every door counts alike.
- ``referral_live_subscribers``: open profile pages waiting for live updates (a gauge).
- ``referral_state_blobs_rejected_total{kind}``: stored page state (``state``) or Reflex
  token-manager records (``token_manager``) refused before unpickling, for want of a valid
  MAC (``infra/state_mac.py``): above zero, something else writes to the app's Redis or
  state directory, or ``SECRET_KEY`` changed.
- ``referral_log_records_suppressed_total{logger}``: warnings and errors a client caused
  beyond ``LOG_RECORDS_PER_CLIENT_MINUTE``, counted instead of written (``infra/logs.py``);
  ``referral_websockets_refused_total``: handshakes refused by ``MAX_WEBSOCKETS_PER_CLIENT``.

Several worker processes (Granian workers) add up through prometheus-client's
multiprocess mode: when ``PROMETHEUS_MULTIPROC_DIR`` is set (``scripts/run.sh`` and the
container's entrypoint make a fresh, empty one per instance at each start), every
process writes its values there and ``/metrics`` sums them. Without it (tests, one
process) the values live in the process.

Other modules count through this module's small API (:func:`count`,
:func:`track_live_subscriber`, :class:`MetricsMiddleware`), never through
prometheus-client directly. Who may read ``/metrics`` is :func:`may_read_metrics`
(``METRICS_ALLOWED_NETWORKS``, default loopback).
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cache

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.domain.events import CodeSent, InviteActivated, UserSignedIn
from referral_app.settings import settings

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "referral_http_requests_total", "HTTP requests answered, by route template and status.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "referral_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SIGN_INS = Counter("referral_sign_ins_total", "Sign-ins with a correct code (new and returning users).")
ACTIVATIONS = Counter("referral_invite_activations_total", "Invite codes activated.")
CODES_SENT = Counter("referral_codes_sent_total", "Confirmation codes handed to the SMS gateway.")
WEBHOOK_ATTEMPTS = Counter(
    "referral_webhook_attempts_total",
    "Webhook delivery attempts, by the event's status after the attempt "
    "(delivered, pending: to be retried, failed: retries over, stale: its lease had passed).",
    ["status"],
)
LOG_RECORDS_SUPPRESSED = Counter(
    "referral_log_records_suppressed_total",
    "Log records a client caused beyond LOG_RECORDS_PER_CLIENT_MINUTE: counted here, not written, "
    "by the logger that made them.",
    ["logger"],
)
WEBSOCKETS_REFUSED = Counter(
    "referral_websockets_refused_total",
    "Websocket handshakes refused because the client address held MAX_WEBSOCKETS_PER_CLIENT already.",
)
LIVE_SUBSCRIBERS = Gauge(
    "referral_live_subscribers",
    "Open profile pages subscribed to live referral updates.",
    multiprocess_mode="livesum",
)

def count_code_sent(_event: CodeSent) -> None:
    """A subscriber of ``CodeSent`` (referral_app/services/subscribers.py)."""
    CODES_SENT.inc()


def count_sign_in(_event: UserSignedIn) -> None:
    """A subscriber of ``UserSignedIn``."""
    SIGN_INS.inc()


def count_activation(_event: InviteActivated) -> None:
    """A subscriber of ``InviteActivated``."""
    ACTIVATIONS.inc()


def count_webhook_attempt(status: str) -> None:
    """Count one delivery attempt by the event's status after it (``domain.webhooks.record_attempt``)."""
    WEBHOOK_ATTEMPTS.labels(status=status).inc()


STATE_BLOBS_REJECTED = Counter(
    "referral_state_blobs_rejected_total",
    "Stored blobs refused before unpickling for want of a valid MAC (state: page state; token_manager).",
    ["kind"],
)


def count_rejected_state_blob(kind: str) -> None:
    """Count one stored blob ``infra/state_mac.py`` refused (``kind``: ``state`` or ``token_manager``)."""
    STATE_BLOBS_REJECTED.labels(kind=kind).inc()


def count_suppressed_log_record(logger: str) -> None:
    """Count one log record the per-client limit kept out of the log (``infra/logs.py``)."""
    LOG_RECORDS_SUPPRESSED.labels(logger=logger).inc()


def count_refused_websocket() -> None:
    """Count one websocket handshake refused by the per-client limit (``infra/sockets.py``)."""
    WEBSOCKETS_REFUSED.inc()


@contextmanager
def track_live_subscriber() -> Iterator[None]:
    """``with track_live_subscriber():`` around the life of one live-update subscription."""
    LIVE_SUBSCRIBERS.inc()
    try:
        yield
    finally:
        LIVE_SUBSCRIBERS.dec()


if MULTIPROCESS:  # pragma: no branch - a worker's live gauge values leave with it
    atexit.register(multiprocess.mark_process_dead, os.getpid())


def exposition() -> tuple[bytes, str]:
    """(body, content type) of the text format, summed over the instance's processes."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


@cache
def _networks(values: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(value, strict=False) for value in values)


def may_read_metrics(address: str) -> bool:
    """Whether the client (as ``ProxyHeadersMiddleware`` resolved it) is in ``METRICS_ALLOWED_NETWORKS``."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in _networks(settings.metrics_allowed_networks))


def route_template(routes: Iterable, scope: Scope) -> str:
    """The template of the route that answers ``scope`` (mounts followed), or ``unmatched``."""
    prefix = ""
    while True:
        for route in routes:
            if getattr(route, "path", None) is None:  # e.g. FastAPI's included routers: listed apart
                continue
            match, child = route.matches(scope)
            if match == Match.NONE:  # PARTIAL: the path matches, the method does not (a 405)
                continue
            if isinstance(route, Mount):
                inner = getattr(route.app, "routes", None) or getattr(getattr(route.app, "router", None), "routes", None)
                if inner:
                    prefix += route.path
                    scope = {**scope, **child}
                    routes = inner
                    break
                return prefix + route.path + "/{path}"
            return prefix + route.path
        else:
            return prefix + "/{path}" if prefix else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (ASGI middleware).

    ``routes`` returns the app's routes (read at each request: Reflex adds its own after
    the app is built); ``canonical_path`` maps a path to the one the routes know (the API's
    aliases).
    """

    # Route templates remembered per (routes, method, root path, path): a request's template is
    # a function of those alone, and finding it tries the routes one by one. Bounded: at most
    # this many, for paths up to MAX_REMEMBERED_PATH characters.
    MAX_REMEMBERED = 4096
    MAX_REMEMBERED_PATH = 256

    def __init__(
        self, app: ASGIApp, routes: Callable[[], Iterable], canonical_path: Callable[[str], str] = lambda path: path
    ) -> None:
        self.app = app
        self.routes = routes
        self.canonical_path = canonical_path
        self.templates: dict[tuple, str] = {}
        # The labelled series, as prometheus_client's labels() would find them (it takes a lock).
        self.series: dict[tuple, tuple] = {}

    def _template(self, probe: Scope) -> str:
        routes = list(self.routes())
        key = (len(routes), probe["method"], probe.get("root_path", ""), probe["path"])
        template = self.templates.get(key)
        if template is None:
            template = route_template(routes, probe)
            if len(probe["path"]) > self.MAX_REMEMBERED_PATH:
                return template
            if len(self.templates) >= self.MAX_REMEMBERED:
                self.templates.clear()
            self.templates[key] = template
        return template

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # A copy as it arrives: the routers below update the scope they are given.
        probe = {**scope, "path": self.canonical_path(scope["path"])}

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"]
            try:
                route = self._template(probe)
            except Exception:  # noqa: BLE001 - a metric must never fail a request
                route = "unmatched"
            key = (method, route, status)
            series = self.series.get(key)
            if series is None:
                series = (REQUEST_SECONDS.labels(method, route), REQUESTS.labels(method, route, str(status)))
                if len(self.series) >= self.MAX_REMEMBERED:
                    self.series.clear()
                self.series[key] = series
            series[0].observe(time.perf_counter() - started)
            series[1].inc()
