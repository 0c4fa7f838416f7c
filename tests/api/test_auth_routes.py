"""/auth routes: request a code, trade it for a token, log out."""

from __future__ import annotations

import pytest
from sqlalchemy import func
from sqlmodel import select

from referral_app.models import AuthSession, ConfirmationCode, User
from referral_app.settings import settings
from tests.api.conftest import PHONE_A, assert_error, bearer, sign_in

BAD_PHONES = ["", "abc", "😀", "'; DROP TABLE users; --", "x" * 10_000, "+7 912 ABC-DE-FG", "123"]


def rows(db, model) -> int:
    value = db.exec(select(func.count()).select_from(model)).one()
    db.rollback()
    return value


@pytest.mark.parametrize("path", ["/api/v1/auth/request_code/", "/api/v1/auth/request_code", "/api/auth/request_code/", "/api/auth/request_code"])
def test_request_code_answers_on_every_spelling_of_the_path(client, path):
    response = client.post(path, json={"phone_number": "8 912 345-67-89"})
    assert response.status_code == 200
    body = response.json()
    assert body["expires_in"] == settings.code_ttl_seconds
    assert body["confirmation_code"].isdigit() and len(body["confirmation_code"]) == settings.code_length


def test_without_demo_mode_the_code_is_not_in_the_answer(client, db, monkeypatch):
    monkeypatch.setattr(settings, "demo_mode", False)
    monkeypatch.setattr(settings, "allowed_hosts", ("testserver",))  # production answers configured hosts only
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
    assert response.status_code == 200
    assert response.json() == {"expires_in": settings.code_ttl_seconds}
    assert rows(db, ConfirmationCode) == 1


def test_answer_does_not_reveal_whether_the_phone_has_an_account(client):
    sign_in(client, PHONE_A)
    known = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}).json()
    unknown = client.post("/api/v1/auth/request_code/", json={"phone_number": "+79123456700"}).json()
    assert known.keys() == unknown.keys() and known["expires_in"] == unknown["expires_in"]


@pytest.mark.parametrize("phone", BAD_PHONES)
def test_bad_phone_is_a_400_naming_the_field_and_writes_nothing(client, db, phone):
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": phone})
    assert_error(response, 400, "phone.required" if phone == "" else "phone.invalid", "phone_number")
    assert rows(db, ConfirmationCode) == 0


@pytest.mark.parametrize("value", [5, None, ["+79123456789"], {"n": 1}, True])
def test_phone_of_the_wrong_type_is_a_400(client, db, value):
    assert_error(client.post("/api/v1/auth/request_code/", json={"phone_number": value}), 400, "request.field_invalid", "phone_number")
    assert rows(db, ConfirmationCode) == 0


def test_auth_code_returns_a_token_that_opens_the_profile(client):
    token = sign_in(client, PHONE_A)
    assert len(token) >= 43
    profile = client.get("/api/v1/profile/me/", headers=bearer(token))
    assert profile.status_code == 200 and profile.json()["phone_number"] == PHONE_A


def test_wrong_code_then_five_attempts_kill_the_code(client, db):
    code = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}).json()["confirmation_code"]
    wrong = "0000" if code != "0000" else "1111"
    for _ in range(4):
        assert_error(
            client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": wrong}),
            400, "code.wrong", "confirmation_code",
        )
    assert_error(
        client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": wrong}),
        400, "code.too_many_attempts", "confirmation_code",
    )
    assert_error(
        client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": code}),
        400, "code.too_many_attempts", "confirmation_code",
    )
    assert rows(db, User) == 0 and rows(db, AuthSession) == 0


@pytest.mark.parametrize("code", ["", "12", "abcd", "😀😀😀😀", "1" * 10_000, "1; --"])
def test_malformed_code_is_a_field_error(client, db, code):
    client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A})
    response = client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": code})
    assert_error(response, 400, "code.required" if code == "" else "code.format", "confirmation_code")
    assert db.exec(select(ConfirmationCode.attempts)).one() == 0
    db.rollback()


def test_missing_fields_are_named(client):
    assert_error(client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A}), 400, "request.field_missing", "confirmation_code")


def test_code_is_single_use(client):
    code = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}).json()["confirmation_code"]
    body = {"phone_number": PHONE_A, "confirmation_code": code}
    assert client.post("/api/v1/auth/auth_code/", json=body).status_code == 200
    assert_error(client.post("/api/v1/auth/auth_code/", json=body), 400, "code.wrong", "confirmation_code")


def test_logout_ends_the_session(client):
    token = sign_in(client, PHONE_A)
    assert client.post("/api/v1/auth/logout/", headers=bearer(token)).status_code == 204
    assert_error(client.get("/api/v1/profile/me/", headers=bearer(token)), 401, "auth.required")
    assert_error(client.post("/api/v1/auth/logout/", headers=bearer(token)), 401, "auth.required")


def test_logout_without_a_token_is_401(client):
    response = client.post("/api/v1/auth/logout/")
    assert_error(response, 401, "auth.required")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_code_sent_as_a_json_number_is_accepted_like_the_original_api(client):
    code = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}).json()["confirmation_code"]
    assert not code.startswith("0")
    response = client.post("/api/v1/auth/auth_code/", json={"phone_number": PHONE_A, "confirmation_code": int(code)})
    assert response.status_code == 200 and response.json()["token"]
