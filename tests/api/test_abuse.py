"""Abuse through the API: send limits answer 429, and guessing a code gets nowhere."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select

from referral_app.models import AuthSession, CodeSend, User
from referral_app.referral_app import api
from tests.api.conftest import CLIENT_ADDRESS, PHONE_A, PHONE_B, PHONE_C, assert_error


def test_over_a_limit_is_429_with_retry_after(client, send_limits):
    assert client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}).status_code == 200
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
    assert_error(response, 429, "rate.limited")
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= send_limits.send_cooldown_seconds
    assert str(retry_after) in response.json()["message"]


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_ip_limit(client, send_limits, monkeypatch):
    monkeypatch.setattr(send_limits, "sends_per_ip_10min", 3)
    statuses = [
        client.post(
            "/api/v1/auth/request_code/",
            json={"phone_number": f"+7912000000{i}"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]


def test_addresses_of_one_ipv6_slash_64_share_one_ip_limit(db, send_limits, monkeypatch):
    """One IPv6 subscriber holds a whole /64 (RFC 6177): rotating addresses in it is one client."""
    monkeypatch.setattr(send_limits, "sends_per_ip_10min", 3)

    def send(address: str, number: int) -> int:
        with TestClient(api, client=(address, 40000)) as client:
            return client.post("/api/v1/auth/request_code/", json={"phone_number": f"+7912345{number:04d}"}).status_code

    assert [send(f"2001:db8:1:2::{i + 1:x}", i) for i in range(5)] == [200, 200, 200, 429, 429]
    assert send("2001:db8:1:3::1", 10) == 200  # the next /64 is another client
    assert db.exec(select(CodeSend.client_ip).order_by(CodeSend.id)).all() == ["2001:db8:1:2::/64"] * 3 + [
        "2001:db8:1:3::/64"
    ]


def test_forwarded_for_from_a_trusted_proxy_names_the_client(client, db, send_limits, monkeypatch):
    monkeypatch.setattr(send_limits, "sends_per_ip_10min", 1)
    monkeypatch.setattr(send_limits, "trusted_proxies", (CLIENT_ADDRESS[0],))
    first = {"X-Forwarded-For": "203.0.113.1"}
    second = {"X-Forwarded-For": "203.0.113.2"}
    assert client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}, headers=first).status_code == 200
    assert client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_B}, headers=second).status_code == 200
    assert client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_C}, headers=first).status_code == 429
    logged = db.exec(select(CodeSend.client_ip).order_by(CodeSend.id)).all()
    assert logged == ["203.0.113.1", "203.0.113.2"]


def test_brute_force_stops_after_five_guesses_per_code_and_the_send_limits(client, db, send_limits, monkeypatch):
    """An attacker who keeps asking for codes and guessing gets at most 5 guesses per code
    and 5 codes per 10 minutes: 25 checked guesses, none of them right."""
    monkeypatch.setattr(send_limits, "send_cooldown_seconds", 0)
    checked = codes_issued = 0
    for _ in range(10):
        response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
        if response.status_code == 429:
            continue
        codes_issued += 1
        real = response.json()["confirmation_code"]
        for guess in range(20):
            attempt = f"{guess:04d}" if f"{guess:04d}" != real else "9999"
            answer = client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": attempt})
            assert answer.status_code == 400
            code = answer.json()["code"]
            if code == "code.wrong" or (code == "code.too_many_attempts" and guess == 4):
                checked += 1
    assert codes_issued == 5
    assert checked == 25
    assert db.exec(select(func.count()).select_from(User)).one() == 0
    assert db.exec(select(func.count()).select_from(AuthSession)).one() == 0


def test_every_forwarded_for_line_is_read(client, db, send_limits, monkeypatch):
    """A proxy that adds its own header line must not let the client's own line win."""
    monkeypatch.setattr(send_limits, "trusted_proxies", (CLIENT_ADDRESS[0],))
    headers = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.5")]
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}, headers=headers)
    assert response.status_code == 200
    assert db.exec(select(CodeSend.client_ip)).one() == "203.0.113.5"
