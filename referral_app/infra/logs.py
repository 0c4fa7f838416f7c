"""Logging: one line per request with its id, JSON on demand, and never a secret or raw client text.

* :func:`configure_logging` (``LOG_JSON``, ``LOG_LEVEL``; idempotent) puts one handler on the
  root logger: plain text, or one JSON object per line (``python-json-logger``) with
  ``time``, ``level``, ``logger``, ``message``, ``request_id`` and the record's extra fields.
  Reflex's own logger is routed to it too, so every line has one format.
* :class:`RequestIdMiddleware` gives every HTTP request and websocket an id
  (``asgi-correlation-id``: an incoming ``X-Request-ID`` of 1-64 letters, digits and dashes
  is kept, anything else replaced by a new one), returns it as ``X-Request-ID`` and writes
  one access line when the request ends (method, path, status, duration, client).
* Every record carries ``request_id``: the id of the request being served, or, for the
  events Reflex handles on a queue of its own, the event's Reflex transaction id.

Secrets and raw client text, in one place: :func:`install_record_factory` makes every log
record of every logger (ours, Reflex's, the libraries') pass :func:`mask_secrets` and
:func:`one_line` before any handler sees it: cookie values, ``Authorization`` values,
session tokens, claims, codes, CSRF tokens and passwords are masked, and control
characters (newlines, ANSI escapes) are escaped, so a client cannot forge a log line.
Tracebacks are masked too and their lines indented. Frontend error reports (Reflex's
``handle_frontend_exception`` and ``client_error``) are cut to a few kB and limited in
rate by :func:`frontend_exception_handler`.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from asgi_correlation_id import CorrelationIdMiddleware
from asgi_correlation_id.context import correlation_id
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.infra.client_ip import request_client_ip
from referral_app.settings import settings

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
# Query parameters whose values are never logged (the API takes none of them; a client might).
_SECRET_PARAM = re.compile(r"token|code|pass|secret|key|auth|session|sig|claim|csrf|^sid$", re.IGNORECASE)

access_logger = logging.getLogger("referral_app.requests")
frontend_logger = logging.getLogger("referral_app.frontend")

# The attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "request_id", "taskName",
}
# They log full URLs (a webhook URL may hold a key) at INFO, or a rejected request id at WARNING.
_QUIET_LOGGERS = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "asgi_correlation_id": logging.ERROR}
_NOISY_LOGGERS = tuple(_QUIET_LOGGERS)
# Kept for code that set it before the libraries did this: the id of the request being served.
request_id_var: contextvars.ContextVar[str | None] = correlation_id
MASK = "***"


# --- Secrets and raw client text -----------------------------------------------------

_SECRET_KEYS = (
    r"(?:[a-z_]*token|claim|password|passwd|secret|secret_key|api_key|(?:confirmation_)?code(?:_input)?|csrf_token"
    r"|session_id|authorization|cookie|set-cookie)"
)
_MASKS = [
    # Our cookies, wherever they appear: a Cookie header, a repr of one, a URL.
    (re.compile(r"((?:__Host-)?referral_(?:session|admin_login|admin)=)[^;\s'\",&\\)]*", re.IGNORECASE), r"\1" + MASK),
    # A quoted cookie or authorization value in a dict, JSON or keyword repr: the whole value.
    (re.compile(r"""((["']?)\b(?:set-)?(?:cookie|authorization)\2\s*[:=]\s*)(["'])(?:\\.|(?!\3).)*\3""",
                re.IGNORECASE), r"\1\3" + MASK + r"\3"),
    # An HTTP header line of them.
    (re.compile(r"^((?:set-)?cookie|authorization)(:\s*).*$", re.IGNORECASE | re.MULTILINE), r"\1\2" + MASK),
    # Credentials in a scheme: Bearer/Token/Basic <value> (a value as long as a credential).
    (re.compile(r"\b(Bearer|Token|Basic)(\s+)(?=[A-Za-z0-9._~+/=-]{16,})[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
     r"\1\2" + MASK),
    # "key": "value", 'key': 'value', key='value', key=value for secret keys (not prose like "code: 1").
    (re.compile(r"""(["'])\b(""" + _SECRET_KEYS + r""")\1(\s*[:=]\s*)(["'])(?:\\.|(?!\4).)*\4""", re.IGNORECASE),
     r"\1\2\1\3\4" + MASK + r"\4"),
    (re.compile(r"""(["'])\b(""" + _SECRET_KEYS + r""")\1(\s*:\s*)(-?\d+)""", re.IGNORECASE), r"\1\2\1\3" + MASK),
    (re.compile(r"""\b(""" + _SECRET_KEYS + r""")=(["'])(?:\\.|(?!\2).)*\2""", re.IGNORECASE), r"\1=\2" + MASK + r"\2"),
    (re.compile(r"""([?&;\s(,]|^)(""" + _SECRET_KEYS + r""")=([^&\s'",;)]+)""", re.IGNORECASE), r"\1\2=" + MASK),
    # Reflex's form data, as pairs: ["code", "1234"].
    (re.compile(r"""(\[\s*(["'])(""" + _SECRET_KEYS + r""")\2\s*,\s*)(["'])(?:\\.|(?!\4).)*\4""", re.IGNORECASE),
     r"\1\4" + MASK + r"\4"),
]
# Anything shaped like our tokens, claims and session ids: 43 URL-safe characters with
# upper case, lower case and digits (names of states and hex hashes have not all three).
_TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
# A record's message and traceback are cut to these lengths: a client can make Reflex log
# a whole 1 MB event, and nothing needs more to be understood.
MAX_MESSAGE_CHARS = 8_000
MAX_TRACEBACK_CHARS = 20_000


def _token_shaped(match: re.Match) -> str:
    text = match.group(0)
    mixed = any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text)
    return MASK if mixed else text


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


