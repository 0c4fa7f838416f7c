"""GET /api/health: the database and Redis, 200 or 503, always within a few seconds; and a
database outage elsewhere in the API is a clean JSON 503."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from referral_app.infra import db as app_db
from referral_app.infra import health
from referral_app.infra.db import make_engine
from referral_app.settings import settings
from tests.api.conftest import PHONE_A, assert_error, bearer, sign_in

MACHINE_REDIS = "redis://127.0.0.1:6379/0"
DB_PASSWORD = "not-a-real-password-9f3k"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_redis(monkeypatch):
    monkeypatch.setattr(settings, "redis_url", "")


@pytest.fixture
def database_down(monkeypatch):
    """The app's engine points at a port where nothing listens (PostgreSQL is "down")."""
    engine = make_engine(f"postgresql+psycopg2://referral:{DB_PASSWORD}@127.0.0.1:{_closed_port()}/referral")
    monkeypatch.setattr(app_db, "engine", engine)
    yield engine
    engine.dispose()


@pytest.fixture
def database_hangs(monkeypatch):
    """A "database" that accepts TCP connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        engine = make_engine(f"postgresql+psycopg2://referral@127.0.0.1:{listener.getsockname()[1]}/referral")
        monkeypatch.setattr(app_db, "engine", engine)
        monkeypatch.setattr(health, "DATABASE_TIMEOUT_SECONDS", 0.5)
        yield engine
    # Closing the listener resets the stuck connection, which ends the check's thread.
    engine.dispose()


def _redis_is_up() -> bool:
    try:
        health.check_redis(MACHINE_REDIS)
    except Exception:  # noqa: BLE001
        return False
    return True


@pytest.mark.parametrize("path", ["/api/health", "/api/health/", "/api/v1/health", "/api/v1/health/"])
def test_healthy_without_redis(client, no_redis, path):
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not configured"}
    assert response.headers["Cache-Control"] == "no-store"


def test_health_takes_only_get(client):
    response = client.post("/api/health", json={})
    assert_error(response, 405, "request.method_not_allowed")
    assert response.headers["Allow"] == "GET"


def test_database_down_is_a_503(client, no_redis, database_down):
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable", "redis": "not configured"}


def test_database_that_hangs_is_a_503_not_a_hang(client, no_redis, database_hangs):
    started = time.monotonic()
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"
    assert time.monotonic() - started < 3


def test_redis_configured_but_unreachable_is_a_503(client, monkeypatch):
    monkeypatch.setattr(settings, "redis_url", f"redis://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "ok", "redis": "unavailable"}
    assert time.monotonic() - started < 3


def test_redis_on_port_1_is_unavailable(client, monkeypatch):
    monkeypatch.setattr(settings, "redis_url", "redis://127.0.0.1:1")
    response = client.get("/api/v1/health/")
    assert response.status_code == 503
    assert response.json()["redis"] == "unavailable"


def test_both_down(client, monkeypatch, database_down):
    monkeypatch.setattr(settings, "redis_url", "redis://127.0.0.1:1")
    response = client.get("/api/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unavailable", "redis": "unavailable"}


@pytest.mark.skipif(not _redis_is_up(), reason="no Redis at 127.0.0.1:6379")
def test_reachable_redis_is_ok(client, monkeypatch):
    monkeypatch.setattr(settings, "redis_url", MACHINE_REDIS)
    response = client.get("/api/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_api_answers_a_clean_503_while_the_database_is_down(client, no_redis, monkeypatch, caplog):
    token = sign_in(client, PHONE_A)
    engine = make_engine(f"postgresql+psycopg2://referral:{DB_PASSWORD}@127.0.0.1:{_closed_port()}/referral")
    monkeypatch.setattr(app_db, "engine", engine)
    caplog.set_level(logging.WARNING)
    try:
        responses = [
            client.get("/api/v1/profile/me/", headers=bearer(token)),
            client.post("/api/auth/request_code", json={"phone_number": PHONE_A}),
            client.post("/api/auth/auth_code", json={"phone_number": PHONE_A, "confirmation_code": "1234"}),
        ]
    finally:
        engine.dispose()
    for response in responses:
        assert_error(response, 503, "service.unavailable")
        assert response.headers["content-type"] == "application/json"
        assert response.headers["Retry-After"].isdigit()
        assert DB_PASSWORD not in response.text and "Traceback" not in response.text
    assert "database unavailable" in caplog.text
    assert DB_PASSWORD not in caplog.text
    # Back to the real database (pool_pre_ping): the same token works again.
    monkeypatch.undo()
    assert client.get("/api/v1/profile/me/", headers=bearer(token)).status_code == 200


def test_operational_error_from_anywhere_is_a_503(client, no_redis, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from referral_app.domain import sessions

    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT secret_column FROM t WHERE code = %(code)s", {"code": "4821"}, Exception("gone"))

    token = sign_in(client, PHONE_A)
    monkeypatch.setattr(sessions, "authenticated_user_id", broken)
    response = client.get("/api/v1/profile/me/", headers=bearer(token))
    assert_error(response, 503, "service.unavailable")
    assert "secret_column" not in response.text and "4821" not in response.text


def test_the_503_message_is_translated(client, no_redis, monkeypatch, database_down):
    from referral_app.settings import settings

    monkeypatch.setattr(settings, "default_language", "ru")
    response = client.post("/api/auth/request_code", json={"phone_number": PHONE_A})
    assert_error(response, 503, "service.unavailable")
    assert response.json()["message"] == "Сервис временно недоступен. Попробуйте чуть позже."
