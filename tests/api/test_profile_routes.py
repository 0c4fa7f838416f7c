"""/profile routes: the profile, the referral list and activation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from referral_app.domain import referrals
from referral_app.domain.clock import utcnow
from referral_app.models import User
from tests.api.conftest import PHONE_A, PHONE_B, PHONE_C, assert_error, bearer, sign_in


def code_of(client, token: str) -> str:
    return client.get("/api/v1/profile/me/", headers=bearer(token)).json()["invite_code"]


def users_snapshot(db) -> list[tuple]:
    rows = db.exec(select(User.id, User.invited_by_id, User.activated_at, User.invited_count).order_by(User.id)).all()
    db.rollback()
    return [tuple(row) for row in rows]


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer", "token"])
def test_both_authorization_schemes_work(client, scheme):
    token = sign_in(client, PHONE_A)
    assert client.get("/api/v1/profile/me/", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Bearer " + "x" * 10_000, "Token 😀".encode()]
)
def test_missing_or_invalid_token_is_401_with_www_authenticate(client, header):
    sign_in(client, PHONE_A)
    headers = {} if header is None else {"Authorization": header}
    response = client.get("/api/v1/profile/me/", headers=headers)
    assert_error(response, 401, "auth.required")
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_profile_of_a_new_user(client):
    token = sign_in(client, PHONE_A)
    body = client.get("/api/v1/profile/me", headers=bearer(token)).json()
    assert body == {
        "phone_number": PHONE_A,
        "invite_code": body["invite_code"],
        "activated_invite_code": None,
        "invited_by": None,
        "invited_count": 0,
        "invited_users": [],
        "next_cursor": None,
    }
    assert len(body["invite_code"]) == 6


def test_activation_and_the_inviters_list(client):
    a, b, c = (sign_in(client, phone) for phone in (PHONE_A, PHONE_B, PHONE_C))
    a_code = code_of(client, a)
    response = client.post("/api/v1/profile/activate_invite/", json={"invite_code": f" {a_code[:3].lower()}-{a_code[3:]} "}, headers=bearer(b))
    assert response.status_code == 200
    assert response.json()["invited_by"] == PHONE_A and a_code in response.json()["message"]
    assert client.post("/api/profile/activate_invite", json={"invite_code": a_code}, headers=bearer(c)).status_code == 200

    me_b = client.get("/api/v1/profile/me/", headers=bearer(b)).json()
    assert me_b["activated_invite_code"] == a_code and me_b["invited_by"] == PHONE_A
    me_a = client.get("/api/v1/profile/me/", headers=bearer(a)).json()
    assert me_a["invited_count"] == 2
    assert [item["phone_number"] for item in me_a["invited_users"]] == [PHONE_C, PHONE_B]


@pytest.mark.parametrize(
    "code, error",
    [("", "invite.required"), ("ZZZZZZ", "invite.unknown"), ("O0I1", "invite.format"), ("x" * 10_000, "invite.format"), ("😀", "invite.format")],
)
def test_bad_invite_codes(client, db, code, error):
    sign_in(client, PHONE_A)
    b = sign_in(client, PHONE_B)
    before = users_snapshot(db)
    response = client.post("/api/v1/profile/activate_invite/", json={"invite_code": code}, headers=bearer(b))
    assert_error(response, 400, error, "invite_code")
    assert users_snapshot(db) == before


def test_own_code_second_activation_and_loop_are_refused(client, db):
    a, b, c = (sign_in(client, phone) for phone in (PHONE_A, PHONE_B, PHONE_C))
    assert_error(client.post("/api/v1/profile/activate_invite/", json={"invite_code": code_of(client, a)}, headers=bearer(a)), 400, "invite.own", "invite_code")
    client.post("/api/v1/profile/activate_invite/", json={"invite_code": code_of(client, a)}, headers=bearer(b))
    before = users_snapshot(db)
    assert_error(client.post("/api/v1/profile/activate_invite/", json={"invite_code": code_of(client, c)}, headers=bearer(b)), 400, "invite.already_activated", "invite_code")
    assert_error(client.post("/api/v1/profile/activate_invite/", json={"invite_code": code_of(client, b)}, headers=bearer(a)), 400, "invite.loop", "invite_code")
    assert users_snapshot(db) == before


def test_activation_needs_a_token(client, db):
    a = sign_in(client, PHONE_A)
    before = users_snapshot(db)
    assert_error(client.post("/api/v1/profile/activate_invite/", json={"invite_code": code_of(client, a)}), 401, "auth.required")
    assert users_snapshot(db) == before


def test_referral_pages_walk_the_whole_list(client, db):
    a = sign_in(client, PHONE_A)
    code = code_of(client, a)
    start = utcnow()
    phones = [f"+7912000{i:04d}" for i in range(7)]
    for i, phone in enumerate(phones):
        sign_in(client, phone)
        user_id = db.exec(select(User.id).where(User.phone_number == phone)).one()
        referrals.activate_invite(db, user_id, code, now=start + timedelta(seconds=i))  # commits
    seen, cursor = [], None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/profile/me/referrals/", params=params, headers=bearer(a)).json()
        seen += [item["phone_number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(phones))


@pytest.mark.parametrize(
    "params, code, field",
    [
        ({"limit": 0}, "referrals.limit", "limit"),
        ({"limit": 101}, "referrals.limit", "limit"),
        ({"limit": "abc"}, "request.field_invalid", "limit"),
        ({"cursor": "!!!"}, "referrals.cursor", "cursor"),
        ({"cursor": "x" * 5000}, "referrals.cursor", "cursor"),
    ],
)
def test_bad_paging_parameters(client, params, code, field):
    a = sign_in(client, PHONE_A)
    assert_error(client.get("/api/v1/profile/me/referrals/", params=params, headers=bearer(a)), 400, code, field)
