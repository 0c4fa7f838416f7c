"""Logging: one line per HTTP request and per sign-in/activation event, with a request id.

* :func:`configure_logging` puts one handler on the root logger: plain text, or one JSON
  object per line with ``LOG_JSON=true``; the level is ``LOG_LEVEL``. It is idempotent.
* :class:`RequestIdMiddleware` (pure ASGI) gives every request an id (a safe incoming
  ``X-Request-ID`` or a new one), echoes it in the response, keeps it in a context
  variable while the request runs, and logs one line when the request ends.
* Every log record carries ``request_id`` (``None`` outside a request), so the domain's
  lines about a request can be matched with that request's line. Reflex handles websocket
  events on a queue of its own, outside the websocket's context: there the id is the
  event's Reflex transaction id.

Nothing secret reaches these lines: no headers (``Authorization``, cookies), no bodies,
and query parameters that look like credentials are masked. Codes appear only in the demo
SMS sender's line, and only in demo mode.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.infra.client_ip import request_client_ip
from referral_app.settings import settings

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# Query parameters whose values are never logged (the API takes none of them; a client might).
_SECRET_PARAM = re.compile(r"token|code|pass|secret|key|auth|session|sig|^sid$", re.IGNORECASE)

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
access_logger = logging.getLogger("referral_app.requests")

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "request_id"}
_NOISY_LOGGERS = ("httpx", "httpcore")  # they log full URLs (a webhook URL may hold a key) at INFO


@functools.cache
def _reflex_event_context():
    try:
        from reflex_base.event.context import EventContext
    except ImportError:  # pragma: no cover - Reflex is a dependency
        return None
    return EventContext


def current_request_id() -> str | None:
    """The id of the HTTP request (or websocket) being served, else of the Reflex event being handled."""
    request_id = request_id_var.get()
    if request_id is not None:
        return request_id
    event_context = _reflex_event_context()
    if event_context is None:
        return None
    try:
        return event_context.get().txid or None
    except LookupError:
        return None


def _fields(record: logging.LogRecord, text: bool = False) -> dict[str, Any]:
    """The record's ``extra`` fields (for text, without those its message already says)."""
    skip = set(getattr(record, "_in_message", ())) if text else set()
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in skip
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in _fields(record).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2025-01-01T12:00:00.123Z INFO logger [request id] message key=value ...``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        request_id = getattr(record, "request_id", None) or "-"
        line = f"{stamp} {record.levelname} {record.name} [{request_id}] {record.getMessage()}"
        extras = " ".join(f"{key}={value}" for key, value in _fields(record, text=True).items())
        if extras:
            line += f" ({extras})"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test capture, a redirected stream)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _with_request_id(factory):
    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    make_record.adds_request_id = True  # type: ignore[attr-defined]
    return make_record


def configure_logging(json_lines: bool | None = None, level: str | None = None, stream=None) -> logging.Handler:
    """Set up the process's logging (``LOG_JSON``, ``LOG_LEVEL`` unless given); safe to call again.

    A second call replaces the format and level of the handler the first one installed;
    it never adds a second handler. Returns that handler.
    """
    json_lines = settings.log_json if json_lines is None else json_lines
    level_name = (level or settings.log_level or "INFO").upper()
    numeric_level = logging.getLevelName(level_name)
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO

    factory = logging.getLogRecordFactory()
    if not getattr(factory, "adds_request_id", False):
        logging.setLogRecordFactory(_with_request_id(factory))

    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "referral_app_owned", False)), None)
    if handler is None or (stream is not None and getattr(handler, "stream", None) is not stream):
        if handler is not None:
            root.removeHandler(handler)
        handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
        handler.referral_app_owned = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root.setLevel(numeric_level)
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric_level, logging.WARNING))
    return handler


def _safe_request_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == REQUEST_ID_HEADER:
            candidate = value.decode("latin-1").strip()
            if _SAFE_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def safe_query(query_string: bytes) -> str:
    """The query string with the values of credential-like parameters masked."""
    if not query_string:
        return ""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return urlencode([(key, "***" if _SECRET_PARAM.search(key) else value) for key, value in pairs], safe="/:,")


def _printable(text: str) -> str:
    """A decoded path may hold a newline (``%0A``): escape it, so no one can forge a log line."""
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _client(scope: Scope) -> str:
    return request_client_ip(scope)


class RequestIdMiddleware:
    """Request ids and the one log line per request; add it as the outermost middleware.

    A websocket (the Reflex event channel) is one request: its id holds for every event
    handled on it, and it is logged when it closes.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = _safe_request_id(scope.get("headers", []))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, request_id.encode())]}
            elif message["type"] == "websocket.accept":
                status = 101
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != REQUEST_ID_HEADER]
                message = {**message, "headers": [*headers, (REQUEST_ID_HEADER, request_id.encode())]}
            elif message["type"] == "websocket.close" and status == 0:
                status = 403  # closed before it was accepted
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            if status == 0:
                status = 500  # the server error middleware outside answers it
            raise
        finally:
            if status == 0:
                status = 499  # the client went away before an answer (as nginx logs it)
            self._log(scope, status, (time.perf_counter() - started) * 1000)
            request_id_var.reset(token)

    @staticmethod
    def _log(scope: Scope, status: int, duration_ms: float) -> None:
        method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
        path = _printable(scope.get("path", ""))
        query = safe_query(scope.get("query_string", b""))
        target = f"{path}?{query}" if query else path
        access_logger.log(
            logging.WARNING if status >= 500 else logging.INFO,
            "%s %s %s %.1f ms",
            method,
            target,
            status,
            duration_ms,
            extra={
                "method": method,
                "path": target,
                "status": status,
                "duration_ms": round(duration_ms, 1),
                "client": _client(scope),
                "_in_message": ("method", "path", "status", "duration_ms"),
            },
        )
