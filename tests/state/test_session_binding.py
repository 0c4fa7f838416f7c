"""The session binding's way through Reflex's hydrate (the reach into Reflex is
referral_app/infra/framework/reflex_state.py, guarded in tests/framework/test_reflex_state.py):
the page keeps the binding in localStorage under the name the sign-in script writes, and
sends it with hydrate_and_load under the key the app reads. If Reflex changes either, these
fail; the app itself then fails closed (no binding read: nobody is signed in)."""

from __future__ import annotations

from referral_app.infra.cookies import BINDING_STORAGE_KEY, session_binding
from referral_app.infra.framework.reflex_state import client_storage_key, hydrate_storage_value
from referral_app.state.base import SessionState, browser_session_script, hydrate_binding


def test_the_binding_is_read_from_the_hydrate_payload_and_fails_closed():
    key = client_storage_key(SessionState, "session_binding")
    assert hydrate_binding({"vars": {key: "abc"}}) == "abc"
    assert hydrate_binding({"vars": {}}) == ""  # the page has none: no session counts
    assert hydrate_binding({"vars": {key: 5}}) == ""
    assert hydrate_binding({}) is None and hydrate_binding(None) is None  # a plain hydrate: the state's own
    assert hydrate_storage_value({"vars": {"other.x_rx_state_": "y"}}, SessionState, "session_binding") == ""


def test_the_sign_in_script_keeps_the_binding_and_the_sign_out_script_drops_it():
    signing_in = browser_session_script("POST", {"claim": "c"}, "/profile")
    assert f'localStorage.setItem("{BINDING_STORAGE_KEY}", b.binding)' in signing_in
    assert f'localStorage.removeItem("{BINDING_STORAGE_KEY}")' in browser_session_script("DELETE", None, "/", True)


def test_a_binding_is_an_hmac_of_the_token_under_the_secret(monkeypatch):
    from referral_app.settings import settings

    first = session_binding("token-a")
    assert len(first) == 43 and first != session_binding("token-b") and first == session_binding("token-a")
    monkeypatch.setattr(settings, "secret_key", "another secret")
    assert session_binding("token-a") != first
