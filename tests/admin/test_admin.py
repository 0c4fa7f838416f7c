"""The admin at /admin: nothing without a staff login, the login itself, the views and the actions.

FastAPI's TestClient on the real app and the test database. A client that logs in keeps the
admin cookie in its jar; the anonymous client never logs in.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import bcrypt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import select
from starlette.routing import Mount, Route

from referral_app.admin.auth import ADMIN_COOKIE
from referral_app.admin.views import VIEWS
from referral_app.referral_app import api
from referral_app.infra.cookies import SESSION_COOKIE
from referral_app.domain import staff, users, webhooks
from referral_app.domain.audit import StaffActor
from referral_app.domain.clock import utcnow
from referral_app.domain.sessions import hash_token
from referral_app.i18n import translate
from referral_app.models import AuthSession, ConfirmationCode, StaffAccount, StaffAction, User, WebhookEvent
from referral_app.settings import settings
from referral_app.state.profile import ProfileState
from tests.api.conftest import CLIENT_ADDRESS, assert_error, bearer, sign_in
from tests.conftest import ROOT
from tests.state.conftest import event_arg, event_name, make_state, run

STAFF_NAME, STAFF_PASSWORD = "ops_chief", "a long staff password"
ALICE, BOB, CAROL, DAVE = "+79123456789", "+79123456780", "+79123456781", "+79123456782"
WHEN = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
OTHER_ADDRESS = ("203.0.113.9", 40000)  # TEST-NET-3
ORIGIN = "http://testserver"  # the TestClient's own origin, which a browser sends with every POST
SAME_ORIGIN = {"Origin": ORIGIN}
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)


@pytest.fixture
def client(db):
    """Anonymous: the API, and the admin without a login."""
    with TestClient(api, client=CLIENT_ADDRESS) as test_client:
        yield test_client


@dataclass(frozen=True)
class StaffRef:
    id: int
    username: str


@pytest.fixture
def staff_account(db) -> StaffRef:
    # Plain values: reading an expired ORM object would open a transaction on ``db``,
    # which on SQLite holds the write lock the app's requests then wait for.
    account = staff.create_staff(db, STAFF_NAME, STAFF_PASSWORD)
    return StaffRef(account.id, account.username)


def csrf_of(test_client: TestClient, url: str = "/admin/login") -> str:
    """The CSRF token an admin page gives this browser (``<meta name="csrf-token">``)."""
    page = test_client.get(url)
    assert page.status_code == 200, page.text[:300]
    return re.search(r'<meta name="csrf-token" content="([0-9a-f]{64})">', page.text).group(1)


def own_origin(test_client: TestClient) -> dict[str, str]:
    return {"Origin": str(test_client.base_url).rstrip("/")}


STAFF_BINDING = "test-browser-staff-binding-0123456789"


def login(test_client: TestClient, username: str = STAFF_NAME, password: str = STAFF_PASSWORD):
    """What the login form sends: the credentials, the token and the page's new staff binding,
    from the admin's own origin. Later POSTs of this browser send the binding in a header,
    as its admin pages do in a form field (admin/auth.py)."""
    data = {"username": username, "password": password, "csrf_token": csrf_of(test_client),
            "staff_binding": STAFF_BINDING}
    test_client.headers["X-Staff-Binding"] = STAFF_BINDING
    return test_client.post("/admin/login", data=data, headers=own_origin(test_client), follow_redirects=False)


def logout(test_client: TestClient):
    """The "Logout" button: a POST with the token."""
    token = csrf_of(test_client, "/admin/")
    return test_client.post("/admin/logout", data={"csrf_token": token}, headers=SAME_ORIGIN, follow_redirects=False)


@pytest.fixture
def admin(db, staff_account):
    """A staff member's browser, logged in."""
    with TestClient(api, client=CLIENT_ADDRESS) as test_client:
        assert login(test_client).status_code == 302
        yield test_client


@dataclass
class World:
    alice_id: int
    bob_id: int
    carol_id: int
    alice_token: str
    alice_token_2: str
    bob_token: str
    carol_token: str
    alice_code: str
    bob_code: str
    carol_code: str
    alice_session_ids: list[int]
    bob_session_id: int
    dave_code_id: int


@pytest.fixture
def world(db, client, staff_account) -> World:
    """Alice invited Bob; Carol signed in alone; Dave asked for a code and has not used it."""
    alice_token, bob_token, carol_token = (sign_in(client, phone) for phone in (ALICE, BOB, CAROL))
    alice_token_2 = sign_in(client, ALICE)
    tokens = {ALICE: alice_token, BOB: bob_token, CAROL: carol_token}
    codes = {phone: profile(client, token)["invite_code"] for phone, token in tokens.items()}
    activate(client, bob_token, codes[ALICE])
    assert client.post("/api/v1/auth/request_code/", json={"phone_number": DAVE}).status_code == 200
    ids = {user.phone_number: user.id for user in db.exec(select(User)).all()}
    session_ids = {
        user_id: sorted(s.id for s in db.exec(select(AuthSession).where(AuthSession.user_id == user_id)).all())
        for user_id in ids.values()
    }
    dave_code_id = db.exec(select(ConfirmationCode.id).where(ConfirmationCode.phone_number == DAVE)).one()
    db.rollback()
    return World(
        alice_id=ids[ALICE], bob_id=ids[BOB], carol_id=ids[CAROL],
        alice_token=alice_token, alice_token_2=alice_token_2, bob_token=bob_token, carol_token=carol_token,
        alice_code=codes[ALICE], bob_code=codes[BOB], carol_code=codes[CAROL],
        alice_session_ids=session_ids[ids[ALICE]], bob_session_id=session_ids[ids[BOB]][0], dave_code_id=dave_code_id,
    )


