"""A hostile neighbour: pages of other origins, in Chromium, against the app as `make run` starts it.

The app is opened as http://app.example.test:<port>; the attacker's pages are served by a
small server of this module from http://evil.example.test:<other port> (a sibling
subdomain) and http://app.example.test:<other port> (another port of the same host).
Both are "same-site" for the app, so its SameSite=Lax cookies go along with their
requests: only the origin policy (referral_app/infra/origins.py) stands in the way.
Chromium maps *.example.test to 127.0.0.1 (--host-resolver-rules, tests/e2e/conftest.py).
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.request
import uuid

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from referral_app.domain import auth, sessions, staff
from referral_app.models import AuthSession, User
from referral_app.state.profile import ProfileState
from tests.e2e.test_admin_ui import STAFF_PASSWORD, staff_login
from tests.e2e.test_journey import new_phone, sign_in

HYDRATE = "reflex___state____state.hydrate_and_load"


class AttackerSite:
    """Serves the attacker's pages (HTML set by the tests) on a port of its own."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                body = pages.get(self.path.split("?")[0], "not found").encode()
                self.send_response(200 if self.path.split("?")[0] in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def origins(self) -> list[str]:
        """A sibling subdomain, and another port of the app's own host name."""
        return [f"http://evil.example.test:{self.port}", f"http://app.example.test:{self.port}"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker():
    site = AttackerSite()
    yield site
    site.close()


def app_origin(app_server) -> str:
    return f"http://app.example.test:{app_server.port}"


def run_attack(page, origin: str, attacker: AttackerSite, name: str, script: str, timeout: int = 20_000):
    """Open the attacker's page ``name`` (running ``script``, which ends by setting
    ``window.result``) in the victim's browser and return that result."""
    attacker.pages[f"/{name}.html"] = (
        "<!doctype html><title>a page about cats</title><body><script>\n"
        "window.result = undefined;\n" + script + "\n</script></body>"
    )
    page.goto(f"{origin}/{name}.html")
    page.wait_for_function("window.result !== undefined", timeout=timeout)
    return page.evaluate("window.result")


def new_user(app_db) -> tuple[int, str]:
    """A user made directly in the database: (id, invite code)."""
    phone = new_phone()
    issued = auth.request_code(app_db, phone, "127.0.0.1")
    user = auth.sign_in(app_db, phone, issued.code)
    app_db.rollback()
    return user.id, user.invite_code


def invited_by(app_db, user_id: int):
    value = app_db.exec(select(User.invited_by_id).where(User.id == user_id)).one()
    app_db.rollback()
    return value


# The websocket (/_event)

SOCKET_ATTACK = """
const result = {accepted: false, messages: [], closed: null};
const ws = new WebSocket(%(url)s);
ws.onmessage = (message) => {
  result.messages.push(String(message.data));
  if (String(message.data).startsWith("0{")) {
    result.accepted = true;
    // What the app's own page sends: connect with the hydrate of /profile (which runs its
    // on_load and sends the profile), then the attacker's own invite code to "activate".
    ws.send("40/_event," + JSON.stringify({event: {name: %(hydrate)s, payload: {},
      router_data: {pathname: "/profile/", asPath: "/profile/"}}}));
    setTimeout(() => ws.send("42/_event," + JSON.stringify(["event", {name: %(activate)s,
      payload: {form_data: {invite_code: %(code)s}}, router_data: {pathname: "/profile/", asPath: "/profile/"}}])), 1500);
  }
  if (message.data === "2") ws.send("3");  // engine.io ping
};
ws.onclose = (event) => { result.closed = event.code; };
setTimeout(() => { window.result = result; }, 5000);
"""


def test_a_page_of_another_origin_cannot_use_the_event_socket(app_server, new_context, attacker, app_db):
    """Hole 1: a sibling page opened /_event with the visitor's cookie, read the profile and
    spent the visitor's one activation on the attacker's code."""
    app = app_origin(app_server)
    page = new_context().new_page()
    phone = new_phone()
    sign_in(page, app, phone)
    victim_code = page.locator("#invite-code").inner_text()
    victim_id = _user_id(app_db, phone)
    _, attacker_code = new_user(app_db)
    activate = f"{ProfileState.get_full_name()}.activate"

    for origin in attacker.origins():
        url = f"ws://app.example.test:{app_server.port}/_event/?token={uuid.uuid4()}&EIO=4&transport=websocket"
        result = run_attack(page, origin, attacker, "socket", SOCKET_ATTACK % {
            "url": json.dumps(url), "hydrate": json.dumps(HYDRATE), "activate": json.dumps(activate),
            "code": json.dumps(attacker_code),
        })
        assert not result["accepted"], (origin, result)
        received = json.dumps(result["messages"])
        assert phone not in received and victim_code not in received, origin
        assert invited_by(app_db, victim_id) is None, origin  # the one activation is not spent

    # The app's own page still has its socket.
    page.goto(app + "/profile")
    expect(page.locator("#invite-code")).to_have_text(victim_code)
    page.fill("#activate-input", attacker_code)
    page.click("#activate-button")
    expect(page.locator("#activated-code")).to_have_text(attacker_code)


def _user_id(app_db, phone: str) -> int:
    value = app_db.exec(select(User.id).where(User.phone_number == phone)).one()
    app_db.rollback()
    return value


def handshake(port: int, origin: str | None, host: str = "app.example.test", cookie: str | None = None):
    """A raw websocket handshake to /_event: the HTTP status, and the first text frame if it was accepted."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET /_event/?token={uuid.uuid4()}&EIO=4&transport=websocket HTTP/1.1",
        f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    if cookie is not None:
        lines.append(f"Cookie: {cookie}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            return status, None
        while len(rest) < 2 or len(rest) < 2 + (rest[1] & 0x7F):
            rest += sock.recv(4096)
        return status, rest[2 : 2 + (rest[1] & 0x7F)].decode()


def test_the_socket_handshake_from_another_origin_is_refused(app_server, app_db):
    """A raw websocket client with an Origin header, as a browser sends it."""
    port = app_server.port
    user_id, _ = new_user(app_db)
    token = sessions.create_session(app_db, user_id)
    own = f"http://app.example.test:{port}"
    status, first = handshake(port, own)
    assert status == 101 and first.startswith("0{")  # engine.io's open packet
    status, first = handshake(port, None)  # not a browser: no Origin, nobody's cookie to misuse
    assert status == 101 and first.startswith("0{")
    for origin in [f"http://evil.example.test:{port}", f"http://app.example.test:{port + 1}",
                   f"https://app.example.test:{port}", "http://example.test", "null", "http://evil.example"]:
        for cookie in (None, f"referral_session={token}"):
            status, first = handshake(port, origin, cookie=cookie)
            assert status != 101 and first is None, (origin, status)
            assert 400 <= status < 500


# CORS

def _cors_headers(url: str, method: str, origin: str, cookie: str | None = None) -> dict[str, str]:
    headers = {"Origin": origin}
    if method == "OPTIONS":
        headers.update({"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    if cookie:
        headers["Cookie"] = cookie
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return {k.lower(): v for k, v in error.headers.items()}


@pytest.mark.parametrize(
    "path", ["/admin/user/list", "/admin/login", "/api/v1/profile/me/", "/api/v1/auth/browser_session/", "/", "/profile"]
)
def test_cors_never_lets_another_origin_read_with_credentials(app_server, path):
    """Hole 2: OPTIONS /admin/user/list with Origin: http://evil.example answered
    Access-Control-Allow-Origin: http://evil.example and Allow-Credentials: true."""
    url = f"http://127.0.0.1:{app_server.port}{path}"
    for origin in ["http://evil.example", f"http://evil.example.test:{app_server.port}",
                   f"http://127.0.0.1:{app_server.port + 1}"]:
        for method in ("OPTIONS", "GET"):
            headers = _cors_headers(url, method, origin, cookie="referral_admin=x; referral_session=y")
            assert headers.get("access-control-allow-origin") not in (origin, "*"), (path, method, origin, headers)


def test_a_sibling_page_cannot_read_the_admin_with_the_staffs_cookie(app_server, new_context, attacker, app_db):
    app = app_origin(app_server)
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    phone = new_phone()
    sign_in(new_context().new_page(), app, phone)  # a user whose number is in the list
    page = new_context().new_page()
    staff_login(page, app, username)
    for origin in attacker.origins():
        result = run_attack(page, origin, attacker, "read-admin", f"""
            fetch({json.dumps(app + "/admin/user/list?search=" + phone.replace("+", "%2B"))}, {{credentials: "include"}})
              .then((r) => r.text()).then((text) => {{ window.result = {{read: text}}; }},
                                         (error) => {{ window.result = {{error: String(error)}}; }});
        """)
        assert "read" not in result and "error" in result, (origin, str(result)[:300])
    page.goto(app + "/admin/user/list")
    expect(page.locator("table")).to_be_visible()  # still signed in


# The browser-session endpoint: sign the visitor in as the attacker, or out

SESSION_FETCH = """
fetch(%(url)s, {method: %(method)s, credentials: "include", headers: {"Content-Type": "application/json"},
  body: %(body)s})
  .then((r) => { window.result = {status: r.status}; }, (error) => { window.result = {error: String(error)}; });
"""


def test_a_sibling_page_cannot_sign_the_visitor_into_its_account(app_server, new_context, attacker, app_db):
    """Login forgery: the attacker trades a claim of their own account with the visitor's browser."""
    app = app_origin(app_server)
    attacker_id, attacker_code = new_user(app_db)
    page = new_context().new_page()
    page.goto(app + "/")
    for origin in attacker.origins():
        claim = sessions.create_browser_claim(app_db, attacker_id)
        run_attack(page, origin, attacker, "login-forgery", SESSION_FETCH % {
            "url": json.dumps(app + "/api/v1/auth/browser_session/"), "method": json.dumps("POST"),
            "body": json.dumps(json.dumps({"claim": claim})),
        })
        # A plain form needs no preflight; it is refused too (and is not JSON).
        run_attack(page, origin, attacker, "login-forgery-form", f"""
            fetch({json.dumps(app + "/api/v1/auth/browser_session/")}, {{method: "POST", mode: "no-cors",
              credentials: "include", body: {json.dumps(json.dumps({"claim": claim}))}}})
              .finally(() => {{ window.result = true; }});
        """)
        assert not [c for c in page.context.cookies() if c["name"].endswith("referral_session")], origin
        page.goto(app + "/profile")
        page.wait_for_url(re.compile(r"/$"))  # not signed in: as whom would it be
        expect(page.locator("#invite-code")).to_have_count(0)
        assert attacker_code not in page.content()


def test_a_sibling_page_cannot_sign_the_visitor_out(app_server, new_context, attacker):
    app = app_origin(app_server)
    page = new_context().new_page()
    sign_in(page, app, new_phone())
    code = page.locator("#invite-code").inner_text()
    for origin in attacker.origins():
        run_attack(page, origin, attacker, "logout-forgery", SESSION_FETCH % {
            "url": json.dumps(app + "/api/v1/auth/browser_session/"), "method": json.dumps("DELETE"),
            "body": "undefined",
        })
        page.goto(app + "/profile")
        expect(page.locator("#invite-code")).to_have_text(code)


# The admin: links and forms of other pages

ADMIN_FORGERY = """
const target = %(app)s;
const image = new Image();
image.src = target + "/admin/logout";  // a GET with the cookie, as any page can send
const frame = document.createElement("iframe");
frame.name = "sink";
document.body.appendChild(frame);
function post(path) {
  const form = document.createElement("form");
  form.method = "POST"; form.action = target + path; form.target = "sink";
  document.body.appendChild(form); form.submit();
}
post("/admin/session/action/revoke?pks=%(session_id)s");
setTimeout(() => post("/admin/user/action/deactivate?pks=%(user_id)s"), 700);
setTimeout(() => post("/admin/logout"), 1400);
setTimeout(() => { window.result = true; }, 3000);
"""


def test_pages_of_other_origins_cannot_sign_staff_out_or_run_actions(app_server, new_context, attacker, app_db):
    """GET /admin/logout from a link on another site signed staff out; actions ran on a GET."""
    app = app_origin(app_server)
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    user_page = new_context().new_page()
    phone = new_phone()
    sign_in(user_page, app, phone)
    user_id = _user_id(app_db, phone)
    [session_id] = app_db.exec(select(AuthSession.id).where(AuthSession.user_id == user_id)).all()
    app_db.rollback()

    page = new_context().new_page()
    staff_login(page, app, username)
    for origin in attacker.origins():
        run_attack(page, origin, attacker, "admin-forgery", ADMIN_FORGERY % {
            "app": json.dumps(app), "session_id": session_id, "user_id": user_id,
        })
        # A link followed from the other page: a top-level GET, which brings the cookie along.
        page.goto(app + "/admin/logout")
        page.goto(app + f"/admin/user/action/deactivate?pks={user_id}")
        page.goto(app + "/admin/user/list")
        expect(page.locator("table")).to_be_visible()  # still signed in
    revoked = app_db.exec(select(AuthSession.revoked_at).where(AuthSession.id == session_id)).one()
    active = app_db.exec(select(User.is_active).where(User.id == user_id)).one()
    app_db.rollback()
    assert revoked is None and active is True
    user_page.reload()
    expect(user_page.locator("#invite-code")).to_be_visible()


# Cookie tossing

def test_a_cookie_tossed_by_a_sibling_subdomain_does_not_switch_the_visitors_session(
    app_server, new_context, attacker, app_db
):
    """A page on evil.example.test sets referral_session for Domain=example.test; the browser then
    sends it beside the app's own. It must not make the visitor the attacker."""
    app = app_origin(app_server)
    attacker_id, attacker_code = new_user(app_db)
    attacker_token = sessions.create_session(app_db, attacker_id)
    page = new_context().new_page()
    sign_in(page, app, new_phone())
    victim_code = page.locator("#invite-code").inner_text()
    run_attack(page, attacker.origins()[0], attacker, "toss",
               f'document.cookie = "referral_session={attacker_token}; Domain=example.test; Path=/";'
               "window.result = true;")
    tossed = [c for c in page.context.cookies() if c["name"] == "referral_session"]
    assert {c["domain"] for c in tossed} == {"app.example.test", ".example.test"}  # the browser took it

    page.goto(app + "/profile")
    page.wait_for_load_state("networkidle")
    assert attacker_code not in page.content()
    shown = page.locator("#invite-code")
    if shown.count():
        assert shown.inner_text() == victim_code
    # Signing in again replaces nothing of the attacker's: the page never shows their account.
    page.goto(app + "/")
    assert attacker_code not in page.content()
