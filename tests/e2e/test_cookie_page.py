"""The 431 page's own script in Chromium (referral_app/infra/cookie_limit.py): it reloads
once, and when cookies are still too large after that it stops promising to reopen by itself.

The page is served to the browser by Playwright's router with the app's real body and
headers (its CSP included, so the script runs only if its hash matches); the app's
middleware itself is tested in tests/api/test_oversized_cookies_and_internal_paths.py.
"""

from __future__ import annotations

from referral_app.i18n import translate
from referral_app.infra.cookie_limit import _HEADERS, page

URL = "http://app.example.test/"


def test_after_its_one_reload_the_page_no_longer_promises_to_reopen(browser):
    loads = []
    headers = {name.decode(): value.decode() for name, value in _HEADERS}

    def answer(route):
        loads.append(route.request.url)
        route.fulfill(status=431, headers=headers, body=page("en"))

    context = browser.new_context()
    try:
        context.route(URL, answer)
        tab = context.new_page()
        tab.goto(URL)
        # The first load reloads once; the second sees the spent reload and says so.
        tab.wait_for_selector("#stuck", state="visible", timeout=15000)
        assert tab.is_hidden("#clearing")
        assert tab.inner_text("#stuck") == translate("cookies_too_large.stuck", "en")
        tab.wait_for_timeout(1500)
        assert len(loads) == 2  # one reload, no loop
        assert tab.evaluate("getComputedStyle(document.body).maxWidth") == "512px"
    finally:
        context.close()
