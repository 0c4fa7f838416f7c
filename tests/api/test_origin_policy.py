"""One origin policy (infra/origins.py): the app's own origin and ALLOWED_ORIGINS, nothing else.

Here: the policy itself, the browser-session endpoint, the websocket handshake's check as
python-engineio calls it, and the settings. The real handshake and CORS of the running
app, from pages of other origins in Chromium, are in tests/e2e/test_cross_origin.py.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from referral_app.domain import sessions
from referral_app.infra import origins
from referral_app.infra.origins import cors_origins, normalize_origin, origin_allowed, own_origin, socket_origin_allowed
from referral_app.models import User
from referral_app.settings import Settings, settings
from tests.api.conftest import PHONE_A, assert_error, sign_in

URL = "/api/v1/auth/browser_session/"


def scope(host: str = "app.example.test:3000", scheme: str = "http", **extra) -> dict:
    return {"type": "http", "scheme": scheme, "headers": [(b"host", host.encode())], **extra}


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("http://app.example.test:3000", "http://app.example.test:3000"),
        ("HTTP://App.Example.TEST:3000/", "http://app.example.test:3000"),
        ("https://app.example.test:443", "https://app.example.test"),
        ("http://app.example.test:80", "http://app.example.test"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("null", None),
        ("", None),
        ("app.example.test", None),
        ("ftp://app.example.test", None),
        ("http://app.example.test:99999", None),
        ("http://user:pass@app.example.test", None),
        ("http://app.example.test/path", None),
        ("http://app.example.test?x=1", None),
        ("http://app example.test", None),
        ("http://app.exämple.test", None),
        ("javascript:alert(1)", None),
    ],
)
def test_origins_are_compared_in_their_normal_form(value, normal):
    assert normalize_origin(value) == normal


def test_the_own_origin_is_the_requests_scheme_host_and_port(monkeypatch):
    monkeypatch.setattr(settings, "public_url", "")
    assert own_origin(scope()) == "http://app.example.test:3000"
    assert own_origin(scope(scheme="https", host="app.example.test")) == "https://app.example.test"
    assert own_origin(scope(scheme="wss", host="app.example.test:443")) == "https://app.example.test"
    assert own_origin(scope(scheme="ws")) == "http://app.example.test:3000"
    no_host = {"type": "http", "scheme": "http", "headers": [], "server": ("127.0.0.1", 3000)}
    assert own_origin(no_host) == "http://127.0.0.1:3000"
    assert own_origin(scope(host="evil host")) is None


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example.test:3000",  # a sibling subdomain: same site, other origin
        "http://app.example.test:3001",  # another port of the same host
        "https://app.example.test:3000",  # another scheme
        "http://example.test:3000",  # the parent domain
        "http://app.example.test.evil.example:3000",
        "null",
        "",
        None,
    ],
)
def test_nothing_but_the_own_origin_is_allowed(origin, monkeypatch):
    monkeypatch.setattr(settings, "public_url", "")
    monkeypatch.setattr(settings, "allowed_origins", ())
    assert not origin_allowed(origin, scope())
    assert origin_allowed("http://app.example.test:3000", scope())
    assert origin_allowed("HTTP://APP.example.test:3000", scope())


def test_public_url_replaces_the_requests_own_origin(monkeypatch):
    monkeypatch.setattr(settings, "public_url", "https://referral.example.test/app")
    monkeypatch.setattr(settings, "allowed_origins", ())
    assert own_origin(scope()) == "https://referral.example.test"
    assert origin_allowed("https://referral.example.test", scope())
    # The request's own host is no longer enough (a DNS-rebinding page names itself as the host).
    assert not origin_allowed("http://app.example.test:3000", scope())
    assert cors_origins() == ["https://referral.example.test"]


def test_allowed_origins_are_allowed_too(monkeypatch):
    monkeypatch.setattr(settings, "public_url", "")
    monkeypatch.setattr(settings, "allowed_origins", ("https://shop.example.test",))
    assert origin_allowed("https://shop.example.test", scope())
    assert origin_allowed("https://SHOP.example.test:443", scope())
    assert not origin_allowed("http://shop.example.test", scope())
    assert cors_origins() == ["https://shop.example.test"]


def test_no_cors_origin_unless_configured(monkeypatch):
    """The app's own pages need no CORS: by default no other page may read a response."""
    monkeypatch.setattr(settings, "public_url", "")
    monkeypatch.setattr(settings, "allowed_origins", ())
    assert cors_origins() == []


