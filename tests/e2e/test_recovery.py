"""Outages: the app, started by scripts/run.sh on a PostgreSQL cluster and a Redis server
that this test creates (never the machine's shared ones), keeps serving pages while either
is down, reports it in /api/health, and comes back by itself when it returns."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import another_app
from tests.private_services import PG_BIN, REDIS_SERVER, PrivatePostgres, PrivateRedis, _as_postgres  # noqa: F401 (test_scale_out)

OUTAGE_SEEN_WITHIN_S = 10
RECOVERY_WITHIN_S = 30

pytestmark = pytest.mark.skipif(
    PG_BIN is None or REDIS_SERVER is None, reason="needs PostgreSQL's initdb/pg_ctl and redis-server"
)


def http(url: str, method: str = "GET", body: dict | None = None, timeout: float = 10) -> tuple[int, str, float]:
    """(status, body, seconds taken); never raises for an HTTP status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"} if data else {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), time.monotonic() - started


def wait_for_health(base_url: str, status: int, within: float) -> dict:
    """Poll /api/health until it answers ``status``; each answer must come within 6 s."""
    deadline = time.monotonic() + within
    seen = []
    while True:
        code, text, took = http(base_url + "/api/health")
        assert took < 6, f"/api/health took {took:.1f} s"
        seen.append(code)
        if code == status:
            return json.loads(text)
        if time.monotonic() > deadline:
            raise AssertionError(f"/api/health never answered {status} within {within} s; saw {seen[-5:]}: {text}")
        time.sleep(0.5)


def api_sign_in(base_url: str, phone: str) -> str:
    status, text, _ = http(base_url + "/api/auth/request_code", "POST", {"phone_number": phone})
    assert status == 200, text
    code = json.loads(text)["confirmation_code"]
    status, text, _ = http(base_url + "/api/auth/auth_code", "POST", {"phone_number": phone, "confirmation_code": code})
    assert status == 200, text
    return json.loads(text)["token"]


def assert_sign_in_page_loads(base_url: str) -> None:
    status, text, took = http(base_url + "/")
    assert status == 200 and "<html" in text.lower(), (status, text[:300])
    assert took < 5


@pytest.fixture(scope="module")
def services():
    postgres, redis_server = None, PrivateRedis()
    try:
        postgres = PrivatePostgres()
        postgres.start()
        redis_server.start()
        yield postgres, redis_server
    finally:
        redis_server.stop()
        if postgres is not None:
            postgres.destroy()


@pytest.fixture(scope="module")
def app(services, app_server, tmp_path_factory):
    """scripts/run.sh on the private PostgreSQL and Redis, two workers, JSON logs, beside
    the session's app."""
    postgres, redis_server = services
    extra_env = {
        "REFLEX_REDIS_URL": redis_server.url,
        "WORKERS": "2",
        "RATE_LIMITS_ENABLED": "false",
        "SMS_DELAY_SECONDS": "0",
        "LOG_JSON": "true",
    }
    with another_app(app_server, tmp_path_factory, database=postgres.url, extra_env=extra_env) as running:
        yield running.url, running.log


def test_postgres_outage_and_recovery(app, services):
    base_url, _ = app
    postgres, _ = services
    assert wait_for_health(base_url, 200, RECOVERY_WITHIN_S) == {"status": "ok", "database": "ok", "redis": "ok"}
    token = api_sign_in(base_url, "+79120000101")

    postgres.stop()
    try:
        body = wait_for_health(base_url, 503, OUTAGE_SEEN_WITHIN_S)
        assert body == {"status": "unavailable", "database": "unavailable", "redis": "ok"}
        assert_sign_in_page_loads(base_url)
        status, text, took = http(base_url + "/api/auth/request_code", "POST", {"phone_number": "+79120000102"})
        assert status == 503 and json.loads(text)["code"] == "service.unavailable", text
        assert "postgres" not in text.lower() and took < 10
    finally:
        postgres.ensure_running()  # so that a failure here does not fail the next tests too

    assert wait_for_health(base_url, 200, RECOVERY_WITHIN_S)["database"] == "ok"
    api_sign_in(base_url, "+79120000102")
    request = urllib.request.Request(base_url + "/api/profile/me", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # the session from before the outage
        assert json.loads(response.read())["phone_number"] == "+79120000101"


def test_redis_outage_and_recovery(app, services):
    base_url, _ = app
    _, redis_server = services
    wait_for_health(base_url, 200, RECOVERY_WITHIN_S)

    redis_server.stop()
    try:
        body = wait_for_health(base_url, 503, OUTAGE_SEEN_WITHIN_S)
        assert body == {"status": "unavailable", "database": "ok", "redis": "unavailable"}
        assert_sign_in_page_loads(base_url)
    finally:
        redis_server.ensure_running()

    assert wait_for_health(base_url, 200, RECOVERY_WITHIN_S) == {"status": "ok", "database": "ok", "redis": "ok"}
    assert_sign_in_page_loads(base_url)
    api_sign_in(base_url, "+79120000103")


def test_the_browser_app_works_after_both_outages(app, new_context):
    """Sign in through the page: Reflex's state (in the restarted Redis) and the database are back."""
    base_url, _ = app
    from playwright.sync_api import expect

    page = new_context().new_page()
    page.goto(base_url + "/")
    page.fill("#phone-input", "+79120000104")
    page.click("#request-code-button")
    expect(page.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"))
    page.fill("#code-input", page.locator("#demo-code").inner_text())  # signs in by itself
    page.wait_for_url(re.compile(r"/profile"))
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))


def test_requests_were_logged_as_json_with_request_ids(app):
    _, log = app
    entries = [entry for entry in events(log) if entry.get("logger") == "referral_app.requests"]
    health = [entry for entry in entries if entry["path"] == "/api/health"]
    assert {200, 503} <= {entry["status"] for entry in health}
    assert all(len(entry["request_id"]) == 32 for entry in health)
    assert any(entry["path"] == "/" and entry["status"] == 200 for entry in entries)
    # Sign-ins through the API carry their request's id; through the page, the Reflex event's.
    request_ids = {entry["request_id"] for entry in entries}
    sign_ins = [entry for entry in events(log) if entry.get("event") == "sign_in"]
    assert len(sign_ins) == 4 and all(entry["request_id"] for entry in sign_ins)
    assert sum(entry["request_id"] in request_ids for entry in sign_ins) == 3


def events(log: Path) -> list[dict]:
    entries = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries
