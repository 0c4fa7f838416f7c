"""The page's websocket: Reflex's Socket.IO namespace and python-engineio's origin check.

Reflex 0.10.1 serves the page's websocket (``/_event``) with python-socketio: ``app.sio``
(an ``AsyncServer``, made when the ``rx.App`` is created), on python-engineio's server
(``app.sio.eio``), and its namespace ``app.event_namespace`` (``reflex.app.EventNamespace``).
Four reaches, each fails closed (:class:`SocketHookError`, the app does not start):

* :func:`guard_socket_origins` (a security control, for ``infra/origins.py``'s policy):
  python-engineio's ``cors_allowed_origins`` may be a callable ``(origin, environ)``; Reflex
  passes it rxconfig's fixed list, and the app's own origin depends on the request when
  ``PUBLIC_URL`` is unset. Set on ``app.sio.eio``, a handshake from another origin is refused
  before it connects; at start a probe from a foreign origin must be refused.
* :func:`on_socket_closed`: Reflex has no public hook for "this tab's websocket is gone".
  python-socketio calls ``on_disconnect(sid)`` on the namespace whenever a socket closes,
  cleanly or by a dropped connection (``AsyncNamespace.trigger_event`` looks it up by name);
  the ``sid`` is the page's ``router.session.session_id``. The wrapper calls ours first, then
  Reflex's. (Reflex itself also cancels, on disconnect, the unfinished page-load chain of the
  tab's current socket, which the live-update watcher started by ``on_load`` belongs to; the
  hook does not depend on that.)
* :func:`refuse_unknown_events`: an event whose name is no registered event handler (or
  that is no event at all) is refused in ``on_event``, before Reflex queues it, with one
  short warning. Reflex's event processor would look the name up in the same registry
  (``reflex_base.registry.RegistrationContext.get().event_handlers``) and, not finding it,
  log the whole event (its router data and payload) with a traceback: about 9 kB a time,
  from a part of Reflex that no longer knows which client sent it.
* :func:`lift_process_wide_client_error_limit`: Reflex's ``client_error`` event keeps its
  per-socket limit, but not its process-wide one (``EventNamespace._MAX_CLIENT_ERRORS_PER_WINDOW``,
  20 a minute for everybody): a few tabs of one client used it up for all. Frontend reports
  are limited per client address in ``infra/logs.py`` instead.

Guard tests: ``tests/framework/test_reflex_socket.py``.
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
from collections.abc import Callable

from referral_app.infra.framework import FrameworkChanged, parameters

logger = logging.getLogger("referral_app.infra.sockets")  # the name its lines always had
_MODULE = "reflex_socket"
# An event name in a warning: enough to recognise it.
SHOWN_NAME_CHARS = 120
# An origin no policy allows: the start-up probe of the websocket's origin check.
_PROBE_ORIGIN = "http://origin-probe.invalid"


class SocketHookError(FrameworkChanged):
    """Reflex's socket server or event namespace no longer looks as this module expects (an upgrade)."""

    def __init__(self, what: str, package: str = "reflex") -> None:
        super().__init__(package, what, _MODULE)


def _namespace_method(app, name: str):
    namespace = getattr(app, "event_namespace", None)
    method = getattr(namespace, name, None)
    if namespace is None or not callable(method):
        raise SocketHookError(f"rx.App.event_namespace.{name} (it is missing)")
    return namespace, method


def guard_socket_origins(app, allowed: Callable[[str | None, dict], bool]) -> None:
    """Make ``app``'s websocket handshake ask ``allowed(origin, environ)`` (python-engineio's
    callable ``cors_allowed_origins``; ``environ["asgi.scope"]`` is the handshake's scope) and
    refuse an origin it does not allow. :class:`SocketHookError` if the server no longer has
    that hook or a probe from a foreign origin is not refused."""
    eio = getattr(getattr(app, "sio", None), "eio", None)
    check = getattr(type(eio), "_cors_allowed_origins", None)
    if eio is None or not hasattr(eio, "cors_allowed_origins") or parameters(check) != ["self", "environ"]:
        raise SocketHookError(
            "AsyncServer.cors_allowed_origins / _cors_allowed_origins(environ) on rx.App.sio.eio", "python-engineio"
        )
    eio.cors_allowed_origins = allowed
    eio.cors_credentials = True
    probe = {"HTTP_ORIGIN": _PROBE_ORIGIN, "asgi.scope": {"type": "websocket", "scheme": "ws", "headers": []}}
    if eio._cors_allowed_origins(probe) != []:
        raise SocketHookError("how AsyncServer applies a callable cors_allowed_origins", "python-engineio")


def on_socket_closed(app, callback: Callable[[str], None]) -> None:
    """Call ``callback(sid)`` whenever one of ``app``'s page websockets closes, before Reflex's own handler."""
    namespace, original = _namespace_method(app, "on_disconnect")
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
        raise SocketHookError("reflex_base.registry.RegistrationContext (it is missing)") from error
    if "event_handlers" not in getattr(RegistrationContext, "__dataclass_fields__", {}):
        raise SocketHookError("RegistrationContext.event_handlers (it is missing)")
    return RegistrationContext


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_NAME_CHARS else text[:SHOWN_NAME_CHARS] + "..."


def refuse_unknown_events(app) -> None:
    """Wrap ``app.event_namespace.on_event``: an event that names no registered handler is
    dropped with one short warning instead of being queued (see the module docstring)."""
    namespace, original = _namespace_method(app, "on_event")
    if getattr(original, "referral_app_hook", False):
        return
    if inspect.ismethod(original) and parameters(original) != ["sid", "data"]:
        raise SocketHookError("EventNamespace.on_event(sid, data)")
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
        raise SocketHookError("EventNamespace._MAX_CLIENT_ERRORS_PER_WINDOW (it is missing)")
    namespace._MAX_CLIENT_ERRORS_PER_WINDOW = sys.maxsize


def bound_event_socket(app) -> None:
    """Unknown events refused, client errors left to the per-client limit; refuses to start
    on a Reflex that no longer fits."""
    refuse_unknown_events(app)
    lift_process_wide_client_error_limit(app)
