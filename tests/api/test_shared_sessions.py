"""The API and the browser share sessions: one token, one logout."""

from __future__ import annotations

from sqlmodel import select

from referral_app.domain import sessions
from referral_app.models import User
from referral_app.state.profile import ProfileState
from tests.api.conftest import PHONE_A, assert_error, bearer, sign_in
from tests.state.conftest import event_name, make_state, run


def test_an_api_token_opens_the_same_users_profile_page(client):
    token = sign_in(client, PHONE_A)
    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    assert state.loaded and state.phone_number == PHONE_A


def test_logout_through_the_api_ends_the_browser_session(client):
    token = sign_in(client, PHONE_A)
    assert client.post("/api/v1/auth/logout/", headers=bearer(token)).status_code == 204
    state = make_state(ProfileState, token=token, path="/profile")
    assert event_name(run(state.on_load())[0]) == "_redirect"


def test_logout_in_the_browser_ends_the_api_session(client):
    token = sign_in(client, PHONE_A)
    state = make_state(ProfileState, token=token, path="/profile")
    run(state.on_load())
    run(state.logout())
    assert_error(client.get("/api/v1/profile/me/", headers=bearer(token)), 401, "auth.required")


OWN_PAGE = {"Origin": "http://testserver"}  # what the sign-in page's fetch sends


def test_browser_session_claim_sets_an_http_only_cookie_once(client, db):
    sign_in(client, PHONE_A)
    user_id = db.exec(select(User.id)).one()
    claim = sessions.create_browser_claim(db, user_id)
    url = "/api/v1/auth/browser_session/"
    response = client.post(url, json={"claim": claim}, headers=OWN_PAGE)
    assert response.status_code == 200 and set(response.json()) == {"binding"}  # for the page's localStorage
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert_error(client.post(url, json={"claim": claim}, headers=OWN_PAGE), 401, "auth.required")
    assert_error(client.post(url, json={"claim": 5}, headers=OWN_PAGE), 400, "request.field_invalid", "claim")
