"""The UI in Debian's Chromium (Playwright): "Get code" → code on screen, "Activate" →
activated profile, and cold first loads of the sign-in page."""

from __future__ import annotations

import statistics
import time

from bench.harness import log, percentile
from bench.scenarios import UI_PHONES, Pools

UI_CHROMIUM = "/usr/bin/chromium"
UI_CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run"]


def ui_measurements(base_url: str, pools: Pools, inviter_code: str, repetitions: int, loads: int) -> dict:
    """Chromium: Get code → code shown, Activate → activated profile, cold first loads."""
    from playwright.sync_api import sync_playwright

    from referral_app.infra.cookies import SESSION_COOKIE
    from referral_app.i18n import translate

    # Timestamps taken in the page: the click event's own time, and the first DOM change
    # after which the target element is rendered with text (a MutationObserver, so the
    # polling of the test driver adds nothing).
    arm = """([button, target]) => {
        window.__bench = {click: null, shown: null};
        document.addEventListener('click', (event) => {
            if (window.__bench.click === null && event.target.closest(button)) window.__bench.click = event.timeStamp;
        }, {capture: true});
        const seen = () => {
            const el = document.querySelector(target);
            return el && el.getClientRects().length > 0 && el.textContent.trim() !== '';
        };
        const observer = new MutationObserver(() => {
            if (window.__bench.click !== null && seen()) { window.__bench.shown = performance.now(); observer.disconnect(); }
        });
        observer.observe(document.body, {childList: true, subtree: true, characterData: true, attributes: true});
    }"""

    # The websocket's traffic, timestamped, to split each interaction into the browser's part
    # (click → event sent), the server's (event sent → the delta with the new value
    # received) and rendering (that delta → element on screen).
    ws_script = """
        window.__ws = [];
        const NativeWebSocket = window.WebSocket;
        window.WebSocket = class extends NativeWebSocket {
            constructor(...args) {
                super(...args);
                this.addEventListener('message', (e) => window.__ws.push(['in', performance.now(), String(e.data)]));
            }
            send(data) { window.__ws.push(['out', performance.now(), '']); return super.send(data); }
        };
    """
    split = """([marker]) => {
        const b = window.__bench, ws = window.__ws || [];
        const sent = ws.find((e) => e[0] === 'out' && e[1] >= b.click);
        const got = ws.find((e) => e[0] === 'in' && e[1] >= b.click && e[2].includes(marker));
        return {browser: sent ? sent[1] - b.click : null, server: sent && got ? got[1] - sent[1] : null,
                render: got ? b.shown - got[1] : null};
    }"""

    def timed_click(page, button: str, target: str, marker: str) -> tuple[float, float, dict]:
        """(in-page ms from the click to the element on screen, driver ms from click() to visible, split)."""
        page.evaluate("window.__ws = []")
        page.evaluate(arm, [button, target])
        started = time.perf_counter()
        page.click(button)
        page.locator(target).wait_for(state="visible")
        page.wait_for_function("window.__bench.shown !== null")
        driver_ms = (time.perf_counter() - started) * 1000
        in_page = page.evaluate("window.__bench.shown - window.__bench.click")
        return in_page, driver_ms, page.evaluate(split, [marker])

    load_script = """
        window.__load = {};
        const NativeWebSocket = window.WebSocket;
        window.WebSocket = class extends NativeWebSocket {
            constructor(...args) {
                super(...args);
                this.addEventListener('message', () => {
                    if (window.__load.firstMessage === undefined) window.__load.firstMessage = performance.now();
                });
            }
        };
    """

    results: dict = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=UI_CHROMIUM, args=UI_CHROMIUM_ARGS)
        try:
            # 1. Get code: one page, the phone step over and over ("Use another number").
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_default_timeout(15_000)
            context.add_init_script(ws_script)
            page = context.new_page()
            page.goto(base_url + "/")
            change = page.get_by_role("button", name=translate("login.change_phone"))
            in_page, driver, splits = [], [], []
            for n in range(repetitions + 3):  # three warm-ups
                page.fill("#phone-input", f"+7{UI_PHONES + n}")
                shown, took, parts = timed_click(page, "#request-code-button", "#demo-code", "demo_code")
                if n >= 3:
                    in_page.append(shown)
                    driver.append(took)
                    splits.append(parts)
                change.click()
                page.locator("#phone-input").wait_for(state="visible")
            results["get_code"] = {"in_page": in_page, "driver": driver, "split": splits}
            context.close()
            log(f"UI Get code: median {statistics.median(in_page):.1f} ms, p95 {percentile(in_page, 95):.1f} ms")

            # 2. Activate: a fresh signed-in user each time (session cookie set directly),
            #    /profile?ref=CODE pre-fills the code; click "Activate", wait for the result.
            tokens = pools.signed_in_users(repetitions + 2)
            in_page, driver, splits = [], [], []
            for n, token in enumerate(tokens):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(15_000)
                context.add_init_script(ws_script)
                context.add_cookies([{"name": SESSION_COOKIE, "value": token, "domain": "127.0.0.1", "path": "/",
                                      "httpOnly": True, "sameSite": "Lax"}])
                page = context.new_page()
                page.goto(f"{base_url}/profile?ref={inviter_code}")
                page.wait_for_function(
                    "(code) => document.querySelector('#activate-input')?.value === code", arg=inviter_code
                )
                shown, took, parts = timed_click(page, "#activate-button", "#activated-code", "activated_code")
                if page.locator("#activated-code").inner_text() != inviter_code:
                    raise RuntimeError("the activated profile shows another code")
                if n >= 2:
                    in_page.append(shown)
                    driver.append(took)
                    splits.append(parts)
                context.close()
            results["activate"] = {"in_page": in_page, "driver": driver, "split": splits}
            log(f"UI Activate: median {statistics.median(in_page):.1f} ms, p95 {percentile(in_page, 95):.1f} ms")

            # 3. Cold first load of the sign-in page: a new context (empty cache) each time;
            #    bytes as transferred (CDP encodedDataLength: headers + compressed bodies).
            loads_data = []
            for _ in range(loads):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.add_init_script(load_script)
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                sizes: dict[str, float] = {}
                cdp.on("Network.loadingFinished", lambda e, sizes=sizes: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
                page.goto(base_url + "/", wait_until="load")
                page.locator("#phone-input").wait_for(state="visible")
                page.wait_for_function("window.__load.firstMessage !== undefined")
                page.wait_for_load_state("networkidle")
                timing = page.evaluate(
                    """() => { const n = performance.getEntriesByType('navigation')[0];
                       const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                       return {ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
                               fcp: fcp ? fcp.startTime : null, ws: window.__load.firstMessage}; }"""
                )
                timing["bytes"] = sum(sizes.values())
                timing["requests"] = len(sizes)
                loads_data.append(timing)
                context.close()
            results["first_load"] = loads_data
            log(f"UI first load: load event median {statistics.median(t['load'] for t in loads_data):.0f} ms, "
                f"{loads_data[0]['bytes'] / 1024:.0f} KiB in {loads_data[0]['requests']} requests")
        finally:
            browser.close()
    return results
