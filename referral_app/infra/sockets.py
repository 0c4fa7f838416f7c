"""How many websockets one client may hold open.

(The page websocket's hooks into Reflex, its disconnect, the events it refuses and its
``client_error`` limit, are in ``infra/framework/reflex_socket.py``.)

:class:`WebsocketLimit` (ASGI middleware) holds each client address (an IPv6 client by its
/64) to ``MAX_WEBSOCKETS_PER_CLIENT`` open websockets per worker process: a handshake over
the limit is refused (HTTP 403) before it is accepted, and a slot is given back when its
socket's ASGI call ends (a close, a dropped connection, an error).
"""

from __future__ import annotations

import logging
import threading

from starlette.types import ASGIApp, Receive, Scope, Send

from referral_app.infra import metrics
from referral_app.infra.client_ip import UNKNOWN, client_key, request_client_ip
from referral_app.settings import settings

logger = logging.getLogger(__name__)


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
