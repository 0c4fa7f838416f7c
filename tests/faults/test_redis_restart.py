"""Redis restarting leaves open pages working (SPEC §16).

The app runs with two workers on a private Redis without persistence; the test kills that
Redis (SIGKILL: page state, locks and live-update subscriptions are gone) and starts it
again on the same port while pages are open. The open pages go on by themselves: the
signed-in person is still signed in (the session is in the database and the cookie),
clicks work, live updates arrive again, nothing in the database is lost.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import create_test_database
from tests.faults.conftest import api_sign_in, bearer, http, started_app, wait_until

OWNER, FRIEND, LATE_FRIEND, WAITING = "+79120000501", "+79120000502", "+79120000503", "+79120000504"
# Reflex reconnects its socket with backoff; the bound is generous for a loaded machine.
RECOVERY_MS = 45_000


@pytest.fixture(scope="module")
def app(private_redis, tmp_path_factory):
    extra = {"REFLEX_REDIS_URL": private_redis.url, "WORKERS": "2"}
    log = tmp_path_factory.mktemp("redis-restart") / "app.log"
    with started_app(log, create_test_database("redis_restart"), extra) as running:
        yield running


def _ui_sign_in(page, base_url: str, phone: str) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/")
    page.fill("#phone-input", phone)
    page.click("#request-code-button")
    expect(page.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"))
    page.fill("#code-input", page.locator("#demo-code").inner_text())  # signs in by itself
    page.wait_for_url(re.compile(r"/profile"))
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))


def test_open_pages_go_on_after_a_redis_restart(app, private_redis, new_context):
    from playwright.sync_api import expect

    friend_token = api_sign_in(app.url, FRIEND)
    friend_code = json.loads(http(app.url + "/api/v1/profile/me/", headers=bearer(friend_token))[2])["invite_code"]

    profile = new_context().new_page()
    _ui_sign_in(profile, app.url, OWNER)
    owner_code = profile.locator("#invite-code").inner_text()
    expect(profile.locator("#referral-count")).to_have_text("0")
    # A second person, left at the code step.
    waiting = new_context().new_page()
    waiting.goto(app.url + "/")
    waiting.fill("#phone-input", WAITING)
    waiting.click("#request-code-button")
    expect(waiting.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"))

    private_redis.kill()
    private_redis.start()  # empty: no page state, no locks, no subscriptions

    # The open profile: a click works (activate the friend's code) and shows its result.
    profile.fill("#activate-input", friend_code)
    profile.click("#activate-button")
    expect(profile.locator("#activated-code")).to_have_text(friend_code, timeout=RECOVERY_MS)
    expect(profile.locator("#invite-code")).to_have_text(owner_code)  # still signed in, the same person
    # Live updates are heard again: someone enters the owner's code, the open page shows it.
    late_token = api_sign_in(app.url, LATE_FRIEND)
    status, _, text, _ = http(app.url + "/api/v1/profile/activate_invite/", "POST", {"invite_code": owner_code},
                              headers=bearer(late_token))
    assert status == 200, text
    expect(profile.locator("#referral-count")).to_have_text("1", timeout=RECOVERY_MS)

    # The page at the code step: where it was (the number, the step) was page state in
    # Redis, so it comes back by itself at the phone step, never stuck, and signs in from there.
    expect(waiting.locator("#phone-input")).to_be_visible(timeout=RECOVERY_MS)
    waiting.fill("#phone-input", WAITING)
    waiting.click("#request-code-button")
    expect(waiting.locator("#demo-code")).to_have_text(re.compile(r"^\d{4}$"), timeout=RECOVERY_MS)
    waiting.fill("#code-input", waiting.locator("#demo-code").inner_text())
    waiting.wait_for_url(re.compile(r"/profile"), timeout=RECOVERY_MS)
    expect(waiting.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))

    # A reload: still signed in; nothing in the database was lost.
    profile.reload()
    expect(profile.locator("#invite-code")).to_have_text(owner_code, timeout=RECOVERY_MS)
    expect(profile.locator("#activated-code")).to_have_text(friend_code)
    friend = json.loads(http(app.url + "/api/v1/profile/me/", headers=bearer(friend_token))[2])
    assert friend["invited_count"] == 1 and friend["invited_users"][0]["phone_number"] == OWNER
    assert wait_until(lambda: http(app.url + "/api/v1/health/")[0] == 200, 30, "healthy again")


def test_reflex_still_rebuilds_a_lost_state_the_way_we_rely_on():
    """infra/framework/reflex_state.py: a page event on a routeless tree is rehydrated first (hydrate and
    on_load), and a background task that re-enters a lost tree finds it routeless."""
    import inspect

    from reflex.istate.proxy import StateProxy
    from reflex_base.event.processor import BaseStateEventProcessor

    execute = inspect.getsource(BaseStateEventProcessor._execute_event)
    assert "not previous_router_data and event.name not in _hydrate_event_names()" in execute
    assert "await self._rehydrate(root_state)" in execute
    assert "on_load_internal" in inspect.getsource(BaseStateEventProcessor._rehydrate)
    enter = inspect.getsource(StateProxy.__aenter__)
    assert "not mutable_state.router_data" in enter and "_rehydrate_snapshot(mutable_state)" in enter
