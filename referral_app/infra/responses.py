"""What the app's answers carry whoever gives them: the one error format, the headers every
answer gets (:class:`ResponseHeaders`), ``HEAD`` answered as ``GET``
(:class:`HeadAsGetMiddleware`), and the 503 of a database that is down outside any route
(:class:`DatabaseUnavailableGuard`).

The stack's layers (``infra/stack.py``) answer with :func:`error_response`, and so do the
API's routes and exception handlers (``api/errors.py`` uses it; nothing here imports ``api/``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.responses import JSONResponse
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.i18n import choose_language, translate, use_language
from referral_app.infra import cookies
from referral_app.infra.db import RETRY_AFTER_SECONDS, UNAVAILABLE_ERRORS

# The logger these lines always had (a log query may select them by it).
logger = logging.getLogger("referral_app.api.errors")
API_PREFIX = "/api/"


def error_response(
    status: int, code: str, field: str | None = None, headers: dict[str, str] | None = None, **params: Any
) -> JSONResponse:
    """A JSON error ``{"code", "message", "field"?}``: a machine-readable ``code`` and the
    catalogue's ``message`` in the current language (``params`` fill its placeholders)."""
    body: dict[str, Any] = {"code": code, "message": translate(code, **params)}
    if field is not None:
        body["field"] = field
    return JSONResponse(body, status_code=status, headers=headers)


def log_unavailable(error: Exception) -> None:
    """One WARNING line for the database being unavailable: the error's class and the
    driver's first line only (SQLAlchemy's own text carries the statement and its parameters)."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()[:1]
    logger.warning("database unavailable: %s", type(error).__name__, extra={"reason": "".join(reason)})


# Reflex runs event scripts through eval() and React inlines its bootstrap script, so
# scripts need 'unsafe-inline' and 'unsafe-eval'; everything else is locked to this origin.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
]
_VARY_LANGUAGE = (b"vary", b"Accept-Language")


class ResponseHeaders:
    """The headers every answer gets, in one pass over the answer's headers (one layer, not three):

    - the security headers, on every HTTP response (pages, assets and API), unless the
      answer set them itself;
    - ``Secure`` on every cookie (admin and session cookies) when the request came over HTTPS;
    - on ``/api``: the answer is in the language of ``Accept-Language`` (best match, q-values
      honoured; else ``DEFAULT_LANGUAGE``), named in ``Content-Language`` (RFC 9110 §8.5).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = cookies.is_secure(scope)
        language = None
        if scope["path"].startswith(API_PREFIX):
            header = next((value for name, value in scope["headers"] if name.lower() == b"accept-language"), b"")
            language = choose_language(None, header.decode("latin-1"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                present = set()
                for name, value in message.get("headers", []):
                    lower = name.lower()
                    if language is not None and lower == b"content-language":
                        continue
                    if secure and lower == b"set-cookie" and b"secure" not in value.lower():
                        value += b"; Secure"
                    present.add(lower)
                    headers.append((name, value))
                headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                if language is not None:
                    headers += [(b"content-language", language.encode()), _VARY_LANGUAGE]
                message = {**message, "headers": headers}
            await send(message)

        if language is None:
            await self.app(scope, receive, send_with_headers)
            return
        with use_language(language):
            await self.app(scope, receive, send_with_headers)


class HeadAsGetMiddleware:
    """``HEAD`` answers wherever ``GET`` does (SPEC §4): the same status and headers, no body.

    Load balancers and uptime checks probe with ``HEAD``; FastAPI routes declared with
    ``GET`` would answer it 405. The request goes on as a ``GET`` and the body of the
    answer is dropped (``Content-Length`` stays that of the ``GET``, as RFC 9110 §9.3.2
    allows). Pure ASGI, innermost, so that the access log and the metrics outside it see
    ``HEAD``; it covers the API, the admin, the pages and their files.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        done = False

        async def send_without_body(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.body":
                if done:
                    return
                if message.get("more_body", False):
                    return
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)


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
            log_unavailable(error)
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS), "Cache-Control": "no-store"}
            if self.plain_text:
                response = PlainTextResponse(translate("service.unavailable"), 503, headers=headers)
            else:
                response = error_response(503, "service.unavailable", headers=headers)
            await response(scope, receive, send)
