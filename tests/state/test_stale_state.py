"""No page state without a valid session: every hydrate re-checks the cookie's session and
drops the page data of a user whose session has ended (referral_app/state/base.py)."""

from __future__ import annotations

import asyncio
import json

import pytest
import reflex as rx
from reflex.istate.data import RouterData

from referral_app.domain import sessions
from referral_app.infra.cookies import SESSION_COOKIE, session_binding
from referral_app.infra.framework.reflex_state import client_storage_key
from referral_app.state.base import SessionState
from referral_app.state.login import LoginState
from referral_app.state.profile import ProfileState
from tests.state.conftest import ORIGIN, run, sign_up

ALICE, BOB = "+79123456789", "+79123456780"


def tab(token: str | None, path: str = "/profile"):
    """The whole state tree of one browser tab (what Reflex keeps per client token)."""
    root = rx.State()
    headers = {"origin": ORIGIN, "host": "127.0.0.1:3000"}
    if token is not None:
        headers["cookie"] = f"{SESSION_COOKIE}={token}"
    root.router = RouterData.from_router_data({"headers": headers, "pathname": path, "asPath": path, "query": {}})
    if token is not None:  # the page's localStorage holds the binding it got with the cookie
        root.get_substate(SessionState.get_full_name().split(".")).session_binding = session_binding(token)
    return root


def reconnect(root, token: str | None):
    """The same tab's state, reconnecting with another cookie (or none) and that cookie's
    binding in localStorage, as Reflex hydrates it: the app's middleware first, then the
    hydrate's snapshot of the whole tree."""
    from reflex.utils.prerequisites import get_and_validate_app
    from reflex_base.event import Event

    headers = {"origin": ORIGIN, "host": "127.0.0.1:3000"}
    if token is not None:
        headers["cookie"] = f"{SESSION_COOKIE}={token}"
    root.router = RouterData.from_router_data({"headers": headers, "pathname": "/profile", "asPath": "/profile",
                                               "query": {}})
    app = get_and_validate_app().app
    binding = session_binding(token) if token is not None else ""
    hydrate = Event(name=f"{rx.State.get_full_name()}.hydrate_and_load",
                    payload={"vars": {client_storage_key(SessionState, "session_binding"): binding}})
    assert asyncio.run(app._preprocess(root, hydrate)) is None  # the hydrate itself runs next
    root._reset_client_storage()
    return json.dumps(root.dict(), default=str)  # what the hydrate sends


def profile_of(root) -> ProfileState:
    return root.get_substate(ProfileState.get_full_name().split("."))


@pytest.fixture
def alice(db):
    return sign_up(db, ALICE)


def test_a_revoked_session_leaves_nothing_in_the_tab(db, alice):
    """After logout through the API, the old tab's client token without a cookie still sent
    the previous user's phone and invite code from the page state."""
    user_id, token = alice
    root = tab(token)
    page = profile_of(root)
    run(page.on_load())
    assert page.loaded and page.phone_number == ALICE
    invite_code = page.invite_code
    sessions.revoke_session(db, token)
    sent = reconnect(root, None)
    assert ALICE not in sent and invite_code not in sent
    assert not page.loaded and page.phone_number == ""


@pytest.mark.parametrize("how", ["revoked", "no cookie", "garbage cookie", "another user"])
def test_every_hydrate_rechecks_the_session(db, alice, how):
    _, token = alice
    root = tab(token)
    page = profile_of(root)
    run(page.on_load())
    invite_code = page.invite_code
    other = sign_up(db, BOB)[1] if how == "another user" else None
    if how == "revoked":
        sessions.revoke_session(db, token)
    cookie = {"revoked": token, "no cookie": None, "garbage cookie": "x" * 43, "another user": other}[how]
    sent = reconnect(root, cookie)
    assert ALICE not in sent and invite_code not in sent


def test_a_live_session_keeps_its_page(db, alice):
    _, token = alice
    root = tab(token)
    page = profile_of(root)
    run(page.on_load())
    sent = reconnect(root, token)
    assert ALICE in sent and page.loaded


def test_a_sign_in_in_progress_survives_a_reconnect(db):
    """Nobody's data yet: a network blip during sign-in must not lose the code step."""
    root = tab(None, path="/")
    login = root.get_substate(LoginState.get_full_name().split("."))
    login.step, login.phone_number = "code", ALICE
    reconnect(root, None)
    assert (login.step, login.phone_number) == ("code", ALICE)


def test_the_owner_is_recorded_by_the_session_check(db, alice):
    user_id, token = alice
    root = tab(token)
    page = profile_of(root)
    assert root.get_substate(SessionState.get_full_name().split("."))._data_owner is None
    run(page.on_load())
    assert root.get_substate(SessionState.get_full_name().split("."))._data_owner == user_id