def activate(test_client: TestClient, token: str, invite_code: str) -> None:
    body = {"invite_code": invite_code}
    response = test_client.post("/api/v1/profile/activate_invite/", json=body, headers=bearer(token))
    assert response.status_code == 200, response.text


def profile(test_client: TestClient, token: str) -> dict:
    response = test_client.get("/api/v1/profile/me/", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def snapshot(db) -> dict[str, list[tuple]]:
    tables = ("users", "auth_sessions", "confirmation_codes", "staff_accounts", "code_sends")
    rows = {table: [tuple(r) for r in db.exec(text(f"SELECT * FROM {table} ORDER BY id")).all()] for table in tables}
    db.rollback()
    return rows


def secrets_in_db(db) -> list[str]:
    """Every hash the database holds: none may ever reach an admin page."""
    values = [row[0] for row in db.exec(text("SELECT password_hash FROM staff_accounts")).all()]
    values += [row[0] for row in db.exec(text("SELECT code_hash FROM confirmation_codes")).all()]
    for token_hash, claim_hash in db.exec(text("SELECT token_hash, claim_hash FROM auth_sessions")).all():
        values += [token_hash] + ([claim_hash] if claim_hash else [])
    db.rollback()
    assert values
    return values


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def rows(page: str) -> list[list[str]]:
    """The cells (as text) of each row of a list page's table body."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    result = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL):
        cells = [text_of(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        result.append(cells[2:])  # after the checkbox and the "view" link
    return result


def listed_ids(page: str) -> list[int]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [int(pk) for pk in re.findall(r'<input type="hidden" value="(\d+)">', body)]


def list_page(test_client: TestClient, identity: str, **params) -> str:
    response = test_client.get(f"/admin/{identity}/list", params=params)
    assert response.status_code == 200, response.text[:500]
    assert urlsplit(str(response.url)).path == f"/admin/{identity}/list"
    return response.text


def run_action(test_client: TestClient, identity: str, name: str, *pks: int | str, headers=SAME_ORIGIN, token=None):
    """What the admin page sends for an action: a POST with the session's token."""
    token = csrf_of(test_client, f"/admin/{identity}/list") if token is None else token
    return test_client.post(
        f"/admin/{identity}/action/{name}", params={"pks": ",".join(map(str, pks))}, headers=headers,
        data={"csrf_token": token}, follow_redirects=False,
    )


def profile_state_redirects(db, token: str) -> bool:
    """Whether ProfileState.on_load, with ``token`` in the cookie, sends the browser to "/"."""
    db.rollback()
    state = make_state(ProfileState, token=token, path="/profile")
    events = run(state.on_load())
    # The sign-in page, told that the session ended (issue 11).
    redirected = [event_name(e) for e in events] == ["_redirect"] and event_arg(events[0], "path") in ("/", "/?session=ended")
    assert redirected != state.loaded
    return redirected


# Nothing without a login: every route of the admin app


def admin_app():
    mounts = [route for route in api.routes if isinstance(route, Mount) and route.path == "/admin"]
    assert len(mounts) == 1, "the admin is mounted once, at /admin"
    return mounts[0].app


def outbox_and_audit_pks(db, world: World, staff_id: int, monkeypatch) -> dict[str, int]:
    """A webhook event and an audit log entry, so that their views have a record to ask for."""
    monkeypatch.setattr(settings, "webhook_url", "http://127.0.0.1:9/hooks")
    webhooks.record_event(db, webhooks.USER_CREATED, world.carol_id, {"user_id": world.carol_id}, utcnow())
    users.set_user_active(db, world.carol_id, True, actor=StaffActor(staff_id, "192.0.2.1"))
    pks = {"webhook-event": db.exec(select(WebhookEvent.id)).one(), "audit-log": db.exec(select(StaffAction.id)).one()}
    db.rollback()
    return pks


def concrete_paths(world: World, staff_id: int, more_pks: dict[str, int]) -> dict[str, list[str]]:
    """Each route of the admin app (by its path template) → the URLs that exercise it."""
    pks = {
        "user": world.alice_id, "referral": world.bob_id, "session": world.alice_session_ids[0],
        "confirmation-code": world.dave_code_id, "staff-account": staff_id, **more_pks,
    }
    models = {view.identity: view.model for view in VIEWS}
    assert set(pks) == set(models), "a view was added: give it an existing pk here"
    cases = [(identity, pks[identity], [c.name for c in models[identity].__table__.columns]) for identity in pks]
    cases.append(("no-such-view", 1, ["id"]))

    paths: dict[str, list[str]] = {}
    for route in admin_app().routes:
        if isinstance(route, Mount):
            assert route.path == "/statics", f"unexpected mount {route.path}"
            continue
        assert isinstance(route, Route), route
        if route.path == "/login":
            continue
        params = set(route.param_convertors)
        assert params <= {"identity", "pk", "export_type", "column_name"}, f"fill in {params} for {route.path}"
        urls = []
        for identity, pk, columns in cases if "identity" in params else [(None, None, [None])]:
            for export_type in ["csv", "json"] if "export_type" in params else [None]:
                for column in columns if "column_name" in params else [None]:
                    values = {"identity": identity, "pk": str(pk), "export_type": export_type, "column_name": column}
                    urls.append("/admin" + fill(route.path, values))
        paths[route.path] = urls
    return paths


def fill(template: str, values: dict[str, str | None]) -> str:
    """``/{identity}/edit/{pk:path}`` → ``/user/edit/1``."""
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda match: str(values[match.group(1)]), template)