def test_the_websocket_check_reads_the_handshakes_own_scope(monkeypatch):
    """python-engineio calls ``cors_allowed_origins(origin, environ)`` with the ASGI scope in the environ."""
    monkeypatch.setattr(settings, "public_url", "")
    monkeypatch.setattr(settings, "allowed_origins", ())
    environ = {"asgi.scope": scope(scheme="ws")}
    assert socket_origin_allowed("http://app.example.test:3000", environ)
    assert not socket_origin_allowed("http://evil.example.test:3000", environ)
    assert not socket_origin_allowed("http://app.example.test:3001", environ)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ALLOWED_ORIGINS", "*"),
        ("ALLOWED_ORIGINS", "https://ok.example, evil"),
        ("ALLOWED_ORIGINS", "https://shop.example/path"),
        ("ALLOWED_ORIGINS", "null"),
        ("PUBLIC_URL", "referral.example.com"),
        ("PUBLIC_URL", "ftp://referral.example.com"),
        ("PUBLIC_URL", "https://user:pw@referral.example.com"),
        ("PUBLIC_URL", "https://referral.example.com/?x=1"),
    ],
)
def test_bad_origin_settings_stop_the_start(variable, value):
    with pytest.raises(Exception) as raised:
        Settings(**{variable.lower(): value, "secret_key": "x"})
    assert variable.lower() in str(raised.value)


def test_origin_settings_are_kept_in_their_normal_form():
    read = Settings(secret_key="x", allowed_origins="HTTPS://Shop.Example:443, http://a.example:8080",
                    public_url="https://referral.example.com/")
    assert read.allowed_origins == ("https://shop.example", "http://a.example:8080")
    assert read.public_url == "https://referral.example.com"


# The browser-session endpoint


@pytest.fixture
def claim(client, db):
    sign_in(client, PHONE_A)
    user_id = db.exec(select(User.id)).one()
    db.rollback()
    return sessions.create_browser_claim(db, user_id)


FOREIGN = [
    {"Origin": "http://evil.testserver"},  # a sibling subdomain
    {"Origin": "http://testserver:8080"},  # another port
    {"Origin": "https://testserver"},
    {"Origin": "null"},
    {"Origin": "http://evil.example", "Referer": "http://testserver/"},
    {"Referer": "http://evil.testserver/page"},
    {},  # a browser always sends Origin with fetch POST and DELETE: none means no page of ours
]


@pytest.mark.parametrize("headers", FOREIGN, ids=repr)
def test_a_page_of_another_origin_cannot_sign_the_visitor_in(client, claim, headers):
    """Login forgery: a sibling page trading the attacker's claim would sign the visitor into the attacker's account."""
    response = client.post(URL, json={"claim": claim}, headers=headers)
    assert_error(response, 403, "request.origin_not_allowed")
    assert "set-cookie" not in response.headers
    # The claim is still unused: the page of the app's own origin can trade it.
    assert client.post(URL, json={"claim": claim}, headers={"Origin": "http://testserver"}).status_code == 200


@pytest.mark.parametrize("headers", FOREIGN, ids=repr)
def test_a_page_of_another_origin_cannot_sign_the_visitor_out(client, db, claim, headers):
    token = sessions.claim_browser_session(db, claim)
    response = client.delete(URL, headers=headers, cookies={"referral_session": token})
    assert_error(response, 403, "request.origin_not_allowed")
    assert "set-cookie" not in response.headers
    assert sessions.authenticated_user_id(db, token)
    db.rollback()


def test_the_apps_own_page_and_allowed_origins_are_served(client, db, claim, monkeypatch):
    monkeypatch.setattr(settings, "allowed_origins", ("https://shop.example",))
    assert client.post(URL, json={"claim": claim}, headers={"Origin": "https://shop.example"}).status_code == 200
    # A browser that sends no Origin (older ones) is known by the Referer of our own page.
    response = client.delete(URL, headers={"Referer": "http://testserver/profile"})
    assert response.status_code == 204
