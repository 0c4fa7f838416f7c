"""No page state without a valid session, in Chromium: an old tab's client token, reused
without the cookie after the session ended, gets none of the previous user's data."""

from __future__ import annotations

import json
import re
import urllib.request

from playwright.sync_api import expect

from referral_app.infra.cookies import SESSION_COOKIE
from tests.e2e.test_journey import new_phone, sign_in


def test_a_reconnect_with_the_old_tabs_token_and_no_cookie_gets_no_user_data(base_url, new_context):
    """After logout through the API, reconnecting with the old tab's client token and no cookie
    still sent the previous user's phone and invite code from the page state."""
    first = new_context()
    page = first.new_page()
    phone = new_phone()
    sign_in(page, base_url, phone)
    invite_code = page.locator("#invite-code").inner_text()
    client_token = page.evaluate("window.sessionStorage.getItem('token')")
    token = next(c["value"] for c in first.cookies() if c["name"] == SESSION_COOKIE)
    request = urllib.request.Request(base_url + "/api/v1/auth/logout/", method="POST",
                                     headers={"Authorization": f"Bearer {token}"})
    assert urllib.request.urlopen(request).status == 204
    page.close()  # the tab is gone; its state stays on the server under its client token

    later = new_context()  # another browser: no cookie
    later.add_init_script(f"window.sessionStorage.setItem('token', {json.dumps(client_token)})")
    received: list[str] = []
    reused = later.new_page()
    reused.on("websocket", lambda ws: ws.on("framereceived", lambda frame: received.append(str(frame))))
    reused.goto(base_url + "/profile")
    reused.wait_for_url(re.compile(r"/$"))
    expect(reused.locator("#phone-input")).to_be_visible()
    reused.wait_for_timeout(1000)
    assert reused.evaluate("window.sessionStorage.getItem('token')") == client_token  # the same tab token
    assert received, "the page did not talk to the server"
    everything = "\n".join(received)
    assert phone not in everything and invite_code not in everything
