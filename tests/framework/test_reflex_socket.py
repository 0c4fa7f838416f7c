"""Guards of reflex_socket.py (referral_app/infra/framework/): the page websocket's hooks into
Reflex's Socket.IO namespace (its disconnect, the events it refuses, its client-error limit) and
python-engineio's origin check (a security control: the app refuses to start without it).

Each fails if Reflex, python-socketio or python-engineio changes what the module reaches into.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from pathlib import Path

import pytest
from socketio import AsyncNamespace

from referral_app.infra.framework import FrameworkChanged
from referral_app.infra.framework.reflex_socket import (
    SocketHookError,
    bound_event_socket,
    guard_socket_origins,
    lift_process_wide_client_error_limit,
    on_socket_closed,
    refuse_unknown_events,
)
from referral_app.infra.live import referral_feed
from referral_app.infra.origins import socket_origin_allowed
from referral_app.settings import settings


def scope(host: str = "app.example.test:3000", scheme: str = "http", **extra) -> dict:
    return {"type": "http", "scheme": scheme, "headers": [(b"host", host.encode())], **extra}


# --- The origin check of the websocket handshake (infra/origins.py's policy) ---------------


def test_the_apps_socket_server_uses_the_policy(monkeypatch):
    from reflex.utils.prerequisites import get_and_validate_app

    monkeypatch.setattr(settings, "public_url", "")
    monkeypatch.setattr(settings, "allowed_origins", ())
    app = get_and_validate_app().app
    assert app.sio.eio.cors_allowed_origins is socket_origin_allowed
    environ = {"HTTP_ORIGIN": "http://evil.example.test:3000", "asgi.scope": scope(scheme="ws")}
    assert app.sio.eio._cors_allowed_origins(environ) == []  # what engineio checks before it accepts
    environ["HTTP_ORIGIN"] = "http://app.example.test:3000"
    assert app.sio.eio._cors_allowed_origins(environ) == ["http://app.example.test:3000"]


def test_engineio_checks_the_origin_of_every_handshake_with_the_callable():
    """python-engineio asks ``_cors_allowed_origins`` before it accepts any request (the
    websocket handshake included) and calls a callable with ``(origin, environ)``."""
    from engineio.async_server import AsyncServer
    from engineio.base_server import BaseServer

    handle = inspect.getsource(AsyncServer.handle_request)
    assert "allowed_origins = self._cors_allowed_origins(environ)" in handle
    check = inspect.getsource(BaseServer._cors_allowed_origins)
    assert "is_allowed = self.cors_allowed_origins(origin, environ)" in check


class _Server:
    """A python-engineio server as far as the check goes."""

    def __init__(self, check):
        self.cors_allowed_origins, self.cors_credentials = None, False
        type(self)._cors_allowed_origins = check


class _App:
    def __init__(self, eio):
        self.sio = type("Sio", (), {"eio": eio})()


def test_the_app_does_not_start_without_the_origin_hook():
    with pytest.raises(SocketHookError) as refused:
        guard_socket_origins(object(), socket_origin_allowed)  # no app.sio.eio
    assert isinstance(refused.value, FrameworkChanged)
    message = str(refused.value)
    assert message.startswith("python-engineio 4.15.1 changed AsyncServer.cors_allowed_origins")
    assert "referral_app/infra/framework/reflex_socket.py must be updated before this app may start" in message
    assert "tested for python-engineio 4.15.1" in message

    renamed = type("Renamed", (), {"_cors_allowed_origins": lambda self, environ, extra: []})
    with pytest.raises(SocketHookError, match="python-engineio 4.15.1 changed AsyncServer.cors_allowed_origins"):
        guard_socket_origins(_App(_Server(renamed._cors_allowed_origins)), socket_origin_allowed)


def test_the_app_does_not_start_when_the_origin_check_lets_a_foreign_page_in():
    """A server that no longer applies a callable (here: one that allows everything) is
    caught by the probe at start."""
    ignoring = _Server(lambda self, environ: None)  # None: every origin allowed
    with pytest.raises(SocketHookError, match="changed how AsyncServer applies a callable cors_allowed_origins"):
        guard_socket_origins(_App(ignoring), socket_origin_allowed)


def test_the_app_module_refuses_to_import_without_the_origin_hook(tmp_path):
    """At start: importing the app module with the hook gone stops with the message."""
    import os
    import subprocess

    script = (
        "import engineio.base_server as b\n"
        "del b.BaseServer._cors_allowed_origins\n"
        "import referral_app.referral_app\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert result.returncode != 0
    assert "FrameworkChanged" in result.stderr or "SocketHookError" in result.stderr, result.stderr[-2000:]
    assert "reflex_socket.py must be updated before this app may start" in result.stderr


# --- Reflex's event namespace ----------------------------------------------------------------


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
