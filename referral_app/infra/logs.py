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
Tracebacks are masked too and their lines indented.

Records a client causes, limited per client (:class:`ClientLogLimiter`): every warning
and error made while a client's request, websocket or page event is handled, and every
frontend error report (Reflex's ``handle_frontend_exception`` and ``client_error``,
through :func:`frontend_exception_handler`), count against that client address's budget
(``LOG_RECORDS_PER_CLIENT_MINUTE``; an IPv6 client by its /64). Beyond it records are
counted, not written: one summary line per client a minute and the Prometheus counter
``referral_log_records_suppressed_total``. Their text is cut shorter
(``CLIENT_MESSAGE_MAX_CHARS``) than the server's own (``MAX_MESSAGE_CHARS``).
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
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from asgi_correlation_id import CorrelationIdMiddleware
from asgi_correlation_id.context import correlation_id
from pythonjsonlogger.json import JsonFormatter as _LibraryJsonFormatter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.infra.client_ip import UNKNOWN, client_key, request_client_ip
from referral_app.infra.framework.reflex_logging import event_client_ip, event_request_id, start_worker_tasks_in
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


def safe_traceback(exc_info, limit: int = MAX_TRACEBACK_CHARS) -> str:
    """A traceback with secrets masked, control characters escaped and every line indented,
    cut to ``limit`` characters."""
    text = _cut("".join(traceback.format_exception(*exc_info)).rstrip("\n"), limit)
    return "\n".join("  " + line for line in one_line(mask_secrets(text), keep_newlines=True).split("\n"))


# --- Request ids ---------------------------------------------------------------------


def current_request_id() -> str | None:
    """The Reflex event being handled, else the HTTP request (or websocket) being served."""
    return event_request_id() or correlation_id.get()


def install_record_factory() -> None:
    """Make every log record safe (see the module docstring) and give it ``request_id``; once."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "referral_app_safe", False):
        return

    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = current_request_id()
        client = _limited_client(record)
        if client is not None and not client_records.allow(client, record.name):
            # Decided before any formatting: a flood costs a dict lookup per record, not a
            # masked 8 kB message and a rendered traceback. The handler drops it.
            record.msg, record.args, record.exc_info, record.exc_text, record.stack_info = "", (), None, None, None
            record._suppressed = record._safe = True
            return record
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string: log it as it is
            message = f"{record.msg!r} % {record.args!r}"
        message_limit = MAX_MESSAGE_CHARS if client is None else CLIENT_MESSAGE_MAX_CHARS
        record.msg, record.args = one_line(mask_secrets(_cut(message, message_limit))), ()
        if record.exc_info and record.exc_info[0] is not None:
            # Rendered here, masked, so that no handler (Reflex's included) renders it raw.
            traceback_limit = MAX_TRACEBACK_CHARS if client is None else CLIENT_TRACEBACK_MAX_CHARS
            record.exc_text, record.exc_info = safe_traceback(record.exc_info, traceback_limit), None
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


# Reflex's CLI gives its logger a console handler of its own and stops it from reaching
# the root logger; python-engineio and python-socketio add a plain one to theirs when the
# app creates its socket server (so each of their errors was written twice, once past
# every rule here).
_ROUTED_LOGGERS = ("reflex", "engineio.server", "socketio.server")


def _route_reflex_logs_here() -> None:
    """Send the records of Reflex's, engineio's and socketio's loggers to our handler only
    (one format, one policy)."""
    for name in _ROUTED_LOGGERS:
        library_logger = logging.getLogger(name)
        for handler in list(library_logger.handlers):
            library_logger.removeHandler(handler)
        library_logger.propagate = True


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
    if _not_suppressed not in handler.filters:
        handler.addFilter(_not_suppressed)
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


# The URL in an access line, at most: that line is written for every request, past any
# client's budget (INFO), and Granian takes a request line of up to ~400 kB.
ACCESS_TARGET_MAX_CHARS = 1_000


def _log_request(scope: Scope, status: int, duration_ms: float) -> None:
    method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
    query = safe_query(scope.get("query_string", b""))
    path = scope.get("path", "")
    target = _cut(f"{path}?{query}" if query else path, ACCESS_TARGET_MAX_CHARS)
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
        # Whom the records made while this is served count against (resolved lazily: most
        # requests log nothing a client is limited in).
        client_token = _client_var.set(scope.get("client"))
        try:
            await self.app(scope, receive, send)
        finally:
            _client_var.reset(client_token)
            correlation_id.reset(token)


# --- Records a client causes: limited per client -------------------------------------

# The client of the request or websocket being served (its scope's resolved ``client``),
# set by RequestIdMiddleware; a page event handled on Reflex's queue names its own client
# in its router data instead (see :func:`current_client`).
_client_var: contextvars.ContextVar[tuple | None] = contextvars.ContextVar("referral_app_log_client", default=None)

# A record a client caused is cut shorter than the server's own: its text is mostly the
# client's, and a few kB tell what happened.
CLIENT_MESSAGE_MAX_CHARS = 2_000
CLIENT_TRACEBACK_MAX_CHARS = 8_000
# Suppressed records are summed up in one line per client this often (seconds).
SUMMARY_SECONDS = 60.0
# Clients remembered at once; the least recently seen is forgotten first.
MAX_TRACKED_CLIENTS = 10_000

summary_logger = logging.getLogger("referral_app.logs")


# True in a task that serves the whole worker (see detached_context): whatever started it.
_detached: contextvars.ContextVar[bool] = contextvars.ContextVar("referral_app_log_detached", default=False)


def detached_context() -> contextvars.Context:
    """A copy of the current context in which records count against no client: for a task
    that outlives the request or page event that happens to start it (a worker-wide Redis
    subscriber), so that what it logs later is the server's, never silenced with that client."""
    context = contextvars.copy_context()
    context.run(_detached.set, True)
    return context


