"""Request hygiene for ``/api``: path aliases, body size limit and JSON-only bodies.

Pure ASGI, so it can answer before FastAPI parses anything.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.api.errors import error_response
from referral_app.i18n import choose_language, use_language

MAX_BODY_BYTES = 16 * 1024
API_PREFIX = "/api/"
VERSION_PREFIX = "/api/v1/"
# Paths that are not versioned routes and keep their exact spelling.
UNVERSIONED = ("/api/docs", "/api/openapi.json", "/api/static-docs", "/api/redoc")
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def canonical_api_path(path: str) -> str:
    """``/api/x`` and ``/api/v1/x``, with or without a trailing slash, are one route."""
    if path.startswith(UNVERSIONED):
        return path
    if not path.startswith(VERSION_PREFIX):
        path = VERSION_PREFIX + path[len(API_PREFIX) :]
    return path if path.endswith("/") else path + "/"


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class ApiRequestMiddleware:
    """Rewrites API paths to their canonical form and refuses oversized or non-JSON bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path = canonical_api_path(scope["path"])
        scope = {**scope, "path": path, "raw_path": path.encode()}
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return

        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await error_response(413, "request.too_large", limit=MAX_BODY_BYTES)(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await error_response(413, "request.too_large", limit=MAX_BODY_BYTES)(scope, receive, send)
                return
        content_type = headers.get("content-type")
        if (body or content_type) and not _is_json(content_type or ""):
            await error_response(415, "request.not_json")(scope, receive, send)
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


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


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response: pages, assets and API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class SecureCookiesOnHttps:
    """Marks every cookie ``Secure`` when the request came over HTTPS (admin and session cookies)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"set-cookie" and b"secure" not in value.lower():
                        value += b"; Secure"
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secure)


class ContentLanguage:
    """The API answers in the language of ``Accept-Language`` (best match, q-values
    honoured; else ``DEFAULT_LANGUAGE``) and says which in ``Content-Language`` (RFC 9110 §8.5)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope["headers"] if name.lower() == b"accept-language"), b"")
        language = choose_language(None, header.decode("latin-1"))

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value) for name, value in message.get("headers", []) if name.lower() != b"content-language"
                ]
                headers += [(b"content-language", language.encode()), (b"vary", b"Accept-Language")]
                message = {**message, "headers": headers}
            await send(message)

        with use_language(language):
            await self.app(scope, receive, send_with_language)
