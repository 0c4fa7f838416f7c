"""The ASGI stack every request passes: the API, the staff console, the pages and their files,
and the page websocket (``/_event``), since Reflex mounts its backend inside the app that
:func:`build_stack` wraps.

Outermost first, and why there:

1. :class:`~referral_app.infra.client_ip.ProxyHeadersMiddleware`: the client's address and
   scheme from trusted proxies, once, for everything below (limits, logs, cookies' ``Secure``).
2. :class:`~referral_app.infra.metrics.MetricsMiddleware`: counts and times every request,
   refusals included, by route template.
3. :class:`~referral_app.infra.logs.RequestIdMiddleware`: the request id and the one access
   line per request, refusals included.
4. :class:`~referral_app.infra.gate.RequestGate`: an unknown ``Host`` (400), an oversized
   ``Cookie`` header (431), a tossed cookie (deleted with the answer), ``/metrics`` from
   outside its networks (404): decided on the request's head, before anything reads it.
5. :class:`~referral_app.infra.sockets.WebsocketLimit`: at most ``MAX_WEBSOCKETS_PER_CLIENT``
   open websockets per client.
6. :class:`~referral_app.infra.asgi.BodyWatch`: a body that trickles in gets 408, one the
   server could not decode 400 (not Granian's 500); it sees the server's own ``receive``.
7. :class:`~referral_app.infra.static_pages.FrontendServing`: ``/page`` served as ``/page/``
   and the prebuilt files' ``Cache-Control``.
8. :class:`~referral_app.infra.responses.ResponseHeaders`: security headers, ``Secure``
   cookies over HTTPS, the API's language; outside the two below, so that their answers
   (503, 413, 415) get them and are in the caller's language too.
9. :class:`~referral_app.infra.responses.DatabaseUnavailableGuard`: the database failing
   outside a route (a layer's lookup): 503 with ``Retry-After``.
10. :class:`~referral_app.infra.api_requests.ApiRequestMiddleware`: ``/api`` path aliases,
    the body limit, JSON-only bodies, JSON that can never be valid.
11. :class:`~referral_app.infra.responses.HeadAsGetMiddleware`: innermost, so the routes see
    ``HEAD`` as ``GET`` and everything above it (logs, metrics) sees ``HEAD``.

Starlette keeps its own outermost (the 500 page), and Reflex adds its CORS layer outside
these when it takes the app (``api_transformer``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.applications import Starlette
from starlette.types import ASGIApp

from referral_app.infra.api_requests import ApiRequestMiddleware, canonical_api_path
from referral_app.infra.asgi import BodyWatch
from referral_app.infra.client_ip import ProxyHeadersMiddleware
from referral_app.infra.gate import RequestGate
from referral_app.infra.logs import RequestIdMiddleware
from referral_app.infra.metrics import MetricsMiddleware
from referral_app.infra.responses import API_PREFIX, DatabaseUnavailableGuard, HeadAsGetMiddleware, ResponseHeaders
from referral_app.infra.sockets import WebsocketLimit
from referral_app.infra.static_pages import FrontendServing


def _metrics_path(path: str) -> str:
    return canonical_api_path(path) if path.startswith(API_PREFIX) else path


def build_stack(app: Starlette, routes: Callable[[], Iterable]) -> Starlette:
    """Wrap ``app`` (the FastAPI app, with the staff console mounted) in the layers of the
    module docstring, in that order; returns ``app``. ``routes`` returns the routes the
    metrics name requests by (``api.app.route_table``). Call it once, before the first request."""
    layers: list[tuple[Callable[..., ASGIApp], dict]] = [
        (ProxyHeadersMiddleware, {}),
        (MetricsMiddleware, {"routes": routes, "canonical_path": _metrics_path}),
        (RequestIdMiddleware, {}),
        (RequestGate, {}),
        (WebsocketLimit, {}),
        (BodyWatch, {}),
        (FrontendServing, {}),
        (ResponseHeaders, {}),
        (DatabaseUnavailableGuard, {}),
        (ApiRequestMiddleware, {}),
        (HeadAsGetMiddleware, {}),
    ]
    for layer, options in reversed(layers):  # add_middleware puts each one outside the last
        app.add_middleware(layer, **options)
    return app