@functools.cache
def _known_secrets() -> tuple[str, ...]:
    """The server secret and the passwords in the configured URLs, replaced wherever they appear."""
    from sqlalchemy.engine import make_url

    found = [settings.secret_key]
    for url in (settings.database_url, settings.redis_url, settings.sms_webhook_url):
        try:
            password = make_url(url).password if url and "://" in url else None
        except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads; nothing to mask
            password = None
        if password:
            found.append(str(password))
    return tuple(secret for secret in found if secret and len(secret) >= 6)


# Texts up to this long are masked once and remembered: every request logs the same few
# short values (its method, path, client), each masked several times on the way out.
MEMO_CHARS = 200


def mask_secrets(text: str) -> str:
    """``text`` with every credential-like value replaced by ``***``."""
    if len(text) <= MEMO_CHARS:
        return _masked_short(text, _known_secrets())
    return _masked(text, _known_secrets())


@functools.lru_cache(maxsize=1024)
def _masked_short(text: str, secrets: tuple[str, ...]) -> str:
    return _masked(text, secrets)


# Every pattern of _MASKS needs a key-value separator, a list or a scheme word: a text with
# none of them (most log lines, e.g. "GET /api/v1/profile/me/ 200 3.1 ms") skips them all.
_MASKABLE = re.compile(r"[=:\[]|\b(?:bearer|token|basic)\s", re.IGNORECASE)


def _masked(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if _MASKABLE.search(text):
        for pattern, replacement in _MASKS:
            text = pattern.sub(replacement, text)
    return _TOKEN_SHAPE.sub(_token_shaped, text)


def one_line(text: str, keep_newlines: bool = False) -> str:
    """Control characters (and line separators) escaped, ``\\n`` as two characters unless kept."""
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() or (keep_newlines and char == "\n") else ascii(char)[1:-1] for char in text
    )


def safe_traceback(exc_info) -> str:
    """A traceback with secrets masked, control characters escaped and every line indented."""
    text = _cut("".join(traceback.format_exception(*exc_info)).rstrip("\n"), MAX_TRACEBACK_CHARS)
    return "\n".join("  " + line for line in one_line(mask_secrets(text), keep_newlines=True).split("\n"))


# --- Request ids ---------------------------------------------------------------------


