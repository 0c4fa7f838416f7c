"""The one place that leans on Reflex internals for the page's websocket: its disconnect.

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
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


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
