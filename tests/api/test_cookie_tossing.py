"""Cookie tossing over plain HTTP (issue 18): a sibling's duplicate of one of our cookies is
deleted with the very answer to the request that carried it (infra/cookies.py,
infra/gate.py), so it costs at most one request, never a lock-out; our own cookie
(host-only, Path=/) is never among the deletions."""

from __future__ import annotations

from fastapi.testclient import TestClient

from referral_app.referral_app import api
from referral_app.domain import staff
from referral_app.infra.cookies import deletions, tossed_cookies
from referral_app.settings import settings
from tests.api.conftest import CLIENT_ADDRESS

STAFF_PASSWORD = "a long staff password"


def removed(response) -> set[tuple[str, str | None, str]]:
    """(name, Domain or None for host-only, Path) of each deletion in the answer."""
    found = set()
    for value in response.headers.get_list("set-cookie"):
        parts = [part.strip() for part in value.split(";")]
        attrs = {k.lower(): v for k, _, v in (part.partition("=") for part in parts[1:])}
        if attrs.get("max-age") == "0":
            found.add((parts[0].split("=", 1)[0], attrs.get("domain"), attrs.get("path")))
    return found


def client_for(host: str, scheme: str = "http") -> TestClient:
    return TestClient(api, client=CLIENT_ADDRESS, base_url=f"{scheme}://{host}")


def test_a_duplicate_session_cookie_is_deleted_everywhere_but_where_ours_lives(db):
    with client_for("app.example.test:3000") as client:
        response = client.get("/profile", headers={"Cookie": "referral_session=ours; referral_session=theirs"})
    gone = removed(response)
    for domain in ("app.example.test", "example.test", "test"):
        assert {("referral_session", domain, "/"), ("referral_session", domain, "/profile"),
                ("referral_session", domain, "/profile/")} <= gone, domain
    assert {("referral_session", None, "/profile"), ("referral_session", None, "/profile/")} <= gone
    assert ("referral_session", None, "/") not in gone  # ours: host-only, Path=/
    assert {name for name, _, _ in gone} == {"referral_session"}


def test_every_path_prefix_of_the_request_is_covered(db):
    with client_for("app.example.test") as client:
        response = client.post("/api/v1/auth/browser_session/",
                               headers={"Cookie": "referral_session=a; referral_session=b", "Origin": "http://x.test"})
    paths = {path for _, domain, path in removed(response) if domain == "example.test"}
    assert {"/", "/api", "/api/", "/api/v1", "/api/v1/", "/api/v1/auth", "/api/v1/auth/",
            "/api/v1/auth/browser_session", "/api/v1/auth/browser_session/"} <= paths


def test_one_cookie_of_each_name_changes_nothing(db):
    with client_for("app.example.test") as client:
        response = client.get("/profile", headers={"Cookie": "referral_session=ours; referral_admin=x; lang=ru"})
    assert removed(response) == set()
    assert tossed_cookies("referral_session=ours; referral_session=ours2", secure=False) == ["referral_session"]
    assert tossed_cookies("theme=dark; other=1", secure=False) == []


def test_on_an_ip_address_only_other_paths_are_deleted():
    assert all(b"Domain=" not in value for value in deletions(["referral_session"], "127.0.0.1", "/a", False))
    assert {value.split(b";")[1].strip() for value in deletions(["referral_session"], "127.0.0.1", "/a", False)} == {
        b"Path=/a", b"Path=/a/"}


def test_over_https_a_plain_named_copy_is_deleted_and_the_host_cookie_kept(db):
    with client_for("app.example.test", "https") as client:
        response = client.get("/", headers={"Cookie": "__Host-referral_session=ours; referral_session=theirs"})
    gone = removed(response)
    assert ("referral_session", None, "/") in gone and ("referral_session", "example.test", "/") in gone
    assert not [name for name, _, _ in gone if name.startswith("__Host-")]
    assert all("secure" in value.lower() for value in response.headers.get_list("set-cookie"))


def test_a_staff_member_with_a_tossed_admin_cookie_is_back_after_one_request(db, monkeypatch):
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)
    staff.create_staff(db, "ops_chief", STAFF_PASSWORD)
    # The attacker's own staff cookie, as their browser got it: <session id>.<their binding>.
    attacker = staff.start_staff_session(db, staff.create_staff(db, "mallory", STAFF_PASSWORD).id) + "." + "m" * 32
    with client_for("app.example.test") as client:
        page = client.get("/admin/login")
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        login = client.post("/admin/login", data={"username": "ops_chief", "password": STAFF_PASSWORD,
                                                  "csrf_token": token, "staff_binding": "b" * 32},
                            headers={"Origin": "http://app.example.test"}, follow_redirects=False)
        assert login.status_code == 302, login.text[:300]
        ours = client.cookies["referral_admin"]
        client.cookies.clear()
        # The sibling's copy for Domain=example.test comes along: which is whose is unknown.
        tossed = client.get("/admin/user/list", headers={"Cookie": f"referral_admin={ours}; referral_admin={attacker}"},
                            follow_redirects=False)
        assert ("referral_admin", "example.test", "/") in removed(tossed)
        assert ("referral_admin", None, "/") not in removed(tossed)
        # The browser applied the deletions: only ours is left, and the staff member is signed in.
        again = client.get("/admin/user/list", headers={"Cookie": f"referral_admin={ours}"}, follow_redirects=False)
        assert again.status_code == 200 and "<table" in again.text


