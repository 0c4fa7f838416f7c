"""The REST API: the FastAPI app with its routes, its error format and its OpenAPI document.

``referral_app.py`` mounts the staff console on it, wraps it in the ASGI stack every request
passes (``infra/stack.py``) and hands it to Reflex, which mounts its own backend (the pages,
``/_event``) inside it (``api_transformer``)."""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.routing import Match

from referral_app.api import browser_session, health, routes
from referral_app.api.errors import install_error_handlers
from referral_app.infra import metrics
from referral_app.infra.client_ip import request_client_ip
from referral_app.infra.responses import error_response

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
api.include_router(routes.router)
api.include_router(browser_session.router)
api.include_router(health.router)


def route_table() -> list:
    """The app's routes in the order they are tried, the included routers' own first (FastAPI
    lists an included router as one entry without a path): what the metrics name requests by.
    Read at each request, since Reflex mounts its backend after the app is built."""
    return [*routes.router.routes, *browser_session.router.routes, *health.router.routes, *api.router.routes]


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
