"""The API's errors: domain errors, validation errors and HTTP errors in the one format
``{"code", "message", "field"?}`` (:func:`~referral_app.infra.responses.error_response`,
which the stack's own answers use too)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from referral_app.domain.errors import DomainError, NotAuthenticated, RateLimited, Unavailable
from referral_app.infra.db import RETRY_AFTER_SECONDS, UNAVAILABLE_ERRORS
from referral_app.infra.responses import error_response, log_unavailable

# Domain errors whose HTTP status is not 400 (besides the classes handled below).
STATUS_BY_CODE = {"request.origin_not_allowed": 403}

# Clients that send no credentials are told how to send them.
WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="api"'}


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


def _database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    """The database is down or unreachable (or the pool is exhausted): a 503, not a stack trace."""
    log_unavailable(error)
    return error_response(503, "service.unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    for database_error in UNAVAILABLE_ERRORS:
        app.add_exception_handler(database_error, _database_unavailable)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
