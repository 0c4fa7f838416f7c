"""The page websocket's hooks into Reflex (referral_app/infra/sockets.py): fail if a Reflex
upgrade stops calling ``EventNamespace.on_disconnect`` or ``on_event`` the way they expect
or drops the attribute they change; and the per-client websocket limit."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest
from socketio import AsyncNamespace

from referral_app.infra.live import referral_feed
from referral_app.infra.sockets import (
    OpenSockets,
    SocketHookError,
    WebsocketLimit,
    bound_event_socket,
    lift_process_wide_client_error_limit,
    on_socket_closed,
    refuse_unknown_events,
)
from referral_app.settings import settings


def test_a_closing_socket_ends_its_pages_subscriptions_and_reflex_still_cleans_up():
    from referral_app.referral_app import app

    namespace = app.event_namespace
    assert isinstance(namespace, AsyncNamespace)  # python-socketio dispatches to it by method name
    sid = "test-sockets-sid"

    async def scenario():
        subscription = referral_feed.registry.add(42, page="test-sockets-tab", session=sid)
        namespace._static_router_data[sid] = {}  # Reflex's own per-socket data, dropped on disconnect
        # As python-socketio calls it when a socket closes (with its reason).
        await namespace.trigger_event("disconnect", sid, "transport close")
        assert subscription.closed and await asyncio.wait_for(subscription.wait(), 1) is False
        assert sid not in namespace._static_router_data

    asyncio.run(scenario())


def test_the_hook_is_put_once_and_refuses_an_app_without_the_namespace():
    calls = []

    class Namespace:
        def on_disconnect(self, sid):
            calls.append(("reflex", sid))

    class App:
        event_namespace = Namespace()

    app = App()
    on_socket_closed(app, lambda sid: calls.append(("ours", sid)))
    on_socket_closed(app, lambda sid: calls.append(("twice", sid)))
    app.event_namespace.on_disconnect("s1", "client disconnect")
    assert calls == [("ours", "s1"), ("reflex", "s1")]
    with pytest.raises(SocketHookError):
        on_socket_closed(object(), print)


# Bounds on what one client can make the socket do (issue 18)


def _registered_event_name() -> str:
    from reflex_base.registry import RegistrationContext

    return next(iter(RegistrationContext.get().event_handlers))


def test_an_unknown_event_is_refused_in_one_short_line_before_reflex_queues_it(caplog):
    """Reflex queued it, then logged the whole event and a traceback (about 9 kB) from a
    task that no longer knew the client; a registered one still reaches Reflex."""
    from referral_app.referral_app import app

    namespace = app.event_namespace
    caplog.set_level(logging.WARNING)

    async def scenario():
        with app.set_contexts():
            huge = {"name": "no_such_state.no_such_event" + "x" * 10_000, "payload": {"junk": "y" * 10_000}}
            assert await namespace.on_event("test-sockets-sid", huge) is None
            assert await namespace.on_event("test-sockets-sid", "not json") is None
            assert await namespace.on_event("test-sockets-sid", 12345) is None
            refused = [record.getMessage() for record in caplog.records]
            caplog.clear()
            # A registered name goes on to Reflex, which answers a socket it does not know with its own warning.
            await namespace.on_event("test-sockets-sid", {"name": _registered_event_name(), "payload": {}})
            return refused, [record.getMessage() for record in caplog.records]

    refused, passed = asyncio.run(scenario())
    assert len(refused) == 3 and all("page event refused" in message for message in refused)
    assert all(len(message) < 300 for message in refused)
    assert any("no associated token" in message for message in passed), passed


def test_reflex_leaves_client_error_reports_to_the_per_client_limit():
    from referral_app.referral_app import app

    assert app.event_namespace._MAX_CLIENT_ERRORS_PER_WINDOW == sys.maxsize


def test_the_bounds_refuse_a_reflex_that_no_longer_fits():
    class Namespace:
        async def on_event(self, sid, data):
            return None

    class App:
        event_namespace = Namespace()

    with pytest.raises(SocketHookError):
        lift_process_wide_client_error_limit(App())  # no _MAX_CLIENT_ERRORS_PER_WINDOW
    with pytest.raises(SocketHookError):
        refuse_unknown_events(object())
    with pytest.raises(SocketHookError):
        bound_event_socket(App())


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
