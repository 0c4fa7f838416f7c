"""The FastAPI app that Reflex mounts in front of its own backend (``api_transformer``)."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.routing import Match

from referral_app.admin.setup import mount_admin
from referral_app.api import browser_session, health, routes
from referral_app.api.errors import DatabaseUnavailableGuard, error_response, install_error_handlers
from referral_app.api.middleware import (
    ApiRequestMiddleware,
    HeadAsGetMiddleware,
    MalformedBodyMiddleware,
    ResponseHeaders,
    canonical_api_path,
)
from referral_app.infra import metrics
from referral_app.infra.client_ip import ProxyHeadersMiddleware, request_client_ip
from referral_app.infra.cookie_limit import CookieHeaderLimit
from referral_app.infra.internal_paths import InternalPathsMiddleware
from referral_app.infra.cookies import TossedCookieCleanup
from referral_app.infra.hosts import HostGuard
from referral_app.infra.static_pages import FrontendServing
from referral_app.infra.logs import RequestIdMiddleware
from referral_app.infra.server import BodyTimeoutMiddleware
from referral_app.infra.sockets import WebsocketLimit

DESCRIPTION = """
Phone sign-in with a one-time code, invite codes and referral lists.

* Every route answers under `/api/v1/` and, as in the original service, under `/api/`;
  the trailing slash is optional.
* Authenticate with `Authorization: Bearer <token>` (or `Token <token>`) from `auth_code`.
* Errors are JSON: `{"code": "...", "message": "...", "field": "..."}` (`field` for field errors).
* Messages are in the language of `Accept-Language` (English or Russian; best match, q-values
  honoured), named in the answer's `Content-Language`.
"""

api = FastAPIOffline(
    title="Referral API",
    version="1.0.0",
    description=DESCRIPTION,
    openapi_url="/api/openapi.json",
    docs_url="/api/docs",
    redoc_url=None,
    static_url="/api/static-docs",
    swagger_ui_oauth2_redirect_url="/api/docs/oauth2-redirect",
)
install_error_handlers(api)


def _openapi_without_422() -> dict:
    """FastAPI documents a 422 for every route; this API answers those errors with a 400."""
    if api.openapi_schema is None:
        schema = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes
        )
        for path_item in schema["paths"].values():
            for operation in path_item.values():
                operation["responses"].pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        api.openapi_schema = schema
    return api.openapi_schema


api.openapi = _openapi_without_422
# Innermost: the routes see HEAD as GET; everything outside it (logs, metrics) sees HEAD.
api.add_middleware(HeadAsGetMiddleware)
api.add_middleware(ApiRequestMiddleware)
# The database failing outside a route (a middleware's lookup): 503 with Retry-After.
api.add_middleware(DatabaseUnavailableGuard)
# Security headers, Secure cookies on HTTPS, Content-Language; outside ApiRequestMiddleware,
# so that its answers (413, 415) get them and are in the caller's language too.
api.add_middleware(ResponseHeaders)
api.add_middleware(FrontendServing)
# A body that trickles in is cut off (408) after HTTP_BODY_TIMEOUT_SECONDS.
api.add_middleware(BodyTimeoutMiddleware)
# A body the server could not decode (malformed chunks) is a 400, not Granian's 500.
api.add_middleware(MalformedBodyMiddleware)
# /metrics however spelt (/metrics%0a, /METRICS, //metrics): 404 outside METRICS_ALLOWED_NETWORKS.
api.add_middleware(InternalPathsMiddleware, not_found=lambda: error_response(404, "request.not_found"))
# At most MAX_WEBSOCKETS_PER_CLIENT open websockets per client address (403 beyond).
api.add_middleware(WebsocketLimit)
# A sibling's copy of one of our cookies is deleted with the answer (infra/cookies.py).
api.add_middleware(TossedCookieCleanup)
# A Cookie header over MAX_COOKIE_HEADER_BYTES: 431 and a page that clears the jar, before
# anything else reads it (a sibling site can toss a jar that big onto the parent domain).
api.add_middleware(CookieHeaderLimit)
# A Host the operator did not configure (ALLOWED_HOSTS) gets 400 before anything else runs.
api.add_middleware(HostGuard)
# It times, ids and logs every request, including those the others refuse.
api.add_middleware(RequestIdMiddleware)
# Counts and times every request (referral_app/infra/metrics.py).
api.add_middleware(
    metrics.MetricsMiddleware,
    routes=lambda: [*routes.router.routes, *browser_session.router.routes, *health.router.routes, *api.router.routes],
    canonical_path=lambda path: canonical_api_path(path) if path.startswith("/api/") else path,
)
# Outermost: the client's address and scheme from trusted proxies, once, for all of the above.
api.add_middleware(ProxyHeadersMiddleware)
api.include_router(routes.router)
api.include_router(browser_session.router)
api.include_router(health.router)
mount_admin(api)


@api.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """The Prometheus text format, for clients in ``METRICS_ALLOWED_NETWORKS`` only; to
    anyone else it does not exist (the same 404 as any unknown path)."""
    if not metrics.may_read_metrics(request_client_ip(request.scope)):
        return error_response(404, "request.not_found")
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type, headers={"Cache-Control": "no-store"})


@api.api_route(
    "/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"], include_in_schema=False
)
def unknown_api_route(request: Request):
    """Anything else under /api is a JSON 404 (or 405), never the web app's HTML page."""
    allowed = set()
    for route in routes.router.routes + browser_session.router.routes + health.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.PARTIAL:
            allowed |= route.methods
    if allowed:
        return error_response(405, "request.method_not_allowed", headers={"Allow": ", ".join(sorted(allowed))})
    return error_response(404, "request.not_found")