def detach_reflex_worker_tasks() -> None:
    """Make Reflex start its worker-wide tasks in a :func:`detached_context`; once. Reflex
    starts them from the first page event that needs them, so they inherited that client's
    context and their errors (Redis lost, for every tab of the worker) counted against it.
    ``RuntimeError`` (``infra/framework/reflex_logging.py``) if Reflex changed."""
    start_worker_tasks_in(detached_context)


def current_client() -> str | None:
    """The client (its :func:`~referral_app.infra.client_ip.client_key`) whose action is being
    handled: the page event's (Reflex's router data, which Reflex fills from the socket's
    resolved address, never from the client's payload), else the request's or websocket's;
    ``None`` outside them, in a :func:`detached_context`, or when the address is no IP
    address (all such would be one client)."""
    if _detached.get():
        return None
    address = event_client_ip()
    if not address:
        client = _client_var.get()
        address = client[0] if client else None
    key = client_key(address) if address else UNKNOWN
    return None if key == UNKNOWN else key


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0
    since: float = 0.0
    by_logger: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Suppressed:
    """What one client's records were suppressed in one summary period."""

    client: str
    count: int
    seconds: float
    by_logger: dict[str, int]


class ClientLogLimiter:
    """A token bucket per client: a burst of ``per_minute`` records, then ``per_minute`` a
    minute; records beyond it are counted (per client and logger, and in
    ``referral_log_records_suppressed_total``), not written, and each client's count is
    written as one summary line ``SUMMARY_SECONDS`` after its first suppressed record.

    O(1) per record (a dict lookup under a lock); at most ``max_clients`` clients are
    remembered. With ``timer`` off, summaries come only from :meth:`flush` (tests).
    """

    def __init__(self, per_minute: int, summary_seconds: float = SUMMARY_SECONDS,
                 max_clients: int = MAX_TRACKED_CLIENTS, timer: bool = True) -> None:
        self.per_minute = per_minute
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self.summary_seconds, self.max_clients, self.timer = summary_seconds, max_clients, timer
        self.lock = threading.Lock()
        self.buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._flush_timer: threading.Timer | None = None

    def allow(self, client: str, logger_name: str, now: float | None = None) -> bool:
        """Take one record of ``client``'s budget; ``False``: the record is to be dropped (and is counted)."""
        now = time.monotonic() if now is None else now
        evicted = None
        with self.lock:
            bucket = self.buckets.get(client)
            if bucket is None:
                bucket = self.buckets[client] = _Bucket(tokens=self.capacity, updated=now)
                if len(self.buckets) > self.max_clients:
                    evicted = self._take(self.buckets.popitem(last=False), now)
            else:
                self.buckets.move_to_end(client)
                bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
                bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                allowed = True
            else:
                if not bucket.suppressed:
                    bucket.since = now
                    self._schedule_flush()
                bucket.suppressed += 1
                bucket.by_logger[logger_name] = bucket.by_logger.get(logger_name, 0) + 1
                allowed = False
        if evicted is not None:
            _write_summary(evicted, self.per_minute)
        if not allowed:
            _count_suppressed(logger_name)
        return allowed

    def flush(self, now: float | None = None, everything: bool = False) -> list[Suppressed]:
        """Write (and return) the summaries that are due (all with ``everything``), and
        forget the clients whose budget is full again."""
        now = time.monotonic() if now is None else now
        due = []
        with self.lock:
            self._flush_timer = None
            for client, bucket in list(self.buckets.items()):
                if bucket.suppressed and (everything or now - bucket.since >= self.summary_seconds - 0.01):
                    due.append(self._take((client, bucket), now))
                elif not bucket.suppressed and bucket.tokens + (now - bucket.updated) * self.rate >= self.capacity:
                    del self.buckets[client]
            if any(bucket.suppressed for bucket in self.buckets.values()):
                self._schedule_flush()
        for summary in due:
            _write_summary(summary, self.per_minute)
        return due

    def _take(self, item: tuple[str, _Bucket], now: float) -> Suppressed | None:
        client, bucket = item
        if not bucket.suppressed:
            return None
        summary = Suppressed(client, bucket.suppressed, now - bucket.since, dict(bucket.by_logger))
        bucket.suppressed, bucket.by_logger = 0, {}
        return summary

    def _schedule_flush(self) -> None:
        if self.timer and self._flush_timer is None:
            self._flush_timer = threading.Timer(self.summary_seconds, self.flush)
            self._flush_timer.daemon = True
            self._flush_timer.start()


