"""The one place that leans on Reflex internals for the page's websocket: its disconnect,
what it logs, and how many one client may open.

Reflex 0.10.1 has no public hook for "this tab's websocket is gone". Its Socket.IO
namespace, ``app.event_namespace`` (``reflex.app.EventNamespace``, made when the
``rx.App`` is created), gets ``on_disconnect(sid)`` from python-socketio whenever a
socket closes, cleanly or by a dropped connection (a ping timeout); the ``sid`` is the
page's ``router.session.session_id``. :func:`on_socket_closed` wraps that method on the
instance (python-socketio's ``AsyncNamespace.trigger_event`` looks it up by name), calls
ours first, then Reflex's. ``tests/test_sockets.py`` fails if a Reflex upgrade moves or
renames any of it.

(Reflex 0.10.1 itself also cancels, on disconnect, the unfinished page-load chain of the
tab's current socket, which the live-update watcher started by ``on_load`` belongs to. That
is an implicit property of its event processor, and it skips a socket that is no longer the
tab's current one; the hook does not depend on it.)

:func:`bound_event_socket` bounds what one client can make the socket do (issue 18):

* An event whose name is no registered event handler (or that is no event at all) is
  refused in ``on_event``, before Reflex queues it, with one short warning. Reflex's
  event processor would look the name up in the same registry
  (``RegistrationContext.get().event_handlers``) and, not finding it, log the whole event
  (its router data and payload) with a traceback: about 9 kB a time, from a part of
  Reflex that no longer knows which client sent it.
* Reflex's ``client_error`` event keeps its per-socket limit, but not its process-wide one
  (``EventNamespace._MAX_CLIENT_ERRORS_PER_WINDOW``, 20 a minute for everybody): a few
  tabs of one client used it up for all. Frontend reports are limited per client address
  in ``infra/logs.py`` instead.

Any of these missing after a Reflex upgrade stops the app at start (:class:`SocketHookError`).

:class:`WebsocketLimit` (ASGI middleware) holds each client address (an IPv6 client by its
/64) to ``MAX_WEBSOCKETS_PER_CLIENT`` open websockets per worker process: a handshake over
the limit is refused (HTTP 403) before it is accepted, and a slot is given back when its
socket's ASGI call ends (a close, a dropped connection, an error).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from referral_app.infra import metrics
from referral_app.infra.client_ip import UNKNOWN, client_key, request_client_ip
from referral_app.settings import settings

logger = logging.getLogger(__name__)
# An event name in a warning: enough to recognise it.
SHOWN_NAME_CHARS = 120


class SocketHookError(RuntimeError):
    """Reflex's event namespace no longer looks as this module expects (a Reflex upgrade)."""


def on_socket_closed(app, callback: Callable[[str], None]) -> None:
    """Call ``callback(sid)`` whenever one of ``app``'s page websockets closes, before Reflex's own handler."""
    namespace = getattr(app, "event_namespace", None)
    original = getattr(namespace, "on_disconnect", None)
    if namespace is None or not callable(original):
        raise SocketHookError("rx.App.event_namespace.on_disconnect is missing; see referral_app/infra/sockets.py")
    if getattr(original, "referral_app_hook", False):
        return

    def on_disconnect(sid: str, *_reason):
        try:
            callback(sid)
        except Exception:  # Reflex's own clean-up must run whatever happens here
            logger.exception("socket close hook failed")
        return original(sid)

    on_disconnect.referral_app_hook = True
    namespace.on_disconnect = on_disconnect


def _registration_context():
    try:
        from reflex_base.registry import RegistrationContext
    except ImportError as error:
        raise SocketHookError("reflex_base.registry.RegistrationContext is missing; see infra/sockets.py") from error
    if "event_handlers" not in getattr(RegistrationContext, "__dataclass_fields__", {}):
        raise SocketHookError("RegistrationContext.event_handlers is missing; see referral_app/infra/sockets.py")
    return RegistrationContext


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_NAME_CHARS else text[:SHOWN_NAME_CHARS] + "..."


