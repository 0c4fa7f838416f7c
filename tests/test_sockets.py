"""The page-websocket close hook (referral_app/infra/sockets.py): fails if a Reflex upgrade
stops calling ``EventNamespace.on_disconnect`` the way the hook expects."""

from __future__ import annotations

import asyncio

import pytest
from socketio import AsyncNamespace

from referral_app.infra.live import referral_feed
from referral_app.infra.sockets import SocketHookError, on_socket_closed


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