def assert_serves_nothing(response, method: str, url: str, data: list[str]) -> None:
    where = f"{method} {url}"
    if response.status_code in (302, 303):
        assert urlsplit(response.headers["location"]).path == "/admin/login", where
    else:
        assert response.status_code in (401, 403, 404, 405), f"{where}: {response.status_code}"
    for value in data:
        assert value not in response.text, f"{where} shows {value!r}"


def test_no_admin_route_answers_without_a_staff_login(db, client, world, staff_account, monkeypatch):
    paths = concrete_paths(world, staff_account.id, outbox_and_audit_pks(db, world, staff_account.id, monkeypatch))
    names = {route.name for route in admin_app().routes if isinstance(route, Route)}
    # The routes the admin really has, so that this list is known to be the whole admin.
    assert {
        "index", "list", "details", "delete", "create", "edit", "export", "import", "ajax_lookup", "login", "logout",
        "action-user-deactivate", "action-user-activate", "action-session-revoke", "action-webhook-event-resend",
        "view-dashboard", "view-user-export_csv", "view-referral-export_csv",
    } <= names
    data = [ALICE, BOB, CAROL, DAVE, world.alice_code, world.bob_code, STAFF_NAME, *secrets_in_db(db)]
    before = snapshot(db)
    statuses: Counter[int] = Counter()
    for template, urls in paths.items():
        assert urls, template
        for url in urls:
            for method in METHODS:
                response = client.request(
                    method, url, params={"pks": world.alice_id}, headers=SAME_ORIGIN, follow_redirects=False,
                    data={"username": STAFF_NAME, "invite_code": "AAAAAA", "is_active": "false"} if method in
                    ("POST", "PUT", "PATCH") else None,
                )
                assert_serves_nothing(response, method, url, data)
                statuses[response.status_code] += 1
    assert sum(statuses.values()) > 500
    # A login redirect, a method the route does not have, or (any POST, PUT, PATCH, DELETE
    # without the token) the forgery guard's 403.
    assert set(statuses) == {302, 403, 405}, statuses
    assert ADMIN_COOKIE not in client.cookies
    assert snapshot(db) == before


def test_login_required_redirects_to_the_login_page(client, world):
    for url in ["/admin/", "/admin/user/list", "/admin/user/details/999999"]:
        response = client.get(url, params={"pks": world.alice_session_ids[0]}, follow_redirects=False)
        assert response.status_code == 302 and urlsplit(response.headers["location"]).path == "/admin/login", url
    # An action with a valid token but no login.
    response = run_action(client, "session", "revoke", world.alice_session_ids[0], token=csrf_of(client))
    assert response.status_code == 302 and urlsplit(response.headers["location"]).path == "/admin/login"
    # /admin itself only adds the slash.
    assert urlsplit(client.get("/admin", follow_redirects=False).headers["location"]).path == "/admin/"
    followed = client.get("/admin/user/list")
    assert urlsplit(str(followed.url)).path == "/admin/login" and 'name="password"' in followed.text
    assert ALICE not in followed.text


def test_login_page_and_static_assets_are_public(client):
    page = client.get("/admin/login")
    assert page.status_code == 200 and 'name="username"' in page.text and 'name="password"' in page.text
    asset = client.get("/admin/statics/css/tabler.min.css")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/css")


def test_an_unknown_record_is_a_404_for_staff_too(admin, world):
    assert admin.get("/admin/user/details/999999").status_code == 404
    assert admin.get("/admin/session/details/999999").status_code == 404
    assert admin.get("/admin/no-such-view/list").status_code == 404


# A user's token is no staff login