# Staff sessions are bound to the browser's admin pages (admin/auth.py)

OURS, THEIRS = "our-admin-pages-binding-0123456789", "mallorys-pages-binding-0123456789"


def _staff_world(db, monkeypatch):
    """Two staff accounts (ours, the attacker's) and a user's session to revoke: their ids."""
    from sqlmodel import select

    from referral_app.domain import auth, sessions
    from referral_app.models import AuthSession

    monkeypatch.setattr(settings, "bcrypt_rounds", 4)
    me = staff.create_staff(db, "ops_chief", STAFF_PASSWORD).id
    mallory = staff.create_staff(db, "mallory", STAFF_PASSWORD).id
    issued = auth.request_code(db, "+79123456789", "127.0.0.1")
    sessions.create_session(db, auth.sign_in(db, "+79123456789", issued.code).id)
    session_id = db.exec(select(AuthSession.id)).first()
    db.rollback()
    return me, mallory, session_id


def _revoke(client, cookie: str, binding: str | None, session_id: int, page_of: str):
    """The revoke action's POST, with the CSRF token of the page shown with ``page_of``'s cookie."""
    from referral_app.admin.auth import _token_for

    token = _token_for(page_of.rpartition(".")[0])
    data = {"csrf_token": token}
    if binding is not None:
        data["staff_binding"] = binding
    return client.post(f"/admin/session/action/revoke?pks={session_id}", data=data,
                       headers={"Origin": "http://app.example.test", "Cookie": cookie}, follow_redirects=False)


def test_a_tossed_staff_cookie_runs_no_action_and_ours_is_picked_by_its_binding(db, monkeypatch):
    from sqlmodel import select

    from referral_app.models import AuthSession, StaffAction

    me, mallory, session_id = _staff_world(db, monkeypatch)
    mine = f"{staff.start_staff_session(db, me)}.{OURS}"
    theirs = f"{staff.start_staff_session(db, mallory)}.{THEIRS}"
    with client_for("app.example.test") as client:
        # A signed-out staff member's browser: only the sibling's cookie, and its own pages' binding (or none).
        for binding in (OURS, None, ""):
            response = _revoke(client, f"referral_admin={theirs}", binding, session_id, page_of=theirs)
            assert response.status_code == 403, binding
        assert db.exec(select(StaffAction)).all() == []
        assert db.exec(select(AuthSession.revoked_at).where(AuthSession.id == session_id)).one() is None
        db.rollback()
        # Signed in, with the sibling's copy beside ours (either order): the action runs as us.
        response = _revoke(client, f"referral_admin={theirs}; referral_admin={mine}", OURS, session_id, page_of=mine)
        assert response.status_code == 303, response.text[:300]
    assert [(a.staff_id, a.action) for a in db.exec(select(StaffAction)).all()] == [(me, "session.revoke")]
    db.rollback()


def test_a_login_without_the_pages_binding_starts_no_session(db, monkeypatch):
    from sqlmodel import select

    from referral_app.models import StaffSession

    _staff_world(db, monkeypatch)
    with client_for("app.example.test") as client:
        page = client.get("/admin/login")
        token = page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
        for binding in (None, "", "short", "x" * 129, "not allowed chars!!!!!!!!!!!"):
            data = {"username": "ops_chief", "password": STAFF_PASSWORD, "csrf_token": token}
            if binding is not None:
                data["staff_binding"] = binding
            response = client.post("/admin/login", data=data, headers={"Origin": "http://app.example.test"},
                                   follow_redirects=False)
            assert response.status_code == 400 and "referral_admin=" not in response.headers.get("set-cookie", "")
    assert db.exec(select(StaffSession)).all() == []


def test_a_page_shown_with_a_cookie_says_whose_binding_it_carries(db, monkeypatch):
    """The page's script leaves for the login page when that is not its own binding (e2e test)."""
    me, mallory, _ = _staff_world(db, monkeypatch)
    theirs = f"{staff.start_staff_session(db, mallory)}.{THEIRS}"
    with client_for("app.example.test") as client:
        page = client.get("/admin/user/list", headers={"Cookie": f"referral_admin={theirs}"})
    assert page.status_code == 200 and f'<meta name="staff-binding" content="{THEIRS}">' in page.text


def test_a_page_request_with_two_staff_cookies_is_sent_back_once_without_the_copy(db, monkeypatch):
    me, mallory, _ = _staff_world(db, monkeypatch)
    mine = f"{staff.start_staff_session(db, me)}.{OURS}"
    theirs = f"{staff.start_staff_session(db, mallory)}.{THEIRS}"
    with client_for("app.example.test") as client:
        first = client.get("/admin/user/list?page=1", headers={"Cookie": f"referral_admin={mine}; referral_admin={theirs}"},
                           follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/admin/user/list?page=1"
        assert ("referral_admin", "example.test", "/") in removed(first)
        # Had a copy survived, the second round would not be sent back again: no loop.
        second = client.get("/admin/user/list", follow_redirects=False, headers={
            "Cookie": f"referral_admin={mine}; referral_admin={theirs}; referral_admin_retry=1"})
        assert second.status_code == 302  # to the login page, once
