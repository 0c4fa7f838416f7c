"""The benchmark's floor (``bench/floor_app.py``) does what the app does, on the same tables:
what one writes, the other reads back the same way (PostgreSQL only: the floor is psycopg2)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import IS_POSTGRES

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="the floor runs on PostgreSQL (psycopg2) only")

PHONE_A, PHONE_B, PHONE_C = "+79123456789", "+79123456780", "+79123456781"


@pytest.fixture
def app_client(db):
    from referral_app.referral_app import api

    with TestClient(api, client=("198.51.100.7", 50000)) as client:
        yield client


@pytest.fixture
def floor(db):
    from bench import floor_app

    with TestClient(floor_app.app) as client:
        yield client


def code_for(app_client, phone: str) -> str:
    return app_client.post("/api/v1/auth/request_code/", json={"phone_number": phone}).json()["confirmation_code"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_floor_signs_in_with_the_apps_code_and_the_app_accepts_its_session(app_client, floor):
    code = code_for(app_client, PHONE_A)
    wrong = str(int(code) % 9000 + 1000) if code != "1000" else "1001"
    assert floor.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A,
                                                       "confirmation_code": wrong}).status_code == 400
    signed = floor.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": code})
    assert signed.status_code == 200, signed.text
    token = signed.json()["token"]
    me = app_client.get("/api/v1/profile/me/", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["phone_number"] == PHONE_A and len(me.json()["invite_code"]) == 6
    # Used up: the same code does not sign in twice, on either side.
    again = {"phone_number": PHONE_A, "confirmation_code": code}
    assert floor.post("/api/v1/auth/auth_code/", json=again).status_code == 400
    assert app_client.post("/api/v1/auth/auth_code/", json=again).status_code == 400


def test_floor_activation_and_profile_match_the_app(app_client, floor):
    tokens = {}
    for phone in (PHONE_A, PHONE_B, PHONE_C):
        signed = floor.post("/api/v1/auth/auth_code/",
                            json={"phone_number": phone, "confirmation_code": code_for(app_client, phone)})
        tokens[phone] = signed.json()["token"]
    code_a = app_client.get("/api/v1/profile/me/", headers=bearer(tokens[PHONE_A])).json()["invite_code"]
    code_b = app_client.get("/api/v1/profile/me/", headers=bearer(tokens[PHONE_B])).json()["invite_code"]

    # B enters A's code through the floor, C through the app.
    activated = floor.post("/api/v1/profile/activate_invite/", json={"invite_code": code_a.lower()},
                           headers=bearer(tokens[PHONE_B]))
    assert activated.status_code == 200, activated.text
    assert activated.json()["invited_by"] == PHONE_A
    assert app_client.post("/api/v1/profile/activate_invite/", json={"invite_code": code_a},
                           headers=bearer(tokens[PHONE_C])).status_code == 200

    # The rules hold on the floor too: once only, never one's own code, never a loop.
    assert floor.post("/api/v1/profile/activate_invite/", json={"invite_code": code_a},
                      headers=bearer(tokens[PHONE_B])).status_code == 400
    assert floor.post("/api/v1/profile/activate_invite/", json={"invite_code": code_a},
                      headers=bearer(tokens[PHONE_A])).status_code == 400
    assert floor.post("/api/v1/profile/activate_invite/", json={"invite_code": code_b},
                      headers=bearer(tokens[PHONE_A])).status_code == 400

    for phone in (PHONE_A, PHONE_B):
        from_app = app_client.get("/api/v1/profile/me/", headers=bearer(tokens[phone]))
        from_floor = floor.get("/api/v1/profile/me/", headers=bearer(tokens[phone]))
        assert from_floor.status_code == 200, from_floor.text
        assert from_floor.json() == from_app.json()
    profile_a = floor.get("/api/v1/profile/me/", headers=bearer(tokens[PHONE_A])).json()
    assert profile_a["invited_count"] == 2
    assert {item["phone_number"] for item in profile_a["invited_users"]} == {PHONE_B, PHONE_C}
    assert floor.get("/api/v1/profile/me/", headers=bearer("nope")).status_code == 401