def test_a_users_api_token_does_not_open_the_admin(world):
    for headers, cookies in [
        (bearer(world.alice_token), {}),
        ({"Authorization": f"Token {world.alice_token}"}, {}),
        ({}, {SESSION_COOKIE: world.alice_token}),
        ({}, {ADMIN_COOKIE: world.alice_token}),
        (bearer(world.alice_token), {SESSION_COOKIE: world.alice_token}),
    ]:
        with TestClient(api, client=CLIENT_ADDRESS, cookies=cookies) as test_client:
            for url in ["/admin/", "/admin/user/list", f"/admin/user/details/{world.alice_id}"]:
                response = test_client.get(url, headers=headers, follow_redirects=False)
                assert response.status_code == 302, (url, headers, cookies)
                assert urlsplit(response.headers["location"]).path == "/admin/login"
            response = run_action(
                test_client, "session", "revoke", world.bob_session_id, headers={**SAME_ORIGIN, **headers},
                token=csrf_of(test_client),
            )
            assert response.status_code == 302 and urlsplit(response.headers["location"]).path == "/admin/login"
    with TestClient(api, client=CLIENT_ADDRESS) as test_client:
        assert profile(test_client, world.bob_token)["invite_code"] == world.bob_code  # not revoked


def test_only_a_session_id_the_server_issued_opens_the_admin(db, staff_account):
    """The cookie is a random session id looked up (by its hash) in staff_sessions: nothing
    else, signed or not, opens the admin."""
    from referral_app.domain.staff import start_staff_session

    session_id = start_staff_session(db, staff_account.id)
    bound = f"{session_id}.{STAFF_BINDING}"  # the cookie: <session id>.<the login page's binding>
    with TestClient(api, client=CLIENT_ADDRESS, cookies={ADMIN_COOKIE: bound}) as real:
        assert real.get("/admin/user/list", follow_redirects=False).status_code == 200
    for other in (session_id[:-1], session_id + "x", session_id.upper(), "null", str(staff_account.id), "x" * 5000,
                  hash_token(session_id), session_id, f"{session_id}.", f"{session_id}.short",
                  f"{session_id[:-1]}.{STAFF_BINDING}", f"{hash_token(session_id)}.{STAFF_BINDING}"):
        with TestClient(api, client=CLIENT_ADDRESS, cookies={ADMIN_COOKIE: other}) as forged:
            response = forged.get("/admin/user/list", follow_redirects=False)
            assert response.status_code == 302, other


# Login and logout


def set_cookie(response, name: str = ADMIN_COOKIE) -> str:
    [header] = [value for value in response.headers.get_list("set-cookie") if value.startswith(f"{name}=")]
    return header


def test_login_sets_an_http_only_same_site_lax_cookie(client, staff_account):
    response = login(client)
    assert response.status_code == 302
    assert urlsplit(response.headers["location"]).path == "/admin/"
    cookie = set_cookie(response)
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert "httponly" in attributes and "samesite=lax" in cookie.lower()
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    assert STAFF_PASSWORD not in cookie
    assert client.get("/admin/user/list", follow_redirects=False).status_code == 200


def test_over_https_the_cookie_is_secure(db, staff_account):
    with TestClient(api, client=CLIENT_ADDRESS, base_url="https://testserver") as secure_client:
        response = login(secure_client)
        assert response.status_code == 302
        cookie = set_cookie(response, "__Host-" + ADMIN_COOKIE)  # only this host, over HTTPS, can set it
        attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes
        assert not any(attribute.startswith("domain") for attribute in attributes)
        assert secure_client.get("/admin/user/list", follow_redirects=False).status_code == 200


def test_login_records_the_time(db, client, staff_account):
    assert last_login(db, staff_account.id) is None
    login(client)
    assert last_login(db, staff_account.id) is not None


def last_login(db, staff_id: int):
    value = db.exec(select(StaffAccount.last_login_at).where(StaffAccount.id == staff_id)).one()
    db.rollback()
    return value


def test_logout_clears_the_cookie(admin):
    assert admin.get("/admin/user/list", follow_redirects=False).status_code == 200
    response = logout(admin)
    assert response.status_code == 303 and urlsplit(response.headers["location"]).path == "/admin/login"
    cleared = set_cookie(response)
    assert cleared.startswith(f"{ADMIN_COOKIE}=;") and "expires=thu, 01 jan 1970" in cleared.lower()
    assert ADMIN_COOKIE not in admin.cookies
    response = admin.get("/admin/user/list", follow_redirects=False)
    assert response.status_code == 302 and urlsplit(response.headers["location"]).path == "/admin/login"


def test_a_deactivated_staff_accounts_cookie_stops_working(db, admin, staff_account):
    assert admin.get("/admin/user/list", follow_redirects=False).status_code == 200
    db.exec(
        text("UPDATE staff_accounts SET is_active = :off WHERE id = :id"), params={"off": False, "id": staff_account.id}
    )
    db.commit()
    response = admin.get("/admin/user/list", follow_redirects=False)
    assert response.status_code == 302 and urlsplit(response.headers["location"]).path == "/admin/login"
    # Nor can the account log in again.
    assert login(admin).status_code == 400


def test_a_deleted_staff_accounts_cookie_stops_working(db, admin, staff_account):
    db.exec(text("DELETE FROM staff_accounts WHERE id = :id"), params={"id": staff_account.id})
    db.commit()
    assert admin.get("/admin/", follow_redirects=False).status_code == 302


