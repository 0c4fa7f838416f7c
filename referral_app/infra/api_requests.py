"""Request hygiene for ``/api``, before FastAPI parses anything (pure ASGI): path aliases,
the body size limit, JSON-only bodies, and JSON that can never be valid refused with a code
that says why (never "try again")."""

from __future__ import annotations

import json
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from referral_app.infra.asgi import BodyTooLarge, ClientGone, read_body, replay_body
from referral_app.infra.responses import API_PREFIX, error_response

MAX_BODY_BYTES = 16 * 1024
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
