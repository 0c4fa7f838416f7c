"""The per-client websocket limit (referral_app/infra/sockets.py). The page websocket's hooks
into Reflex are guarded in tests/framework/test_reflex_socket.py."""

from __future__ import annotations

import pytest

from referral_app.infra.sockets import OpenSockets, WebsocketLimit
from referral_app.settings import settings


def test_open_sockets_are_counted_per_client_and_given_back():
    sockets = OpenSockets()
    assert [sockets.acquire("198.51.100.1", 2) for _ in range(3)] == [True, True, False]
    assert sockets.acquire("198.51.100.2", 2)
    sockets.release("198.51.100.1")
    assert sockets.acquire("198.51.100.1", 2)
    for _ in range(2):
        sockets.release("198.51.100.1")
    sockets.release("198.51.100.2")
    assert sockets.counts == {}  # nothing kept for clients that hold none


def _websocket_app():
    """A websocket endpoint behind the app's own proxy-header and websocket-limit middleware."""
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    from referral_app.infra.client_ip import ProxyHeadersMiddleware

    async def echo(websocket):
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            await websocket.send_text(message.get("text") or "")

    return ProxyHeadersMiddleware(WebsocketLimit(Starlette(routes=[WebSocketRoute("/_event", echo)]), OpenSockets()))


def test_a_client_over_the_websocket_limit_is_refused_and_a_closed_socket_frees_its_slot(monkeypatch):
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    monkeypatch.setattr(settings, "max_websockets_per_client", 2)
    monkeypatch.setattr(settings, "trusted_proxies", ("127.0.0.1",))
    client = TestClient(_websocket_app(), client=("127.0.0.1", 40000))

    def connect(address):
        return client.websocket_connect("/_event", headers={"X-Forwarded-For": address})

    with connect("198.51.100.1") as first, connect("198.51.100.1") as second:
        with pytest.raises(WebSocketDisconnect) as refused:
            with connect("198.51.100.1"):
                pass
        assert refused.value.code == 1008
        with connect("198.51.100.2") as other:  # another address is not affected
            other.send_text("hi")
            assert other.receive_text() == "hi"
        for socket, text in ((first, "x"), (second, "y")):  # the first two are still served
            socket.send_text(text)
            assert socket.receive_text() == text
    with connect("198.51.100.1"), connect("198.51.100.1"):  # both slots were given back
        pass
    monkeypatch.setattr(settings, "max_websockets_per_client", 0)  # 0: no limit
    with connect("198.51.100.1"), connect("198.51.100.1"), connect("198.51.100.1"):
        pass