def login_error(response) -> None:
    assert response.status_code == 400
    assert "Invalid credentials." in response.text
    cookies = [v for v in response.headers.get_list("set-cookie") if v.startswith(f"{ADMIN_COOKIE}=")]
    assert cookies == []  # no session handed out


def test_a_wrong_password_and_an_unknown_user_get_the_same_page(client, staff_account):
    wrong, unknown = login(client, password="not the password"), login(client, username="nobody_here")
    login_error(wrong)
    login_error(unknown)
    assert wrong.text == unknown.text
    assert ADMIN_COOKIE not in client.cookies


def test_five_wrong_passwords_lock_the_login_form(db, client, staff_account):
    for _ in range(5):
        login_error(login(client, password="not the password"))
    locked = login(client)
    login_error(locked)
    assert locked.text == login(client, password="not the password").text
    # The username is locked from another address as well.
    with TestClient(api, client=OTHER_ADDRESS) as elsewhere:
        login_error(login(elsewhere))
        assert elsewhere.get("/admin/user/list", follow_redirects=False).status_code == 302
    assert last_login(db, staff_account.id) is None


def test_five_failures_from_one_address_lock_it_for_every_username(db, client, staff_account):
    for number in range(5):
        login_error(login(client, username=f"guess{number}", password="whatever else"))
    login_error(login(client))
    with TestClient(api, client=OTHER_ADDRESS) as elsewhere:
        assert login(elsewhere).status_code == 302


# The views


def test_users_list_shows_e164_phones_and_readable_times(admin, world):
    page = list_page(admin, "user")
    table = {row[1]: row for row in rows(page)}
    assert set(table) == {ALICE, BOB, CAROL}
    assert table[BOB][:4] == [str(world.bob_id), BOB, world.bob_code, f"{ALICE} ({world.alice_code})"]
    assert table[ALICE][4] == "1" and table[BOB][4] == "0"
    for row in table.values():
        assert WHEN.match(row[-1]), row
    headers = [text_of(header) for header in re.findall(r"<th[^>]*>(.*?)</th>", page, re.DOTALL)]
    assert headers[2:] == ["ID", "Phone", "Invite code", "Invited by", "Referrals", "Active", "Created"]
    assert listed_ids(page) == [world.carol_id, world.bob_id, world.alice_id]  # newest first


def test_users_search_by_phone_and_by_invite_code(admin, world):
    assert listed_ids(list_page(admin, "user", search=ALICE)) == [world.alice_id]
    assert listed_ids(list_page(admin, "user", search="3456780")) == [world.bob_id]  # part of a number
    assert listed_ids(list_page(admin, "user", search=world.carol_code)) == [world.carol_id]
    assert listed_ids(list_page(admin, "user", search=world.carol_code.lower())) == [world.carol_id]
    assert listed_ids(list_page(admin, "user", search="+70000000000")) == []


def test_users_filters(admin, world):
    assert listed_ids(list_page(admin, "user", activated="yes")) == [world.bob_id]
    assert sorted(listed_ids(list_page(admin, "user", activated="no"))) == sorted([world.alice_id, world.carol_id])
    assert listed_ids(list_page(admin, "user", has_referrals="yes")) == [world.alice_id]
    assert sorted(listed_ids(list_page(admin, "user", has_referrals="no"))) == sorted([world.bob_id, world.carol_id])
    assert listed_ids(list_page(admin, "user", activated="yes", has_referrals="yes")) == []


def test_users_sort_and_pagination(db, admin, world):
    by_phone = listed_ids(list_page(admin, "user", sortBy="phone_number", sort="asc"))
    assert by_phone == [world.bob_id, world.carol_id, world.alice_id]  # ...780, ...781, ...789
    assert admin.get("/admin/user/list", params={"sortBy": "invite_code"}).status_code == 400  # not sortable
    first = list_page(admin, "user", pageSize=25, page=1)
    assert "Showing 1 to 3 of 3 items" in first


def test_every_list_is_paginated(db, admin, client, world, staff_account):
    """25 rows a page (the default), with a second page for the rest."""
    for number in range(26):
        token = sign_in(client, f"+7913{number:07d}")
        activate(client, token, world.alice_code)
        assert client.post("/api/v1/auth/request_code/", json={"phone_number": f"+7914{number:07d}"}).status_code == 200
        staff.create_staff(db, f"staff{number:02d}", STAFF_PASSWORD)
    for identity in ("user", "referral", "session", "confirmation-code", "staff-account"):
        first, second = list_page(admin, identity), list_page(admin, identity, page=2)
        total = int(re.search(r"Showing 1 to 25 of (\d+) items", first).group(1))
        assert total > 25 and len(listed_ids(first)) == 25, identity
        assert len(listed_ids(second)) == total - 25 and not set(listed_ids(first)) & set(listed_ids(second))
        assert len(listed_ids(list_page(admin, identity, pageSize=50))) == total, identity


