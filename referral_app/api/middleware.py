"""Request hygiene for ``/api``: path aliases, body size limit, JSON-only bodies, and JSON
that can never be valid refused with a code that says why (never "try again"); and, for
every path, a body the server could not read (a malformed chunked encoding) answered 400.

Pure ASGI, so it can answer before FastAPI parses anything.
"""

from __future__ import annotations

import json
import math

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.api.errors import error_response
from referral_app.i18n import choose_language, translate, use_language
from referral_app.infra import cookies
from referral_app.infra.asgi import BodyTooLarge, ClientGone, read_body, replay_body

MAX_BODY_BYTES = 16 * 1024
API_PREFIX = "/api/"
VERSION_PREFIX = "/api/v1/"
# Paths that are not versioned routes and keep their exact spelling.
UNVERSIONED = ("/api/docs", "/api/openapi.json", "/api/static-docs", "/api/redoc")
_BODY_METHODS = {"POST", "PUT", "PATCH"}
# No request of this API nests deeper than 2; a parser walking 1,500 levels would recurse.
MAX_JSON_DEPTH = 32
# The largest integer any store or language on the way takes without loss.
MAX_JSON_INTEGER = 2**63 - 1


class _NumberOutOfRange(ValueError):
    pass


def _integer(text: str) -> int:
    # Checked on the digits, before int() does 4,300-digit conversions.
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_JSON_INTEGER:
        raise _NumberOutOfRange(text)
    return value


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRange(text)
    return value


def _not_json(name: str):
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _nesting_depth(text: str, limit: int) -> int:
    """How deep arrays and objects nest in ``text`` (strings skipped), up to ``limit + 1``."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def json_body_problem(body: bytes) -> str | None:
    """The error code for a JSON body that can never be valid (RFC 8259), or None.

    ``request.not_utf8`` (not UTF-8, or text with unpaired surrogates), ``request.json_too_deep``
    (more than ``MAX_JSON_DEPTH`` levels), ``request.invalid_json`` (not JSON, NaN or Infinity
    included) and ``request.number_out_of_range`` (an integer beyond 64 bits, a number beyond
    a double).
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "request.not_utf8"
    if _nesting_depth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return "request.json_too_deep"
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_real, parse_constant=_not_json)
    except _NumberOutOfRange:
        return "request.number_out_of_range"
    except (ValueError, RecursionError):
        return "request.invalid_json"
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # "\ud800": valid JSON syntax, but no text
        return "request.not_utf8"
    return None


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
        try:
            body = await read_body(receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await error_response(413, "request.too_large", limit=MAX_BODY_BYTES)(scope, receive, send)
            return
        except ClientGone:
            return
        content_type = headers.get("content-type")
        if (body or content_type) and not _is_json(content_type or ""):
            await error_response(415, "request.not_json")(scope, receive, send)
            return
        if body.strip() and (problem := json_body_problem(body)) is not None:
            await error_response(400, problem)(scope, receive, send)
            return

        await self.app(scope, replay_body(body, receive), send)


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
    allows). Pure ASGI, outermost, so it covers the API, the admin, the pages and their files.
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


class MalformedBodyMiddleware:
    """A request body the server could not read is answered 400 ``request.malformed``, never 500.

    Granian (2.x) ends a body it cannot decode (a chunk size that is not hex, a chunk
    without its CRLF: RFC 9112 §7.1) by handing the app ``http.disconnect``, although the
    client is still connected and waiting. Every reader of the body then stops as for a
    client that left and answers nothing, and Granian sends its own "500 Internal server
    error". This layer sees the server's own ``receive``: when it said ``http.disconnect``
    before the body's last part and the app ended without answering, the client gets a 400
    (JSON under ``/api``, plain text elsewhere) with ``Connection: close``. If the client
    really left, the answer goes nowhere. Outside :class:`BodyTimeoutMiddleware`
    (``infra/server.py``), so a body that is merely slow still gets its 408.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = body_cut = started = False

        async def watched_receive() -> Message:
            nonlocal body_done, body_cut
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_done = True
            elif message["type"] == "http.disconnect" and not body_done:
                body_cut = True
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, watched_receive, watched_send)
        if body_cut and not started:
            try:
                await _malformed_response(scope)(scope, receive, send)
            except Exception:  # noqa: BLE001 - the client really left: nobody to tell
                pass


def _malformed_response(scope: Scope):
    headers = {"Connection": "close", "Cache-Control": "no-store"}
    header = next((value for name, value in scope["headers"] if name.lower() == b"accept-language"), b"")
    language = choose_language(None, header.decode("latin-1"))
    if scope["path"].startswith(API_PREFIX):
        with use_language(language):
            response = error_response(400, "request.malformed", headers=headers)
    else:
        response = PlainTextResponse(translate("request.malformed", language), 400, headers=headers)
    for name, value in SECURITY_HEADERS:
        response.raw_headers.append((name, value))
    return response
