"""Cookies a sibling cannot replace: __Host- names over HTTPS, Secure as the client's scheme
(a trusted proxy's X-Forwarded-Proto included), and no session from a tossed cookie."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from referral_app.referral_app import api
from referral_app.domain import sessions, staff
from referral_app.infra.cookies import read_cookie, session_binding, session_token_from_header
from referral_app.models import User
from referral_app.settings import settings
from referral_app.state.profile import ProfileState
from tests.api.conftest import CLIENT_ADDRESS, PHONE_A, PHONE_B, sign_in
from tests.state.conftest import make_state, run

URL = "/api/v1/auth/browser_session/"
TLS_PROXY = [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.9")]


def attributes(set_cookie: str) -> tuple[str, dict[str, str]]:
    name_value, *parts = [part.strip() for part in set_cookie.split(";")]
    attrs = {}
    for part in parts:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    return name_value.split("=", 1)[0], attrs


def claim_for(client, db, phone: str = PHONE_A) -> str:
    sign_in(client, phone)
    user_id = db.exec(select(User.id).where(User.phone_number == phone)).one()
    db.rollback()
    return sessions.create_browser_claim(db, user_id)


def cookie_set_by(client, db, base: str, extra_headers=()) -> tuple[str, dict[str, str]]:
    response = client.post(URL, json={"claim": claim_for(client, db)}, headers=[("Origin", base), *extra_headers])
    assert response.status_code == 200, response.text
    name, attrs = attributes(response.headers["set-cookie"])
    token = response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]
    assert response.json() == {"binding": session_binding(token)}  # for the page's localStorage
    return name, attrs


def test_over_http_the_session_cookie_is_plain(client, db):
    name, attrs = cookie_set_by(client, db, "http://testserver")
    assert name == "referral_session"
    assert {"httponly", "path", "samesite", "max-age"} <= set(attrs) and "secure" not in attrs
    assert attrs["path"] == "/" and attrs["samesite"].lower() == "lax" and "domain" not in attrs


def test_over_https_the_session_cookie_is_secure_and_host_only(db):
    with TestClient(api, client=CLIENT_ADDRESS, base_url="https://testserver") as client:
        name, attrs = cookie_set_by(client, db, "https://testserver")
    assert name == "__Host-referral_session"
    assert "secure" in attrs and attrs["path"] == "/" and "domain" not in attrs and "httponly" in attrs


def test_behind_a_trusted_tls_proxy_both_cookies_are_secure(client, db, monkeypatch):
    """The weak point: behind a TLS proxy that sends X-Forwarded-Proto: https, neither cookie was Secure."""
    monkeypatch.setattr(settings, "trusted_proxies", (CLIENT_ADDRESS[0],))
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)
    name, attrs = cookie_set_by(client, db, "https://testserver", TLS_PROXY)
    assert name == "__Host-referral_session" and "secure" in attrs

    staff.create_staff(db, "ops_chief", "a long staff password")
    page = client.get("/admin/login", headers=TLS_PROXY)
    login_cookie = attributes(page.headers["set-cookie"])
    assert login_cookie[0] == "__Host-referral_admin_login" and "secure" in login_cookie[1]
    token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    # The test client keeps a Secure cookie out of plain-HTTP requests; the browser behind the proxy sends it.
    nonce = page.headers["set-cookie"].split(";", 1)[0]
    response = client.post(
        "/admin/login", data={"username": "ops_chief", "password": "a long staff password", "csrf_token": token,
                              "staff_binding": "b" * 32},
        headers=[("Origin", "https://testserver"), ("Cookie", nonce), *TLS_PROXY], follow_redirects=False,
    )
    assert response.status_code == 302, response.text[:300]
    admin_cookie = [attributes(v) for v in response.headers.get_list("set-cookie") if "referral_admin=" in v]
    assert [name for name, _ in admin_cookie] == ["__Host-referral_admin"]
    assert "secure" in admin_cookie[0][1] and "domain" not in admin_cookie[0][1]


def test_an_untrusted_peer_cannot_claim_https(client, db, monkeypatch):
    monkeypatch.setattr(settings, "trusted_proxies", ())
    name, attrs = cookie_set_by(client, db, "http://testserver", TLS_PROXY)
    assert name == "referral_session" and "secure" not in attrs


# Reading: a tossed cookie never becomes the session

VICTIM, ATTACKER = "victim-token", "attacker-token"


@pytest.mark.parametrize(
    ("header", "secure", "expected"),
    [
        (f"referral_session={VICTIM}", False, VICTIM),
        (f"other=1; referral_session={VICTIM}; more=2", False, VICTIM),
        # A sibling's Domain=example.test cookie arrives beside the app's own: nobody's session.
        (f"referral_session={VICTIM}; referral_session={ATTACKER}", False, None),
        (f"referral_session={ATTACKER}; referral_session={VICTIM}", False, None),
        # Over HTTPS only the __Host- name counts: a sibling cannot set it.
        (f"referral_session={ATTACKER}", True, None),
        (f"__Host-referral_session={VICTIM}; referral_session={ATTACKER}", True, VICTIM),
        (f"referral_session={ATTACKER}; __Host-referral_session={VICTIM}", True, VICTIM),
        (f"__Host-referral_session={VICTIM}; __Host-referral_session={ATTACKER}", True, None),
        ("referral_session=", False, None),
        ('referral_session="quoted"', False, "quoted"),
        ("garbage;;; =; referral_session", False, None),
        ("", False, None),
        (None, False, None),
    ],
)
def test_the_session_cookie_is_read_only_when_it_is_unambiguous(header, secure, expected):
    assert session_token_from_header(header, secure) == expected
    assert read_cookie(header, "referral_session", secure) == expected


def _page(cookie: str, binding: str, origin: str = "http://127.0.0.1:3000"):
    state = make_state(ProfileState, path="/profile")
    state.router = state.router.__class__.from_router_data(
        {"headers": {"origin": origin, "host": urlsplit(origin).netloc, "cookie": cookie},
         "pathname": "/profile", "asPath": "/profile", "query": {}}
    )
    state.session_binding = binding  # what the page's localStorage sent
    return state


def test_a_tossed_cookie_does_not_switch_the_page_to_another_account(client, db):
    victim, attacker = sign_in(client, PHONE_A), sign_in(client, PHONE_B)
    # A signed-out visitor: the sibling's cookie alone, and no binding of it in this origin's storage.
    for binding in ("", session_binding(victim), "x" * 43):
        state = _page(f"referral_session={attacker}", binding)
        db.rollback()
        run(state.on_load())
        assert state.phone_number != PHONE_B and not state.loaded, binding
    # A signed-in visitor: beside the tossed cookie, the page's binding picks its own, in either order.
    for cookie in (f"referral_session={victim}; referral_session={attacker}",
                   f"referral_session={attacker}; referral_session={victim}"):
        state = _page(cookie, session_binding(victim))
        db.rollback()
        run(state.on_load())
        assert state.loaded and state.phone_number == PHONE_A
    # Over HTTPS the page reads the __Host- cookie and nothing else.
    state = _page(f"referral_session={attacker}; __Host-referral_session={victim}", session_binding(victim),
                  origin="https://app.example")
    run(state.on_load())
    assert state.phone_number == PHONE_A
    state = _page(f"referral_session={attacker}", session_binding(attacker), origin="https://app.example")
    run(state.on_load())
    assert not state.loaded


def test_sign_out_over_https_revokes_the_host_cookies_session(db):
    with TestClient(api, client=CLIENT_ADDRESS, base_url="https://testserver") as client:
        token = sign_in(client, PHONE_A)
        response = client.delete(URL, headers={"Origin": "https://testserver",
                                                "Cookie": f"__Host-referral_session={token}"})
        assert response.status_code == 204
        name, attrs = attributes(response.headers["set-cookie"])
        assert name == "__Host-referral_session" and attrs["max-age"] == "0" and "secure" in attrs
        assert client.get("/api/v1/profile/me/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