def test_user_detail_page_links_to_the_users_referrals(admin, world):
    page = admin.get(f"/admin/user/details/{world.alice_id}")
    assert page.status_code == 200
    assert ALICE in page.text and world.alice_code in page.text
    [link] = re.findall(r'href="([^"]*referral/list\?[^"]*)"', page.text)
    referrals = admin.get(urljoin(str(page.url), html.unescape(link)))  # relative to the detail page
    assert referrals.status_code == 200 and listed_ids(referrals.text) == [world.bob_id]


def test_referrals_list_and_search_by_inviter_code(admin, world, db, client):
    dave_token = sign_in(client, DAVE)
    activate(client, dave_token, world.carol_code)
    dave_id = db.exec(select(User.id).where(User.phone_number == DAVE)).one()
    db.rollback()
    page = list_page(admin, "referral")
    assert sorted(listed_ids(page)) == sorted([world.bob_id, dave_id])  # only users who entered a code
    table = {row[1]: row for row in rows(page)}
    assert table[BOB][0] == f"{ALICE} ({world.alice_code})" and WHEN.match(table[BOB][2])
    assert listed_ids(list_page(admin, "referral", search=world.alice_code)) == [world.bob_id]
    assert listed_ids(list_page(admin, "referral", search=world.carol_code.lower())) == [dave_id]
    assert listed_ids(list_page(admin, "referral", search=DAVE)) == [dave_id]  # the invited user's phone
    assert listed_ids(list_page(admin, "referral", search=world.bob_code)) == []  # nobody entered Bob's code


def test_confirmation_codes_never_show_the_hash(db, admin, world):
    page = list_page(admin, "confirmation-code")
    table = {row[1]: row for row in rows(page)}
    assert DAVE in table
    assert WHEN.match(table[DAVE][2]) and WHEN.match(table[DAVE][3]) and table[DAVE][4] == "0"
    detail = admin.get(f"/admin/confirmation-code/details/{world.dave_code_id}").text
    for secret in secrets_in_db(db):
        assert secret not in page and secret not in detail
    assert "hash" not in page.lower() and "hash" not in detail.lower()
    assert listed_ids(list_page(admin, "confirmation-code", search=DAVE)) == [world.dave_code_id]


def test_sessions_never_show_token_hashes(db, admin, world):
    page = list_page(admin, "session")
    details = [admin.get(f"/admin/session/details/{pk}").text for pk in listed_ids(page)]
    assert sorted(listed_ids(page)) == sorted(world.alice_session_ids + [world.bob_session_id]
                                             + listed_ids(list_page(admin, "session", search=CAROL)))
    for secret in secrets_in_db(db):
        assert secret not in page and all(secret not in detail for detail in details)
    for token in (world.alice_token, world.bob_token, world.carol_token):
        assert token not in page
    for row in rows(page):
        assert WHEN.match(row[2]) and WHEN.match(row[3]) and row[4] == "—"


def test_sessions_search_by_the_users_phone(admin, world):
    assert listed_ids(list_page(admin, "session", search=ALICE)) == sorted(world.alice_session_ids, reverse=True)
    assert listed_ids(list_page(admin, "session", search=BOB)) == [world.bob_session_id]


def test_staff_list_never_shows_the_password_hash(db, admin, staff_account):
    staff.create_staff(db, "second.staff", "another long password")
    page = list_page(admin, "staff-account")
    assert {row[1] for row in rows(page)} == {STAFF_NAME, "second.staff"}
    detail = admin.get(f"/admin/staff-account/details/{staff_account.id}").text
    hashes = [row[0] for row in db.exec(text("SELECT password_hash FROM staff_accounts")).all()]
    db.rollback()
    for value in hashes:
        assert value not in page and value not in detail
        assert value[:29] not in page and value[:29] not in detail  # not even the salt
    assert "$2b$" not in page and "$2b$" not in detail
    me = next(row for row in rows(page) if row[1] == STAFF_NAME)
    assert WHEN.match(me[3]) and WHEN.match(me[4])  # created, last login


def test_hash_columns_are_not_served_as_files(db, admin, world, staff_account):
    """sqladmin's file routes take any column name; a hash must not come back through them."""
    secrets = secrets_in_db(db)
    for url in [
        f"/admin/staff-account/{staff_account.id}/password_hash/download/",
        f"/admin/staff-account/{staff_account.id}/password_hash/preview/",
        f"/admin/session/{world.alice_session_ids[0]}/token_hash/download/",
        f"/admin/confirmation-code/{world.dave_code_id}/code_hash/preview/",
        f"/admin/user/{world.alice_id}/phone_number/download/",
    ]:
        response = admin.get(url)
        assert response.status_code in (400, 403, 404), url
        assert not any(secret in response.text for secret in secrets), url


# The actions