def refuse_unknown_events(app) -> None:
    """Wrap ``app.event_namespace.on_event``: an event that names no registered handler is
    dropped with one short warning instead of being queued (see the module docstring)."""
    namespace = getattr(app, "event_namespace", None)
    original = getattr(namespace, "on_event", None)
    if namespace is None or not callable(original):
        raise SocketHookError("rx.App.event_namespace.on_event is missing; see referral_app/infra/sockets.py")
    if getattr(original, "referral_app_hook", False):
        return
    registration = _registration_context()

    async def on_event(sid: str, data=None):
        fields = data
        if isinstance(fields, (str, bytes)):  # Reflex accepts an event as JSON text too
            try:
                fields = json.loads(fields)
            except ValueError:
                fields = None
        name = fields.get("name") if isinstance(fields, dict) else None
        try:
            handlers = registration.get().event_handlers
        except LookupError:  # no registry here: Reflex decides, as it would without us
            return await original(sid, data)
        if not isinstance(name, str) or name not in handlers:
            if isinstance(fields, dict):
                logger.warning("page event refused: no event handler is named %s", _shown(name))
            else:
                logger.warning("page event refused: not an event but %s", type(fields).__name__)
            return None
        return await original(sid, fields)

    on_event.referral_app_hook = True
    namespace.on_event = on_event


def lift_process_wide_client_error_limit(app) -> None:
    """Leave Reflex's ``client_error`` reports to the per-client limit of ``infra/logs.py``:
    Reflex's own process-wide window let one client's tabs silence everybody's reports."""
    namespace = getattr(app, "event_namespace", None)
    if not hasattr(type(namespace), "_MAX_CLIENT_ERRORS_PER_WINDOW") or not hasattr(
        namespace, "_client_error_window_count"
    ):
        raise SocketHookError(
            "EventNamespace._MAX_CLIENT_ERRORS_PER_WINDOW is missing; see referral_app/infra/sockets.py"
        )
    namespace._MAX_CLIENT_ERRORS_PER_WINDOW = sys.maxsize


def bound_event_socket(app) -> None:
    """Everything above, for the app's page websocket; refuses to start on a Reflex that no longer fits."""
    refuse_unknown_events(app)
    lift_process_wide_client_error_limit(app)


# --- Websockets per client --------------------------------------------------------


class OpenSockets:
    """Open websockets by client key, in this worker process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def acquire(self, client: str, limit: int) -> bool:
        """Take a slot for ``client`` unless it holds ``limit`` already."""
        with self.lock:
            held = self.counts.get(client, 0)
            if held >= limit:
                return False
            self.counts[client] = held + 1
            return True

    def release(self, client: str) -> None:
        with self.lock:
            held = self.counts.get(client, 0) - 1
            if held > 0:
                self.counts[client] = held
            else:
                self.counts.pop(client, None)


open_sockets = OpenSockets()


class WebsocketLimit:
    """ASGI middleware: at most ``MAX_WEBSOCKETS_PER_CLIENT`` open websockets per client
    address (:func:`~referral_app.infra.client_ip.client_key`, after the trusted-proxy
    rules) in this worker; 0 turns it off. Add it inside ``ProxyHeadersMiddleware``.

    A client whose address is unknown (no peer address) is not limited: all such clients
    would share one count. HTTP requests pass untouched (one comparison).

    The count is per worker process, so an instance of W workers lets one address hold up to
    W x the limit. A count shared through Redis would need a round trip per handshake and
    per close, and a worker killed with its sockets open would leave its slots taken until
    some expiry; not worth it for a bound whose purpose is the process's own file descriptors.
    """

    def __init__(self, app: ASGIApp, sockets: OpenSockets | None = None) -> None:
        self.app = app
        self.sockets = open_sockets if sockets is None else sockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = settings.max_websockets_per_client
        if scope["type"] != "websocket" or not limit:
            await self.app(scope, receive, send)
            return
        client = client_key(request_client_ip(scope))
        if client == UNKNOWN:
            await self.app(scope, receive, send)
            return
        if not self.sockets.acquire(client, limit):
            await self._refuse(client, limit, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.sockets.release(client)

    @staticmethod
    async def _refuse(client: str, limit: int, receive: Receive, send: Send) -> None:
        metrics.count_refused_websocket()
        logger.warning("websocket refused: client %s has %d open already (MAX_WEBSOCKETS_PER_CLIENT)", client, limit)
        message = await receive()
        if message["type"] == "websocket.connect":
            # A close before the accept: the server answers the handshake with 403.
            await send({"type": "websocket.close", "code": 1008})
