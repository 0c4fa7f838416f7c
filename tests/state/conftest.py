"""Helpers to drive Reflex states directly, the way the backend runs their handlers."""

from __future__ import annotations

import asyncio
import inspect
import json
from urllib.parse import urlencode

import pytest
from reflex.istate.data import RouterData

from referral_app.infra.cookies import SESSION_COOKIE, session_binding
from referral_app.domain import auth, sessions

ORIGIN = "http://127.0.0.1:3000"


def make_state(cls, *, token: str | None = None, path: str = "/", query: dict | None = None):
    """An instance of ``cls`` as if a browser with ``token`` in its cookie (and its binding in
    the page's localStorage) opened ``path``."""
    state = cls()
    headers = {"origin": ORIGIN, "host": "127.0.0.1:3000"}
    if token is not None:
        headers["cookie"] = f"{SESSION_COOKIE}={token}"
        state.session_binding = session_binding(token)
    query = query or {}
    as_path = path + (f"?{urlencode(query)}" if query else "")
    state.router = RouterData.from_router_data(
        {"headers": headers, "pathname": path, "asPath": as_path, "query": query}
    )
    return state


def run(result) -> list:
    """Run a handler's result to the end; return the events it yielded or returned.

    A background event it hands on (``@rx.event(background=True)``, e.g. the SMS send) is
    run too, on the same state, as Reflex would run it next: its events take its place.
    """
    owner = _owner(result)
    if inspect.isasyncgen(result):

        async def collect():
            return [event async for event in result]

        result = asyncio.run(collect())
    elif inspect.iscoroutine(result):
        result = asyncio.run(result)
    if inspect.isgenerator(result) or isinstance(result, list):
        events = [event for event in result if event is not None]
    else:
        events = [] if result is None else [result]
    followed = []
    for event in events:
        handler = getattr(event, "handler", event)  # an EventSpec, or a bare EventHandler
        if owner is not None and getattr(handler, "is_background", False):
            args = {key._js_expr: value._var_value for key, value in getattr(event, "args", ())}
            followed += run(handler.fn(owner, **args))
        else:
            followed.append(event)
    return followed


def _owner(result):
    """The state a handler's coroutine or generator runs on (its ``self``)."""
    frame = getattr(result, "ag_frame", None) or getattr(result, "cr_frame", None) or getattr(result, "gi_frame", None)
    return frame.f_locals.get("self") if frame is not None else None


def event_name(event) -> str:
    """``_redirect``, ``LoginState.count_down``, ...: the function an event will run."""
    handler = getattr(event, "handler", event)  # an EventSpec, or a bare EventHandler
    return handler.fn.__qualname__


def event_arg(event, name: str):
    for key, value in event.args:
        if key._js_expr == name:
            return value._var_value
    raise KeyError(name)


def client_view(state) -> str:
    """Everything the browser can receive from ``state`` (all its vars), as JSON."""
    return json.dumps(state.dict(), default=str)


def sign_up(db, phone: str) -> tuple[int, str]:
    """A signed-in user: returns (user id, session token)."""
    issued = auth.request_code(db, phone, "127.0.0.1")
    user = auth.sign_in(db, phone, issued.code)
    return user.id, sessions.create_session(db, user.id)


@pytest.fixture
def user(db):
    return sign_up(db, "+79123456789")