def test_revoking_a_session_signs_that_token_out_of_the_api_and_the_ui(db, admin, client, world):
    first, second = world.alice_session_ids
    tokens = {}
    for token in (world.alice_token, world.alice_token_2):
        tokens[db.exec(select(AuthSession.id).where(AuthSession.token_hash == hash_token(token))).one()] = token
    db.rollback()
    assert not profile_state_redirects(db, tokens[first])

    response = run_action(admin, "session", "revoke", first)
    assert response.status_code == 303 and urlsplit(response.headers["location"]).path == "/admin/session/list"

    assert_error(client.get("/api/v1/profile/me/", headers=bearer(tokens[first])), 401, "auth.required")
    assert profile_state_redirects(db, tokens[first])
    # The user's other session, and other users, are untouched.
    assert profile(client, tokens[second])["phone_number"] == ALICE
    assert not profile_state_redirects(db, tokens[second])
    assert profile(client, world.bob_token)["phone_number"] == BOB
    revoked = {row[4] for row in rows(list_page(admin, "session", search=ALICE)) if row[0] == str(first)}
    assert len(revoked) == 1 and WHEN.match(revoked.pop())
    # Revoking again changes nothing.
    before = snapshot(db)
    assert run_action(admin, "session", "revoke", first).status_code == 303
    assert snapshot(db) == before


def test_revoke_takes_several_sessions_and_ignores_junk(db, admin, client, world):
    response = run_action(
        admin, "session", "revoke", world.bob_session_id, world.alice_session_ids[0], "x", "", -1, 999999,
        "99999999999999999999", "٣",
    )
    assert response.status_code == 303
    assert client.get("/api/v1/profile/me/", headers=bearer(world.bob_token)).status_code == 401
    assert profile(client, world.carol_token)["phone_number"] == CAROL


def test_deactivating_a_user_stops_their_tokens_and_sign_in(db, admin, client, world):
    response = run_action(admin, "user", "deactivate", world.alice_id)
    assert response.status_code == 303 and urlsplit(response.headers["location"]).path == "/admin/user/list"

    for token in (world.alice_token, world.alice_token_2):
        assert_error(client.get("/api/v1/profile/me/", headers=bearer(token)), 401, "auth.required")
        assert profile_state_redirects(db, token)
    # A new sign-in with a correct code is refused.
    code = client.post("/api/v1/auth/request_code/", json={"phone_number": ALICE}).json()["confirmation_code"]
    refused = client.post("/api/v1/auth/auth_code/", json={"phone_number": ALICE, "confirmation_code": code})
    assert_error(refused, 400, "auth.disabled", "phone_number")
    assert refused.json()["message"] == translate("auth.disabled")
    # Others are untouched; the list shows the user as inactive.
    assert profile(client, world.bob_token)["phone_number"] == BOB
    assert listed_ids(list_page(admin, "user", active="no")) == [world.alice_id]

    # Reactivating lets them sign in again.
    assert run_action(admin, "user", "activate", world.alice_id).status_code == 303
    token = sign_in(client, ALICE)
    assert profile(client, token)["invite_code"] == world.alice_code
    assert not profile_state_redirects(db, token)
    assert listed_ids(list_page(admin, "user", active="no")) == []


def test_actions_are_refused_on_get_from_another_origin_or_without_the_token(db, admin, client, world):
    """A link or a form on another site (a sibling subdomain or port too: "same-site", so the
    SameSite=Lax cookie comes along) must not run an action: GET never runs one, and a POST
    needs this app's Origin and the session's token."""
    token = csrf_of(admin, "/admin/session/list")
    before = snapshot(db)
    actions = [("session", "revoke", world.bob_session_id), ("user", "deactivate", world.bob_id),
               ("user", "activate", world.bob_id)]
    for identity, name, pk in actions:
        url = f"/admin/{identity}/action/{name}"
        for method in ("GET", "HEAD"):
            response = admin.request(method, url, params={"pks": pk}, headers=SAME_ORIGIN, follow_redirects=False)
            assert response.status_code == 405, (method, url)
        for headers in [
            {"Origin": "http://evil.example"},
            {"Origin": "http://evil.testserver"},  # a sibling subdomain
            {"Origin": "http://testserver:8080"},  # another port of the same host
            {"Origin": "https://testserver"},  # another scheme
            {"Origin": "null"},  # a sandboxed frame or a redirect chain
            {"Origin": "http://evil.example", "Referer": f"{ORIGIN}/admin/session/list"},
            {"Referer": "https://evil.example/page"},
            {},  # no sign at all of where the request came from
        ]:
            assert run_action(admin, identity, name, pk, headers=headers, token=token).status_code == 403, headers
        for wrong in ["", "0" * 64, token[:-1], token.upper(), csrf_of(client)]:  # csrf_of(client): another browser's
            assert run_action(admin, identity, name, pk, token=wrong).status_code == 403, wrong
    assert snapshot(db) == before
    assert profile(client, world.bob_token)["phone_number"] == BOB
    # The admin's own page: its Origin (or, from a browser that sends none, its Referer) and the token.
    referer = {"Referer": f"{ORIGIN}/admin/session/list"}
    assert run_action(admin, "session", "revoke", world.bob_session_id, headers=referer, token=token).status_code == 303
    assert client.get("/api/v1/profile/me/", headers=bearer(world.bob_token)).status_code == 401


