"""The dashboard's numbers against a seeded database, the CSV exports, the webhook deliveries
view with Resend, and the audit log after each staff action; all behind the staff login."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlmodel import select

from referral_app.admin.csv_export import csv_lines, safe_cell
from referral_app.domain import auth, insights, referrals, webhooks
from referral_app.domain.clock import utcnow
from referral_app.domain.webhooks import Outcome, RetryPolicy
from referral_app.models import StaffAction, WebhookEvent
from tests.admin.test_admin import (  # noqa: F401  (fixtures)
    ALICE, BOB, STAFF_NAME, World, admin, client, fast_bcrypt, list_page, listed_ids, login, rows, run_action,
    staff_account, world,
)
from tests.domain.conftest import make_users, sign_up  # noqa: F401  (fixtures)
from tests.api.conftest import CLIENT_ADDRESS
from tests.domain.helpers import TEST_IP, phone

TODAY = utcnow().date()


def noon(days_ago: int) -> datetime:
    return datetime.combine(TODAY - timedelta(days=days_ago), time(12), UTC)


def by_id(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.DOTALL)
    assert match, element_id
    return html.unescape(match.group(1)).strip()


def table_rows(page: str, table_id: str) -> list[list[str]]:
    body = page.split(f'id="{table_id}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL)
    ]


# --- the dashboard ------------------------------------------------------------------------


def test_staff_land_on_the_dashboard_after_login(client, staff_account):
    response = login(client)
    assert response.status_code == 302
    response = client.get(response.headers["location"])  # /admin/ sends staff on to the dashboard
    assert response.status_code == 200 and urlsplit(str(response.url)).path == "/admin/dashboard"
    assert 'id="total-users"' in response.text
    assert client.get("/admin/", follow_redirects=False).headers["location"].endswith("/admin/dashboard")


def test_the_dashboard_and_exports_need_a_staff_login(client, world):
    for url in ["/admin/dashboard", "/admin/user/export.csv", "/admin/referral/export.csv"]:
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 302 and urlsplit(response.headers["location"]).path == "/admin/login", url
        assert ALICE not in response.text


def test_dashboard_numbers_match_the_seeded_database(db, admin, sign_up):
    # Sign-ups: 3 today, 2 yesterday, 1 two days ago, 1 29 days ago (the window's first day), 1 30 and
    # 1 45 days ago (outside the window).
    created = {0: 3, 1: 2, 2: 1, 29: 1, 30: 1, 45: 1}
    people = []
    for days_ago, count in created.items():
        for _ in range(count):
            people.append(sign_up(phone(len(people) + 1), now=noon(days_ago)))
    a, b, c = people[-1], people[-2], people[-3]  # the oldest three invite the others
    activations = [(people[0], a, 0), (people[1], a, 0), (people[2], a, 1), (people[3], b, 1), (people[4], b, 29),
                   (people[5], c, 30)]
    for invited, inviter, days_ago in activations:
        referrals.activate_invite(db, invited.id, inviter.invite_code, now=noon(days_ago))
    auth.request_code(db, phone(99), TEST_IP, now=noon(0))  # a code asked for today, never used
    auth.request_code(db, phone(98), TEST_IP, now=noon(1))  # and one yesterday

    page = admin.get("/admin/dashboard")
    assert page.status_code == 200
    text_ = page.text
    assert by_id(text_, "total-users") == "9"
    assert by_id(text_, "total-activated") == "6"
    assert by_id(text_, "activation-rate") == "66.7%"
    assert by_id(text_, "codes-sent-today") == "4"  # three sign-ups' codes and the unused one

    signups = {day: int(n) for day, n in table_rows(text_, "signups-table")}
    assert len(signups) == 30 and list(signups)[-1] == TODAY.isoformat()
    assert list(signups)[0] == (TODAY - timedelta(days=29)).isoformat()
    expected = {(TODAY - timedelta(days=d)).isoformat(): n for d, n in created.items() if d < 30}
    assert {day: n for day, n in signups.items() if n} == expected
    per_day_activations = {day: int(n) for day, n in table_rows(text_, "activations-table") if int(n)}
    assert per_day_activations == {
        TODAY.isoformat(): 2, (TODAY - timedelta(days=1)).isoformat(): 2, (TODAY - timedelta(days=29)).isoformat(): 1,
    }
    assert table_rows(text_, "top-inviters") == [
        ["1", a.phone_number, a.invite_code, "3"], ["2", b.phone_number, b.invite_code, "2"],
        ["3", c.phone_number, c.invite_code, "1"],
    ]
    # Two charts, inline SVG, with no script and nothing from another origin.
    assert text_.count('class="pygal-chart"') == 2
    charts = text_.split('id="signups-chart"', 1)[1]
    assert "<script" not in charts.split("</svg>")[0]
    # Everything the page loads comes from the app itself (sqladmin writes absolute URLs).
    loaded = re.findall(r'(?:src|href)="((?:https?:)?//[^/"]+)', text_)
    assert loaded and set(loaded) == {"http://testserver"}


def test_the_dashboard_of_an_empty_programme(db, admin):
    page = admin.get("/admin/dashboard").text
    assert by_id(page, "total-users") == "0" and by_id(page, "activation-rate") == "0.0%"
    assert all(n == "0" for _, n in table_rows(page, "signups-table"))
    assert "Nobody has brought anyone in yet." in page


# --- CSV ----------------------------------------------------------------------------------


def parse(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(r'attachment; filename="(users|referrals)-\d{4}-\d{2}-\d{2}\.csv"',
                        response.headers["content-disposition"])
    return list(csv.reader(io.StringIO(response.text)))


def test_csv_exports_of_users_and_referrals(db, admin, world):
    users_csv = parse(admin.get("/admin/user/export.csv"))
    assert users_csv[0] == list(insights.USER_COLUMNS)
    stored = db.exec(text(
        "SELECT id, phone_number, invite_code, invited_by_id, invited_count, is_active FROM users ORDER BY id")).all()
    db.rollback()
    assert [[r[0], r[1], r[2], r[3], r[5], r[6]] for r in users_csv[1:]] == [
        [str(i), p, code, str(by) if by else "", str(n), "true" if active else "false"]
        for i, p, code, by, n, active in stored
    ]
    bob_row = next(r for r in users_csv if r[1] == BOB)
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", bob_row[4])  # activated_at, UTC
    referrals_csv = parse(admin.get("/admin/referral/export.csv"))
    assert referrals_csv[0] == list(insights.REFERRAL_COLUMNS)
    assert [r[:5] for r in referrals_csv[1:]] == [
        [str(world.bob_id), BOB, str(world.alice_id), ALICE, world.alice_code]
    ]


def test_an_export_reads_the_table_in_chunks_as_it_streams(db, make_users):
    make_users(5)
    chunks = insights.export_users(db, chunk=2)
    first = next(chunks)
    assert [row[1] for row in first] == [phone(1), phone(2)]
    make_users(1)  # written after the first chunk was sent: a later chunk still has it
    rest = [row for chunk in chunks for row in chunk]
    assert [row[1] for row in rest] == [phone(3), phone(4), phone(5), phone(6)]
    # One piece of CSV per chunk, never the whole file at once.
    pieces = list(csv_lines(["id"], iter([[(1,), (2,)], [(3,)]])))
    assert pieces == ["id\r\n1\r\n2\r\n", "3\r\n"]
    assert list(csv_lines(["id"], iter([]))) == ["id\r\n"]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=HYPERLINK(\"http://evil.example\",\"x\")", "'=HYPERLINK(\"http://evil.example\",\"x\")"),
        ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("+79123456789", "+79123456789"),  # an E.164 phone is a plain number: kept as it is
        ("-5", "-5"),
        ("A7K2MX", "A7K2MX"),
        (None, ""),
        (True, "true"),
        (42, "42"),
        (datetime(2030, 1, 1, 12, tzinfo=UTC), "2030-01-01T12:00:00Z"),
    ],
)
def test_cells_are_guarded_against_formula_injection(value, written):
    assert safe_cell(value) == written
    written_csv = "".join(csv_lines(["x"], iter([[(value,)]])))
    assert list(csv.reader(io.StringIO(written_csv, newline=""))) == [["x"], [written]]


# --- deliveries, resend and the audit log -------------------------------------------------


@pytest.fixture
def failed_event(db, world, monkeypatch) -> int:
    monkeypatch.setattr(webhooks.settings, "webhook_url", "http://127.0.0.1:9/hooks")
    webhooks.record_event(db, webhooks.USER_CREATED, world.carol_id, {"user_id": world.carol_id}, utcnow())
    db.commit()
    policy = RetryPolicy.from_settings()
    [delivery] = webhooks.claim_due(db, utcnow(), policy)
    a_day_later = utcnow() + timedelta(hours=24, seconds=1)  # past the retry window
    assert webhooks.record_attempt(db, delivery, Outcome(503, 41, "HTTP 503"), a_day_later, policy) == "failed"
    return delivery.pk


def test_deliveries_are_listed_with_status_attempts_and_last_error(admin, failed_event):
    page = list_page(admin, "webhook-event")
    [row] = rows(page)
    assert row[:6] == [str(failed_event), "user.created", row[2], "failed", "1", "HTTP 503"]
    detail = admin.get(f"/admin/webhook-event/details/{failed_event}").text
    assert 'id="attempts"' in detail and "503" in detail and "41 ms" in detail
    assert "&#34;type&#34;: &#34;user.created&#34;" in detail or '"type": "user.created"' in html.unescape(detail)
    assert listed_ids(list_page(admin, "webhook-event", failed="yes")) == [failed_event]
    assert listed_ids(list_page(admin, "webhook-event", delivered="yes")) == []


def audit_entries(db) -> list[tuple]:
    entries = db.exec(select(StaffAction.staff_id, StaffAction.action, StaffAction.target_type,
                             StaffAction.target_id, StaffAction.client_ip).order_by(StaffAction.id)).all()
    db.rollback()
    return [tuple(e) for e in entries]


def test_every_staff_action_is_in_the_audit_log(db, admin, world: World, staff_account, failed_event):
    me, ip = staff_account.id, "198.51.100.7"  # the test client's address
    assert audit_entries(db) == []
    steps = [
        (("session", "revoke", world.bob_session_id), (me, "session.revoke", "session", world.bob_session_id, ip)),
        (("user", "deactivate", world.carol_id), (me, "user.deactivate", "user", world.carol_id, ip)),
        (("user", "activate", world.carol_id), (me, "user.reactivate", "user", world.carol_id, ip)),
        (("webhook-event", "resend", failed_event), (me, "webhook.resend", "webhook_event", failed_event, ip)),
    ]
    expected = []
    for (identity, name, pk), entry in steps:
        assert run_action(admin, identity, name, pk).status_code == 303
        expected.append(entry)
        assert audit_entries(db) == expected, name
        # Readable in the admin, newest first, with the staff member's name.
        [newest, *_] = rows(list_page(admin, "audit-log"))
        assert newest[2:5] == [STAFF_NAME, entry[1], f"{entry[2]} {entry[3]}"] and newest[5] == ip
    status = db.exec(select(WebhookEvent.status).where(WebhookEvent.id == failed_event)).one()
    db.rollback()
    assert status == "pending"  # resent
    # An unknown target is no action: nothing is logged for it.
    assert run_action(admin, "user", "deactivate", 999_999).status_code == 303
    assert run_action(admin, "webhook-event", "resend", 999_999).status_code == 303
    assert len(audit_entries(db)) == 4


def test_a_forged_resend_changes_and_logs_nothing(db, admin, failed_event):
    """Resend goes through the admin's guard like every action: POST only, from the admin's
    origin, with the session's CSRF token."""
    for response in [
        run_action(admin, "webhook-event", "resend", failed_event, headers={"Origin": "http://evil.example"}),
        run_action(admin, "webhook-event", "resend", failed_event, token="not the token"),
        admin.get("/admin/webhook-event/action/resend", params={"pks": failed_event}, follow_redirects=False),
    ]:
        assert response.status_code in (403, 405), response.status_code
    assert audit_entries(db) == []
    assert db.exec(select(WebhookEvent.status).where(WebhookEvent.id == failed_event)).one() == "failed"
    db.rollback()


