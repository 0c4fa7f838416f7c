"""A slow and a failing SMS gateway, in Chromium, against the app as `make run` starts it
with page state in Redis (SPEC §16).

The app runs on a redis-server of its own (free port) whose state lock expires after 2 s,
and sends its SMS to a real HTTP gateway in this test (SMS_WEBHOOK_URL), scripted per
test: slower than the lock lives, or failing.
"""

from __future__ import annotations

import itertools
import re
import shutil
import time

import pytest
from playwright.sync_api import expect

from tests.conftest import create_test_database
from tests.domain.test_sms import Gateway
from tests.e2e.conftest import RunningApp
from tests.private_services import PrivateRedis

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")

LOCK_EXPIRATION_MS = 2000
GATEWAY_SECONDS = 4.0  # twice the lock's life
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def gateway():
    server = Gateway()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture(scope="module")
def app(gateway, tmp_path_factory):
    redis_server = PrivateRedis()
    redis_server.start()
    extra_env = {
        "REFLEX_REDIS_URL": redis_server.url,
        "REFLEX_REDIS_LOCK_EXPIRATION": str(LOCK_EXPIRATION_MS),
        "REFLEX_REDIS_POOL_TIMEOUT": "1",  # Reflex wants it below the lock's life
        "WORKERS": "1",
        "SMS_WEBHOOK_URL": gateway.url,
        "SMS_WEBHOOK_TIMEOUT_SECONDS": "8",
        "SMS_WEBHOOK_RETRIES": "0",
        "SMS_SEND_TIMEOUT_SECONDS": "10",
        "SMS_LATE_NOTICE_SECONDS": "2",
    }
    app = RunningApp(create_test_database("sms_e2e"), tmp_path_factory.mktemp("app") / "app.log", extra_env)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):  # the gateway is on 127.0.0.1
        app.env.pop(name, None)
    try:
        app.start()
        yield app
    finally:
        if app.process is not None and app.process.poll() is None:
            app.stop()
        redis_server.stop()


def new_phone() -> str:
    return f"+7912555{next(_numbers):04d}"


def test_a_gateway_slower_than_the_state_lock_still_signs_in(app, gateway, new_context):
    gateway.script = [("slow", GATEWAY_SECONDS)]
    page = new_context().new_page()
    page.set_viewport_size({"width": 375, "height": 812})  # a phone: the late text wraps
    page.goto(app.url + "/")
    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")

    # The code step at once, saying the SMS is on its way, then that it is late; no countdown yet.
    expect(page.locator("#sms-status")).to_be_visible(timeout=3000)
    expect(page.locator("#code-sent-to")).to_contain_text("Sending a code by SMS to")
    expect(page.locator("#code-expires")).to_have_count(0)
    status = page.locator("#sms-status")
    sending_left = status.locator(":scope > *").last.bounding_box()["x"]
    expect(status).to_contain_text(re.compile("longer than usual"), timeout=5000)
    # The spinner keeps its size as the late text wraps, and the text its left edge.
    spinner = status.locator(".rt-Spinner").bounding_box()
    assert spinner["width"] >= 11, spinner
    assert abs(status.locator(":scope > *").last.bounding_box()["x"] - sending_left) <= 1
    field_top = page.locator("#code-input").bounding_box()["y"]

    code = page.locator("#demo-code")
    expect(code).to_have_text(re.compile(r"^\d{4}$"), timeout=15_000)
    expect(page.locator("#code-sent-to")).to_contain_text("We sent a code by SMS to")
    # The demo code's box had its place held: the field the person may be typing in stays put.
    assert abs(page.locator("#code-input").bounding_box()["y"] - field_top) <= 1
    countdown = page.locator("#code-expires")
    expect(countdown).to_be_visible()
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=5000)  # the countdown moves
    page.fill("#code-input", code.inner_text())  # signs in by itself on the last digit
    page.wait_for_url(re.compile(r"/profile"), timeout=15_000)
    expect(page.locator("#invite-code")).to_have_text(re.compile(r"^[2-9A-HJ-NP-Z]{6}$"))


def test_a_failing_gateway_is_named_and_the_resend_works(app, gateway, new_context):
    gateway.script = [500]  # the first send fails; the resend goes through
    page = new_context().new_page()
    page.goto(app.url + "/")
    page.fill("#phone-input", new_phone())
    page.click("#request-code-button")

    expect(page.locator("#error-message")).to_have_text("The SMS could not be sent. Ask for a new code.", timeout=15_000)
    expect(page.locator("#demo-code")).to_have_count(0)
    expect(page.locator("#code-sent-to")).to_contain_text("Could not send the SMS to")
    resend = page.locator("#resend-code-button")
    expect(resend).to_be_enabled()  # at once: the failed send holds no cooldown
    started = time.monotonic()
    resend.click()
    code = page.locator("#demo-code")
    expect(code).to_have_text(re.compile(r"^\d{4}$"), timeout=15_000)
    assert time.monotonic() - started < 15
    expect(page.locator("#error-message")).to_have_count(0)
    page.fill("#code-input", code.inner_text())
    page.wait_for_url(re.compile(r"/profile"), timeout=15_000)