@functools.cache
def _reflex_event_context():
    try:
        from reflex_base.event.context import EventContext
    except ImportError:  # pragma: no cover - Reflex is a dependency
        return None
    return EventContext


def current_request_id() -> str | None:
    """The Reflex event being handled, else the HTTP request (or websocket) being served."""
    event_context = _reflex_event_context()
    if event_context is not None:
        try:
            txid = event_context.get().txid
        except LookupError:
            txid = None
        if txid:
            return txid
    return correlation_id.get()


def install_record_factory() -> None:
    """Make every log record safe (see the module docstring) and give it ``request_id``; once."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "referral_app_safe", False):
        return

    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: log it as it is
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = one_line(mask_secrets(_cut(message, MAX_MESSAGE_CHARS))), ()
        if record.exc_info and record.exc_info[0] is not None:
            # Rendered here, masked, so that no handler (Reflex's included) renders it raw.
            record.exc_text, record.exc_info = safe_traceback(record.exc_info), None
        record.request_id = current_request_id()
        record._safe = True
        return record

    make_record.referral_app_safe = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)


# --- Formats -----------------------------------------------------------------------


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    return message if getattr(record, "_safe", False) else one_line(mask_secrets(message))


def _field(value: Any) -> Any:
    if isinstance(value, str):
        return one_line(mask_secrets(value))
    return value


def _fields(record: logging.LogRecord, text: bool = False) -> dict[str, Any]:
    """The record's ``extra`` fields (for text, without those its message already says)."""
    skip = set(getattr(record, "_in_message", ())) if text else set()
    return {
        key: _field(value)
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in skip
    }


class JsonFormatter(_LibraryJsonFormatter):
    """python-json-logger, with the field names this app has always written: time, level,
    logger, message, request_id, then the extras, and ``exception`` for a traceback."""

    def __init__(self) -> None:
        super().__init__(json_ensure_ascii=False, json_default=str)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["message"] = _message(record)
        log_data["request_id"] = getattr(record, "request_id", None)
        for key, value in _fields(record).items():
            log_data.setdefault(key, value)
        if record.exc_text:
            log_data["exception"] = record.exc_text
        if record.stack_info:
            log_data["stack"] = self.formatStack(record.stack_info)

    def format(self, record: logging.LogRecord) -> str:
        exc_info, record.exc_info = record.exc_info, None  # records made before the factory
        if exc_info and not record.exc_text:
            record.exc_text = safe_traceback(exc_info)
        try:
            return super().format(record)
        finally:
            record.exc_info = exc_info


class TextFormatter(logging.Formatter):
    """``2025-01-01T12:00:00.123Z INFO logger [request id] message (key=value ...)``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        request_id = getattr(record, "request_id", None) or "-"
        line = f"{stamp} {record.levelname} {record.name} [{request_id}] {_message(record)}"
        extras = " ".join(f"{key}={value}" for key, value in _fields(record, text=True).items())
        if extras:
            line += f" ({extras})"
        exc_text = record.exc_text or (safe_traceback(record.exc_info) if record.exc_info else None)
        if exc_text:
            line += "\n" + exc_text
        if record.stack_info:
            line += "\n" + one_line(self.formatStack(record.stack_info), keep_newlines=True)
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


def _route_reflex_logs_here() -> None:
    """Reflex's CLI gives its ``reflex`` logger a console handler of its own and stops it
    from reaching the root logger; send its records to ours instead (one format, one policy)."""
    reflex_logger = logging.getLogger("reflex")
    for handler in list(reflex_logger.handlers):
        reflex_logger.removeHandler(handler)
    reflex_logger.propagate = True


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

    install_record_factory()
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
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(numeric_level, quiet_level))
    _route_reflex_logs_here()
    return handler


# --- Requests ------------------------------------------------------------------------


def _valid_request_id(value: str) -> bool:
    return bool(_SAFE_REQUEST_ID.fullmatch(value.strip()))


def safe_query(query_string: bytes) -> str:
    """The query string with the values of credential-like parameters masked."""
    if not query_string:
        return ""
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    return urlencode([(key, MASK if _SECRET_PARAM.search(key) else value) for key, value in pairs], safe="/:,")


class _AccessLog:
    """One line when a request (or websocket) ends; the websocket's handshake gets the id too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "websocket.accept":
                status = 101
                request_id = correlation_id.get()
                if request_id:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                    message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            elif message["type"] == "websocket.close" and status == 0:
                status = 403  # closed before it was accepted
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except BaseException:
            if status == 0:
                status = 500  # the server error middleware outside answers it
            raise
        finally:
            if status == 0:
                status = 499  # the client went away before an answer (as nginx logs it)
            _log_request(scope, status, (time.perf_counter() - started) * 1000)


