"""Live updates: an open profile shows a new referral without a reload, on one worker and
on two workers sharing Redis; with two workers a reload and a server restart keep the user
signed in."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from referral_app.domain.phones import mask_phone
from referral_app.i18n import translate
from tests.e2e.conftest import another_app, screenshot
from tests.e2e.test_journey import new_phone, sign_in

REDIS_DB = 11  # a database of the machine's Redis used only by this test module


@pytest.fixture(scope="module")
def two_workers(app_server, tmp_path_factory):
    """A second server on the same database: 2 workers sharing state through Redis."""
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(url).flushdb()
    env = {"REFLEX_REDIS_URL": url, "WORKERS": "2"}
    with another_app(app_server, tmp_path_factory, extra_env=env) as server:
        yield server
    redis.Redis.from_url(url).flushdb()


def _live_update(base_url: str, new_context, label: str) -> None:
    alice = new_context().new_page()
    sign_in(alice, base_url, new_phone())
    code = alice.locator("#invite-code").inner_text()
    expect(alice.locator("#referral-count")).to_have_text("0")

    bob = new_context(width=375, height=812).new_page()
    bob_phone = new_phone()
    sign_in(bob, base_url, bob_phone)
    bob.fill("#activate-input", code)
    bob.click("#activate-button")
    expect(bob.locator("#activated-code")).to_have_text(code)

    # No reload on Alice's side: the count and the list change by themselves.
    expect(alice.locator("#referral-count")).to_have_text("1", timeout=2_000)
    newest = alice.locator("#referral-list [data-testid=referral-item]").first
    expect(newest).to_contain_text(mask_phone(bob_phone), timeout=2_000)
    expect(newest.locator("time")).to_have_text(translate("time.just_now"))  # relative, exact on hover
    assert newest.locator("time").get_attribute("title")
    screenshot(alice, f"profile-live-update-{label}")


def test_live_update_on_one_worker(base_url, new_context):
    _live_update(base_url, new_context, "one-worker")


def test_live_update_across_two_workers(two_workers, new_context):
    _live_update(two_workers.url, new_context, "two-workers")


def test_two_workers_full_journey_reload_and_restart(two_workers, new_context):
    page = new_context().new_page()
    sign_in(page, two_workers.url, new_phone())
    code = page.locator("#invite-code").inner_text()
    page.reload()
    expect(page.locator("#invite-code")).to_have_text(code)

    two_workers.restart()
    page.goto(two_workers.url + "/profile")
    # The stopped server may leave the page's Redis state lock behind: it expires in 10 s.
    expect(page.locator("#invite-code")).to_have_text(code, timeout=15_000)
    page.click("#logout-button")
    page.wait_for_url(re.compile(r"/$"))
