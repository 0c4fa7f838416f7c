"""Unknown hosts (issue 18): a request for a host the operator did not configure is refused
(400) before the app runs, so no link, QR code, redirect or admin form names that host.
ALLOWED_HOSTS, PUBLIC_URL's host, demo mode and loopback: referral_app/infra/hosts.py."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select
from starlette.testclient import WebSocketDenialResponse

from referral_app.referral_app import api
from referral_app.domain import staff
from referral_app.infra import hosts
from referral_app.models import CodeSend, StaffSession, User
from referral_app.settings import Settings, settings
from referral_app.state.profile import ProfileState
from tests.api.conftest import CLIENT_ADDRESS, PHONE_A, assert_error, sign_in
from tests.state.conftest import make_state, run, sign_up

STAFF_PASSWORD = "a long staff password"


@pytest.fixture
def production(monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ("app.example.com", "*.referral.example"))
    monkeypatch.setattr(settings, "public_url", "")
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)
    return settings


def client_for(host: str) -> TestClient:
    return TestClient(api, client=CLIENT_ADDRESS, base_url=f"http://{host}")


def test_a_forged_host_is_refused_before_anything_runs(db, production):
    with client_for("evil.example") as client:
        response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
        assert_error(response, 400, "request.host_not_allowed")
        page = client.get("/")
        assert page.status_code == 400 and page.headers["content-type"].startswith("text/plain")
        assert page.headers["x-content-type-options"] == "nosniff"
        for path in ("/admin/login", "/admin/", "/profile"):
            assert client.get(path, follow_redirects=False).status_code == 400, path
        # Probes and scrapes name the pod by its address: they answer any host.
        assert client.get("/api/health").status_code in (200, 503)
    assert db.exec(select(CodeSend)).all() == [] and db.exec(select(User)).all() == []
    # A host name that is not one: refused too.
    for host in ("", "app.example.com@evil.example", "app.example.com/x", "[::1", "app.example.com:x"):
        with TestClient(api, client=CLIENT_ADDRESS) as client:
            response = client.get("/api/v1/auth/request_code/", headers={"Host": host})
            assert response.status_code == 400, host


def test_configured_hosts_are_answered(db, production):
    for host in ("app.example.com", "APP.example.com:8443", "eu.referral.example", "a.b.referral.example"):
        with client_for(host) as client:
            response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
            assert response.status_code == 200, (host, response.text)
    for host in ("referral.example", "evilreferral.example", "app.example.com.evil.example", "localhost"):
        with client_for(host) as client:
            assert client.get("/").status_code == 400, host


def test_the_websocket_handshake_for_a_forged_host_is_refused(db, production):
    with client_for("evil.example") as client:
        with pytest.raises(WebSocketDenialResponse) as refused:
            with client.websocket_connect("/_event/?EIO=4&transport=websocket"):
                pass
        assert refused.value.status_code == 400


def test_a_forged_host_never_reaches_a_redirect_or_an_admin_form(db, production):
    staff.create_staff(db, "ops_chief", STAFF_PASSWORD)
    with client_for("evil.example") as client:
        page = client.get("/admin/login")
        assert page.status_code == 400 and "evil.example" not in page.text and "<form" not in page.text
        response = client.post("/admin/login", data={"username": "ops_chief", "password": STAFF_PASSWORD},
                               headers={"Origin": "http://evil.example"}, follow_redirects=False)
        assert response.status_code == 400 and "location" not in response.headers
    assert db.exec(select(StaffSession)).all() == []
    with client_for("app.example.com") as client:  # the configured host: forms and redirects name it
        page = client.get("/admin/login")
        assert page.status_code == 200 and 'action="http://app.example.com/admin/login"' in page.text
        assert "evil.example" not in page.text
        response = client.get("/admin/", follow_redirects=False)
        assert response.status_code in (302, 303, 307) and "evil" not in response.headers["location"]


def test_the_share_link_and_qr_code_name_only_a_configured_host(db, production):
    _, token = sign_up(db, "+79123456789")
    for origin, host, expected in [
        ("http://evil.example", "evil.example", ""),  # forged: not a link to the attacker's host
        ("http://app.example.com", "app.example.com", "http://app.example.com"),
    ]:
        state = make_state(ProfileState, token=token, path="/profile")
        state.router = state.router.__class__.from_router_data(
            {"headers": {"cookie": state.router.headers.cookie, "origin": origin, "host": host},
             "pathname": "/profile", "asPath": "/profile", "query": {}}
        )
        run(state.on_load())
        assert state.share_link == f"{expected}/?ref={state.invite_code}"
        assert "evil" not in state.share_link


def test_with_public_url_only_its_host_is_answered(db, monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ())
    monkeypatch.setattr(settings, "public_url", "https://referral.example.com/app")
    assert hosts.host_allowed("referral.example.com") and hosts.host_allowed("referral.example.com:443")
    assert not hosts.host_allowed("127.0.0.1:3000") and not hosts.host_allowed("evil.example")


def test_production_with_nothing_configured_answers_loopback_only(db, monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ())
    monkeypatch.setattr(settings, "public_url", "")
    for host in ("localhost:3000", "127.0.0.1:3000", "[::1]:3000"):
        assert hosts.host_allowed(host), host
    with client_for("203.0.113.5:3000") as client:
        assert client.get("/").status_code == 400
    with client_for("127.0.0.1:3000") as client:
        assert client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}).status_code == 200


def test_demo_mode_with_nothing_configured_answers_any_host_as_before(db, monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", True)
    monkeypatch.setattr(settings, "allowed_hosts", ())
    monkeypatch.setattr(settings, "public_url", "")
    with client_for("app.example.test:3000") as client:
        assert sign_in(client, PHONE_A)


@pytest.mark.parametrize(("value", "expected"), [
    ("app.example.com", ("app.example.com",)),
    (" App.Example.com , *.example.org,10.0.0.5,::1 ", ("app.example.com", "*.example.org", "10.0.0.5", "::1")),
    ("*", ("*",)),
])
def test_allowed_hosts_setting(value, expected):
    assert Settings(allowed_hosts=value).allowed_hosts == expected


@pytest.mark.parametrize("value", ["https://app.example.com", "app.example.com:443", "*example.com", "a..b", "-a.com"])
def test_a_bad_allowed_hosts_value_names_the_variable(value):
    from pydantic import ValidationError

    from referral_app.settings import describe

    with pytest.raises(ValidationError) as error:
        Settings(allowed_hosts=value)
    assert "ALLOWED_HOSTS" in describe(error.value)


def test_the_app_warns_at_start_about_plain_http_and_unconfigured_hosts(monkeypatch, caplog):
    from referral_app.referral_app import app

    assert hosts.warn_at_start in [getattr(task, "func", task) for task in app.get_lifespan_tasks()]
    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ())
    for url, warned in [("http://referral.example.com", True), ("https://referral.example.com", False),
                        ("http://127.0.0.1:3000", False), ("http://localhost:3000", False)]:
        monkeypatch.setattr(settings, "public_url", url)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="referral_app.infra.hosts"):
            import asyncio

            asyncio.run(hosts.warn_at_start())
        lines = [r for r in caplog.records if r.levelno == logging.WARNING and "HTTPS" in r.getMessage()]
        assert len(lines) == (1 if warned else 0), url
    monkeypatch.setattr(settings, "public_url", "")
    assert any("ALLOWED_HOSTS" in warning for warning in hosts.startup_warnings())


@pytest.mark.parametrize("value", ["app.example.com?", "app.example.com#", "app.example.com/", "a@app.example.com",
                                   "app.example.com\\x"])
def test_a_host_with_url_punctuation_is_no_host(value):
    """``app.example.com?`` once passed (an empty query) and made the admin's redirects name the
    backend's own address; RFC 9110 §7.2 allows none of these characters in a Host."""
    assert hosts.host_name(value) is None
    assert hosts.host_name("app.example.com:8443") == "app.example.com"


def test_an_admin_redirect_never_names_the_backend_for_a_host_with_a_query_mark(db, production):
    with TestClient(api, client=CLIENT_ADDRESS, base_url="http://app.example.com") as client:
        response = client.get("/admin/", headers={"Host": "app.example.com?"}, follow_redirects=False)
    assert response.status_code == 400
    assert "location" not in response.headers
