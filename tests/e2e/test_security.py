"""In the browser: the security headers are there, the app works under its CSP, limits show."""

from __future__ import annotations

import re
import urllib.request

from playwright.sync_api import expect

from referral_app.infra.responses import CONTENT_SECURITY_POLICY
from tests.e2e.conftest import screenshot
from tests.e2e.test_journey import new_phone, sign_in


def test_pages_carry_the_security_headers(base_url):
    for path in ("/", "/profile", "/api/docs"):
        with urllib.request.urlopen(base_url + path) as response:
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_the_whole_flow_runs_without_csp_violations(base_url, new_context):
    page = new_context().new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    sign_in(page, base_url, new_phone())
    page.click("#copy-invite-button")
    page.fill("#activate-input", "ZZZZZZ")
    page.click("#activate-button")
    expect(page.locator("#error-message")).to_be_visible()
    page.click("#logout-button")
    page.wait_for_url(re.compile(r"/$"))
    expect(page.locator("#phone-input")).to_be_visible()
    page.goto(base_url + "/api/docs")
    expect(page.locator(".swagger-ui")).to_be_visible()
    expect(page.get_by_text("/api/v1/profile/me/", exact=True).first).to_be_visible()
    screenshot(page, "api-docs-1440")
    assert not [text for text in problems if "Content Security Policy" in text or "Refused to" in text], problems


def test_send_limit_counts_down_in_the_ui(base_url, new_context):
    """The page's own countdown holds the resend button; a second tab meets the server's limit."""
    phone = new_phone()
    first_tab = new_context(width=375, height=812).new_page()
    first_tab.goto(base_url + "/")
    first_tab.fill("#phone-input", phone)
    first_tab.click("#request-code-button")
    expect(first_tab.locator("#demo-code")).to_be_visible()
    expect(first_tab.locator("#resend-code-button")).to_be_disabled()
    page = new_context(width=375, height=812).new_page()
    page.goto(base_url + "/")
    page.fill("#phone-input", phone)
    page.click("#request-code-button")
    message = page.locator("#error-message")
    expect(message).to_contain_text("Try again in")
    expect(page.locator("#request-code-button")).to_be_disabled()
    first = int(re.search(r"(\d+) s", message.inner_text()).group(1))
    expect(message).not_to_contain_text(f"in {first} s", timeout=5000)
    second = int(re.search(r"(\d+) s", message.inner_text()).group(1))
    assert second < first
    screenshot(page, "login-rate-limited-375")
