"""One error format for the whole API: ``{"code", "message", "field"?}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.domain.errors import DomainError, NotAuthenticated, RateLimited, Unavailable

# Domain errors whose HTTP status is not 400 (besides the classes handled below).
STATUS_BY_CODE = {"request.origin_not_allowed": 403}
from referral_app.i18n import translate
from referral_app.infra.db import RETRY_AFTER_SECONDS, UNAVAILABLE_ERRORS

logger = logging.getLogger(__name__)

# Clients that send no credentials are told how to send them.
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="api"'}


def error_response(
    status: int, code: str, field: str | None = None, headers: dict[str, str] | None = None, **params: Any
) -> JSONResponse:
    """A JSON error with a machine-readable ``code`` and the catalogue's ``message``."""
    body: dict[str, Any] = {"code": code, "message": translate(code, **params)}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def _domain_error(_request: Request, error: DomainError) -> JSONResponse:
    if isinstance(error, NotAuthenticated):
        return error_response(401, error.code, headers=WWW_AUTHENTICATE)
    if isinstance(error, RateLimited):
        return error_response(429, error.code, headers={"Retry-After": str(error.retry_after)}, **error.params)
    if isinstance(error, Unavailable):
        return error_response(503, error.code, headers={"Retry-After": str(error.retry_after)})
    return error_response(STATUS_BY_CODE.get(error.code, 400), error.code, field=error.field, **error.params)


def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 becomes a 400 naming the first bad field."""
    first = error.errors()[0]
    kind, location = first.get("type", ""), [str(part) for part in first.get("loc", ())]
    if kind == "json_invalid":
        return error_response(400, "request.invalid_json")
    if len(location) < 2:
        return error_response(400, "request.body_not_object")
    field = location[-1]
    if kind == "missing":
        return error_response(400, "request.field_missing", field=field)
    return error_response(400, "request.field_invalid", field=field)


# A client error is never "try again": each status has a code that says what is wrong.
HTTP_ERROR_CODES = {
    400: "request.malformed", 404: "request.not_found", 405: "request.method_not_allowed", 408: "request.timeout",
}


def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    code = HTTP_ERROR_CODES.get(error.status_code)
    if code is None:
        code = "request.malformed" if 400 <= error.status_code < 500 else "error.unknown"
    return error_response(error.status_code, code, headers=getattr(error, "headers", None))


def _log_unavailable(error: Exception) -> None:
    # The driver's first line only: SQLAlchemy's own text carries the statement and its parameters.
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[:1]
    logger.warning("database unavailable: %s", type(error).__name__, extra={"reason": "".join(reason)})


def _database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    """The database is down or unreachable (or the pool is exhausted): a 503, not a stack trace."""
    _log_unavailable(error)
    return error_response(503, "service.unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class DatabaseUnavailableGuard:
    """Pure ASGI: the database failing in code that no exception handler covers (a
    middleware's lookup, a mounted app such as the staff console) is a 503 with
    ``Retry-After`` too, not a 500: JSON for the API, plain text (``plain_text``) for pages.
    Once a response has started it can only be cut short, so the error goes on up."""

    def __init__(self, app: ASGIApp, plain_text: bool = False) -> None:
        self.app, self.plain_text = app, plain_text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except UNAVAILABLE_ERRORS as error:
            if started:
                raise
            _log_unavailable(error)
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
            if self.plain_text:
                response = PlainTextResponse(translate("service.unavailable"), 503, headers=headers)
            else:
                response = error_response(503, "service.unavailable", headers=headers)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    for database_error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(database_error, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