def _write_summary(summary: Suppressed | None, per_minute: int) -> None:
    if summary is None:
        return
    summary_logger.warning(
        "suppressed %d log records caused by client %s in the last %.0f s (more than %d a minute)",
        summary.count,
        summary.client,
        summary.seconds,
        per_minute,
        extra={
            "client": summary.client,
            "suppressed": summary.count,
            "loggers": ",".join(f"{name}:{count}" for name, count in sorted(summary.by_logger.items())),
            "_in_message": ("client", "suppressed"),
        },
    )


def _count_suppressed(logger_name: str) -> None:
    from referral_app.infra import metrics  # here: metrics imports the domain, which logs

    metrics.count_suppressed_log_record(logger_name)


client_records = ClientLogLimiter(settings.log_records_per_client_minute)


def _limited_client(record: logging.LogRecord) -> str | None:
    """The client a record counts against, or ``None`` when it is not limited: warnings
    and errors made while a client's request, websocket or page event is handled, and
    every frontend error report (those of no known client share one budget)."""
    if record.name == summary_logger.name:
        return None
    if record.name == frontend_logger.name:
        return current_client() or UNKNOWN
    if record.levelno < logging.WARNING:
        return None
    return current_client()


def _not_suppressed(record: logging.LogRecord) -> bool:
    return not getattr(record, "_suppressed", False)


# --- Frontend error reports ----------------------------------------------------------

FRONTEND_REPORT_MAX_CHARS = 2000


def frontend_exception_handler(exception: Exception) -> None:
    """Reflex's ``frontend_exception_handler``: a browser's error report, cut to
    ``FRONTEND_REPORT_MAX_CHARS`` (the text is the browser's: it is masked and escaped like
    every line) and limited, like every record a client causes, per client address
    (``LOG_RECORDS_PER_CLIENT_MINUTE``), so that one client's tabs cannot use up anyone
    else's reports."""
    frontend_logger.error("frontend exception: %s", _cut(str(exception), FRONTEND_REPORT_MAX_CHARS))
