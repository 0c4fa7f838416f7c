"""The API's messages follow ``Accept-Language`` (SPEC §8) and say which in
``Content-Language``; the JSON contract is otherwise unchanged."""

from __future__ import annotations

import pytest

from referral_app.domain.sms import sms_sender
from referral_app.i18n import translate, translate_plural
from tests.api.conftest import PHONE_A, PHONE_B, assert_error, bearer, sign_in


@pytest.mark.parametrize(
    ("accept_language", "language"),
    [("ru-RU,ru;q=0.9,en;q=0.8", "ru"), ("en-US,en;q=0.9", "en"), ("de-DE, ru;q=0.3, en;q=0.5", "en"), ("fr", "en"), (None, "en")],
)
def test_errors_are_in_the_language_asked_for(client, accept_language, language):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": "12"}, headers=headers)
    assert_error(response, 400, "phone.invalid", "phone_number")
    assert response.json()["message"] == translate("phone.invalid", language)
    assert response.headers["Content-Language"] == language
    assert "Accept-Language" in response.headers["Vary"]


def test_errors_refused_before_routing_are_translated_too(client):
    response = client.post(
        "/api/v1/auth/request_code/", content=b"x", headers={"Content-Type": "text/plain", "Accept-Language": "ru"}
    )
    assert_error(response, 415, "request.not_json")
    assert response.json()["message"] == translate("request.not_json", "ru")
    missing = client.get("/api/v1/nowhere/", headers={"Accept-Language": "ru"})
    assert missing.json()["message"] == translate("request.not_found", "ru")


def test_success_messages_and_the_sms_follow_the_language(client):
    response = client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE_A}, headers={"Accept-Language": "ru"})
    assert response.status_code == 200 and response.headers["Content-Language"] == "ru"
    code = response.json()["confirmation_code"]
    assert sms_sender.outbox[-1] == (PHONE_A, translate_plural("sms.code", 5, "ru", code=code, minutes=5))

    owner = sign_in(client, PHONE_A)
    owner_code = client.get("/api/v1/profile/me/", headers=bearer(owner)).json()["invite_code"]
    token = sign_in(client, PHONE_B)
    activated = client.post(
        "/api/v1/profile/activate_invite/",
        json={"invite_code": owner_code},
        headers={**bearer(token), "Accept-Language": "ru-RU"},
    )
    assert activated.status_code == 200
    assert activated.json() == {"message": translate("invite.activated", "ru", code=owner_code), "invited_by": PHONE_A}


def test_the_api_keeps_e164_unmasked_for_ones_own_data(client):
    owner = sign_in(client, PHONE_A)
    owner_code = client.get("/api/v1/profile/me/", headers=bearer(owner)).json()["invite_code"]
    token = sign_in(client, PHONE_B)
    client.post("/api/v1/profile/activate_invite/", json={"invite_code": owner_code}, headers=bearer(token))
    mine = client.get("/api/v1/profile/me/", headers={**bearer(owner), "Accept-Language": "ru"}).json()
    assert mine["phone_number"] == PHONE_A
    assert [item["phone_number"] for item in mine["invited_users"]] == [PHONE_B]
    assert client.get("/api/v1/profile/me/", headers=bearer(token)).json()["invited_by"] == PHONE_A
