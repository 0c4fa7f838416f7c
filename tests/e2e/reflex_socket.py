"""A raw client of the app's event socket (Socket.IO over a websocket at /_event), for tests
that must send what no page of the app would: other origins, unknown events, floods.

Built on wsproto (the websocket protocol, no I/O), so that it sends exactly the headers a
browser would, ``Host`` with its port included."""

from __future__ import annotations

import json
import socket
import time
import uuid

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

NAMESPACE = "/_event"


class Refused(Exception):
    """The server answered the handshake with this HTTP status instead of 101."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class EventSocket:
    """One connection, as a browser tab makes it: handshake, engine.io open, Socket.IO connect."""

    def __init__(self, port: int, origin: str | None = None, cookie: str | None = None, headers=(),
                 host: str | None = None, token: str | None = None) -> None:
        self.token = token or str(uuid.uuid4())  # the tab's client token: the same one to reconnect
        extra = [(name.encode(), value.encode()) for name, value in headers]
        if origin is not None:
            extra.append((b"origin", origin.encode()))
        if cookie is not None:
            extra.append((b"cookie", cookie.encode()))
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.ws = WSConnection(ConnectionType.CLIENT)
        target = f"{NAMESPACE}/?token={self.token}&EIO=4&transport=websocket"
        # The Host a browser sends (with the port); a TLS proxy in front passes its own, without.
        host = host or f"127.0.0.1:{port}"
        self.sock.sendall(self.ws.send(Request(host=host, target=target, extra_headers=extra)))
        self._pending: list[str] = []
        self._text = ""
        while True:
            event = self._next_event(10)
            if isinstance(event, AcceptConnection):
                break
            if isinstance(event, RejectConnection):
                self.sock.close()
                raise Refused(event.status_code)
        opened = self.receive(10)
        assert opened and opened.startswith("0{"), opened
        self.send(f"40{NAMESPACE},")
        self.received: list[str] = []

    def _next_event(self, timeout: float):
        while True:
            for event in self.ws.events():
                return event
            self.sock.settimeout(timeout)
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(Message(data=text)))

    def receive(self, timeout: float) -> str | None:
        """The next text message, or None when the time is up or the socket closed."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._next_event(left)
            except (TimeoutError, OSError):
                return None
            if isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                return None
            elif isinstance(event, (TextMessage, BytesMessage)):
                self._text += event.data if isinstance(event.data, str) else event.data.decode()
                if event.message_finished:
                    text, self._text = self._text, ""
                    return text
        return None

    def emit(self, name: str, payload: dict, path: str = "/") -> None:
        event = {"name": name, "payload": payload, "router_data": {"pathname": path, "asPath": path}}
        self.send(f"42{NAMESPACE}," + json.dumps(["event", event]))

    def collect(self, seconds: float) -> list[str]:
        """Everything the server sends for ``seconds`` (answering its pings)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self.receive(left)
            if message is None:
                break
            if message == "2":
                self.send("3")
            self.received.append(message)
        return self.received

    def close(self) -> None:
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        except Exception:  # noqa: BLE001 - already closed
            pass
        self.sock.close()