def test_every_export_leaves_exactly_one_audit_log_entry(db, admin, world, staff_account):
    """Who exported, which export, how many rows, when, from which address; shown in the audit log."""
    started = utcnow()
    users_csv = parse(admin.get("/admin/user/export.csv"))
    entries = [(e.staff_id, e.action, e.target_type, e.target_id, e.client_ip, e.created_at)
               for e in db.exec(select(StaffAction)).all()]
    db.rollback()  # plain values: an expired ORM object would reopen a transaction (SQLite's lock)
    assert [entry[:5] for entry in entries] == [
        (staff_account.id, "export.users", "rows", len(users_csv) - 1, CLIENT_ADDRESS[0])
    ]
    assert started - timedelta(seconds=1) <= entries[0][5].replace(tzinfo=UTC) <= utcnow()
    referrals_csv = parse(admin.get("/admin/referral/export.csv"))
    entries = [(e.action, e.target_id) for e in db.exec(select(StaffAction).order_by(StaffAction.id)).all()]
    db.rollback()
    assert entries == [
        ("export.users", len(users_csv) - 1), ("export.referrals", len(referrals_csv) - 1)
    ]
    page = admin.get("/admin/audit-log/list").text
    assert "export.users" in page and "export.referrals" in page
    assert f"{len(users_csv) - 1} rows" in page and CLIENT_ADDRESS[0] in page