def _log_request(scope: Scope, status: int, duration_ms: float) -> None:
    method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
    query = safe_query(scope.get("query_string", b""))
    path = scope.get("path", "")
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
            "path": one_line(mask_secrets(target)),
            "status": status,
            "duration_ms": round(duration_ms, 1),
            "client": request_client_ip(scope),
            "_in_message": ("method", "path", "status", "duration_ms"),
        },
    )


class RequestIdMiddleware:
    """Request ids (asgi-correlation-id) and the one access line per request; add it outside
    everything but the proxy-header middleware (which gives it the client's address)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = CorrelationIdMiddleware(
            _AccessLog(app),
            header_name=REQUEST_ID_HEADER,
            generator=lambda: uuid.uuid4().hex,
            validator=_valid_request_id,
            transformer=str.strip,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = correlation_id.set(None)
        try:
            await self.app(scope, receive, send)
        finally:
            correlation_id.reset(token)


# --- Frontend error reports ----------------------------------------------------------

FRONTEND_REPORT_MAX_CHARS = 2000
FRONTEND_REPORTS_PER_MINUTE = 30  # per worker, for all pages together
FRONTEND_REPORTS_PER_CLIENT_MINUTE = 5


class _ReportLimiter:
    """At most ``per_minute`` reports a minute in all, and ``per_client`` per browser tab."""

    def __init__(self, per_minute: int, per_client: int) -> None:
        self.per_minute, self.per_client = per_minute, per_client
        self.lock = threading.Lock()
        self.recent: deque[float] = deque()
        self.by_client: dict[str, deque[float]] = {}
        self.dropped = 0

    def allow(self, client: str | None, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self.lock:
            while self.recent and now - self.recent[0] > 60:
                self.recent.popleft()
            for key in [key for key, times in self.by_client.items() if times and now - times[-1] > 60]:
                del self.by_client[key]
            mine = self.by_client.setdefault(client or "-", deque())
            while mine and now - mine[0] > 60:
                mine.popleft()
            if len(self.recent) >= self.per_minute or len(mine) >= self.per_client:
                self.dropped += 1
                return False
            self.recent.append(now)
            mine.append(now)
            return True

    def take_dropped(self) -> int:
        with self.lock:
            dropped, self.dropped = self.dropped, 0
            return dropped


frontend_reports = _ReportLimiter(FRONTEND_REPORTS_PER_MINUTE, FRONTEND_REPORTS_PER_CLIENT_MINUTE)


def _reporting_tab() -> str | None:
    event_context = _reflex_event_context()
    try:
        return event_context.get().token if event_context is not None else None
    except LookupError:
        return None


def frontend_exception_handler(exception: Exception) -> None:
    """Reflex's ``frontend_exception_handler``: a browser's error report, written once it is cut
    to ``FRONTEND_REPORT_MAX_CHARS`` and within the rate limits (the text is the browser's:
    it is masked and escaped like every line)."""
    if not frontend_reports.allow(_reporting_tab()):
        return
    text = str(exception)
    if len(text) > FRONTEND_REPORT_MAX_CHARS:
        text = text[:FRONTEND_REPORT_MAX_CHARS] + f"... ({len(text) - FRONTEND_REPORT_MAX_CHARS} more characters)"
    dropped = frontend_reports.take_dropped()
    frontend_logger.error("frontend exception: %s", text, extra={"reports_dropped": dropped} if dropped else None)