def test_nothing_can_be_created_edited_deleted_exported_or_imported(db, admin, world, staff_account, monkeypatch):
    """Through sqladmin's own routes, in any view: the audit log and the webhook outbox included.
    (The CSV exports of users and referrals are routes of their own, tested in test_insights.)"""
    more_pks = outbox_and_audit_pks(db, world, staff_account.id, monkeypatch)
    before = snapshot(db), audit_and_outbox(db)
    pks = {"user": world.alice_id, "referral": world.bob_id, "session": world.alice_session_ids[0],
           "confirmation-code": world.dave_code_id, "staff-account": staff_account.id, **more_pks}
    assert set(pks) == {view.identity for view in VIEWS}
    form = {"phone_number": "+79999999999", "invite_code": "ZZZZZZ", "username": "intruder", "password_hash": "x",
            "is_active": "y", "invited_count": "99", "invited_by": str(world.carol_id)}
    for identity, pk in pks.items():
        attempts = [
            admin.get(f"/admin/{identity}/create"),
            admin.post(f"/admin/{identity}/create", data=form),
            admin.get(f"/admin/{identity}/edit/{pk}"),
            admin.post(f"/admin/{identity}/edit/{pk}", data=form),
            admin.delete(f"/admin/{identity}/delete", params={"pks": pk}),
            admin.post(f"/admin/{identity}/delete", params={"pks": pk}),
            admin.get(f"/admin/{identity}/export/csv"),
            admin.get(f"/admin/{identity}/export/json"),
            admin.post(f"/admin/{identity}/import", files={"file": ("x.csv", b"id,phone_number\n999,+79999999999\n")}),
            admin.get(f"/admin/{identity}/ajax/lookup", params={"name": "invited_by", "term": "7"}),
        ]
        for response in attempts:
            assert response.status_code in (403, 404, 405), (identity, response.request.method, response.url)
            assert ALICE not in response.text and world.alice_code not in response.text
        page = list_page(admin, identity)
        assert f"/admin/{identity}/create" not in page and f"/admin/{identity}/edit/" not in page
        assert "action-delete" not in page and "/export/" not in page
    assert (snapshot(db), audit_and_outbox(db)) == before


def audit_and_outbox(db) -> dict[str, list[tuple]]:
    tables = ("staff_actions", "webhook_events", "webhook_attempts")
    rows = {table: [tuple(r) for r in db.exec(text(f"SELECT * FROM {table} ORDER BY id")).all()] for table in tables}
    db.rollback()
    return rows


# The create-admin command


def create_admin(*args: str, stdin: str = "", rounds: str = "4") -> subprocess.CompletedProcess:
    env = {**os.environ, "BCRYPT_ROUNDS": rounds}
    return subprocess.run(
        [sys.executable, "-m", "referral_app", "create-admin", *args],
        check=False, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


def staff_rows(db) -> list[tuple]:
    query = text("SELECT username, password_hash, is_active FROM staff_accounts ORDER BY id")
    result = [tuple(row) for row in db.exec(query).all()]
    db.rollback()
    return result


def test_create_admin_reads_the_password_from_stdin(db, client):
    db.rollback()
    result = create_admin("bob", stdin="bobs long password\nignored second line\n")
    assert result.returncode == 0, result.stderr
    assert "bob" in result.stdout and "bobs long password" not in result.stdout + result.stderr
    [(username, password_hash, active)] = staff_rows(db)
    assert username == "bob" and bool(active)
    assert password_hash.startswith("$2b$04$") and bcrypt.checkpw(b"bobs long password", password_hash.encode())
    # The account works in the admin.
    assert login(client, "bob", "bobs long password").status_code == 302


def test_create_admin_refuses_a_short_password(db):
    db.rollback()
    result = create_admin("bob", stdin="short\n")
    assert result.returncode != 0
    assert translate("staff.password", min=10, max=72) in result.stderr
    assert staff_rows(db) == []


def test_create_admin_refuses_an_empty_stdin(db):
    db.rollback()
    result = create_admin("bob", stdin="")
    assert result.returncode != 0 and staff_rows(db) == []


def test_create_admin_refuses_a_bad_or_taken_username(db, staff_account):
    db.rollback()
    result = create_admin("x y", stdin="a long password\n")
    assert result.returncode != 0 and translate("staff.username") in result.stderr
    result = create_admin(STAFF_NAME, stdin="a long password\n")
    assert result.returncode != 0 and translate("staff.username_taken") in result.stderr
    assert [row[0] for row in staff_rows(db)] == [STAFF_NAME]


@pytest.mark.parametrize(
    "args",
    [("bob", "a long password"), ("bob", "--password", "a long password"), ("bob", "--password=a long password")],
)
def test_create_admin_takes_no_password_argument(db, args):
    db.rollback()
    result = create_admin(*args, stdin="a long password\n")
    assert result.returncode == 2
    assert "usage" in result.stderr and "unrecognized arguments" in result.stderr
    assert staff_rows(db) == []


def test_create_admin_uses_the_configured_cost(db):
    db.rollback()
    result = create_admin("carol", stdin="carols long password\n", rounds="")  # the default
    assert result.returncode == 0, result.stderr
    [(_, password_hash, _)] = staff_rows(db)
    assert password_hash.startswith("$2b$12$")
