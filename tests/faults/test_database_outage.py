"""PostgreSQL refusing connections (SPEC §16): 503 with Retry-After within a few seconds,
never a 500 or a hang; pages say so and no button stays stuck; the app recovers by itself
and nothing written before is lost.

The app is started by scripts/run.sh on a private PostgreSQL that the test crashes
(``pg_ctl stop -m immediate``: every backend ends at once, like a crash) and starts again.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from referral_app.i18n import translate
from tests.faults.conftest import api_sign_in, bearer, http, started_app, wait_until

# Each answer during the outage comes within this (DATABASE_CONNECT_TIMEOUT_SECONDS=3 here).
ANSWER_WITHIN_S = 8
RECOVERY_WITHIN_S = 40
OWNER, INVITED, NEW = "+79120000301", "+79120000302", "+79120000303"


@pytest.fixture(scope="module")
def app(private_postgres, tmp_path_factory):
    log = tmp_path_factory.mktemp("db-outage") / "app.log"
    with started_app(log, private_postgres.url, {"DATABASE_CONNECT_TIMEOUT_SECONDS": "3"}) as running:
        yield running


@pytest.fixture
def outage(private_postgres):
    """PostgreSQL crashed for the test's body; running again afterwards whatever happened."""
    private_postgres.stop("immediate")
    try:
        yield private_postgres
    finally:
        private_postgres.ensure_running()


def _profile(app, token: str, language: str = "en"):
    return http(app.url + "/api/v1/profile/me/", headers={**bearer(token), "Accept-Language": language}, timeout=30)


def _assert_unavailable(answer, language: str) -> None:
    status, headers, text, took = answer
    assert status == 503, (status, text)
    assert took < ANSWER_WITHIN_S, f"took {took:.1f} s"
    retry_after = {name.lower(): value for name, value in headers.items()}.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and 1 <= int(retry_after) <= 60, headers
    body = json.loads(text)
    assert body["code"] == "service.unavailable"
    assert body["message"] == translate("service.unavailable", language)
    assert "postgres" not in text.lower() and "sql" not in text.lower()


def test_api_answers_503_with_retry_after_then_recovers_with_nothing_lost(app, private_postgres):
    owner_token = api_sign_in(app.url, OWNER)
    invited_token = api_sign_in(app.url, INVITED)
    status, _, text, _ = _profile(app, owner_token)
    assert status == 200, text
    owner_before = json.loads(text)

    private_postgres.stop("immediate")
    try:
        for language in ("en", "ru"):
            lang = {"Accept-Language": language}
            _assert_unavailable(_profile(app, owner_token, language), language)
            _assert_unavailable(http(app.url + "/api/v1/auth/request_code/", "POST", {"phone_number": NEW},
                                     headers=lang, timeout=30), language)
            _assert_unavailable(http(app.url + "/api/v1/auth/auth_code/", "POST",
                                     {"phone_number": NEW, "confirmation_code": "1234"}, headers=lang, timeout=30),
                                language)
            _assert_unavailable(http(app.url + "/api/v1/profile/activate_invite/", "POST",
                                     {"invite_code": owner_before["invite_code"]},
                                     headers={**bearer(invited_token), **lang}, timeout=30), language)
        status, _, text, took = http(app.url + "/api/v1/health/", timeout=30)
        assert (status, json.loads(text)["database"]) == (503, "unavailable") and took < ANSWER_WITHIN_S
        # The pages are files: they are still served.
        assert http(app.url + "/")[0] == 200
        # The staff console looks its session up before any route runs: a 503 too, never a 500.
        bound_cookie = f"referral_admin=a-session-id.{'b' * 32}"  # <session id>.<binding> (admin/auth.py)
        status, headers, text, took = http(app.url + "/admin/", headers={"Cookie": bound_cookie}, timeout=30)
        assert status == 503 and took < ANSWER_WITHIN_S, (status, text[:300])
        assert {name.lower(): value for name, value in headers.items()}["retry-after"].isdigit()
        assert text in {translate("service.unavailable", language) for language in ("en", "ru")}
    finally:
        private_postgres.ensure_running()

    # Back by itself, without a restart of the app; the session and the data from before are there.
    wait_until(lambda: _profile(app, owner_token)[0] == 200, RECOVERY_WITHIN_S, "profile/me answers again")
    assert json.loads(_profile(app, owner_token)[2]) == owner_before
    assert http(app.url + "/api/v1/health/")[0] == 200
    status, _, text, _ = http(app.url + "/api/v1/profile/activate_invite/", "POST",
                              {"invite_code": owner_before["invite_code"]}, headers=bearer(invited_token))
    assert status == 200, text
    assert json.loads(_profile(app, owner_token)[2])["invited_count"] == 1
    api_sign_in(app.url, NEW)  # request_code and auth_code work again


def test_a_page_says_the_service_is_unavailable_and_its_button_works_again(app, private_postgres, new_context):
    """A sign-in page open while PostgreSQL is down: the click gets the catalogue's message
    in the page's language, the button does not stay in its loading state, and once the
    database is back the same page signs in."""
    from playwright.sync_api import expect

    page = new_context(locale="ru-RU").new_page()
    page.goto(app.url + "/")
    page.fill("#phone-input", "+79120000304")
    button = page.locator("#request-code-button")
    expect(button).to_be_enabled()

    private_postgres.stop("immediate")
    try:
        started = time.monotonic()
        button.click()
        expect(page.get_by_text(translate("service.unavailable", "ru"))).to_be_visible(timeout=ANSWER_WITHIN_S * 1000)
        assert time.monotonic() - started < ANSWER_WITHIN_S + 2
        expect(button).to_be_enabled()
        expect(button).not_to_have_attribute("data-loading", "true")
    finally:
        private_postgres.ensure_running()

    wait_until(lambda: http(app.url + "/api/v1/health/")[0] == 200, RECOVERY_WITHIN_S, "the database is back")
    button.click()
    expect(page.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"), timeout=15_000)
    page.fill("#code-input", page.locator("#demo-code").inner_text())  # signs in by itself
    page.wait_for_url(re.compile(r"/profile"), timeout=20_000)
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))


def test_a_profile_page_says_so_too_and_its_activation_goes_through_afterwards(app, private_postgres, new_context):
    from playwright.sync_api import expect

    inviter_code = json.loads(_profile(app, api_sign_in(app.url, "+79120000305"))[2])["invite_code"]
    page = new_context(locale="en-US").new_page()
    page.goto(app.url + "/")
    page.fill("#phone-input", "+79120000306")
    page.click("#request-code-button")
    expect(page.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"))
    page.fill("#code-input", page.locator("#demo-code").inner_text())
    page.wait_for_url(re.compile(r"/profile"))
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))

    button = page.locator("#activate-button")
    private_postgres.stop("immediate")
    try:
        page.fill("#activate-input", inviter_code)
        button.click()
        expect(page.get_by_text(translate("service.unavailable", "en"))).to_be_visible(timeout=ANSWER_WITHIN_S * 1000)
        expect(button).to_be_enabled()
    finally:
        private_postgres.ensure_running()

    wait_until(lambda: http(app.url + "/api/v1/health/")[0] == 200, RECOVERY_WITHIN_S, "the database is back")
    button.click()
    expect(page.locator("#activated-code")).to_have_text(inviter_code, timeout=15_000)
