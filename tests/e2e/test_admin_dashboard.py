"""The dashboard in Chromium with data (screenshots at 375 and 1440 px), the CSV download, and
webhooks sent by the running app's own delivery loop (the lifespan task)."""

from __future__ import annotations

import csv
import io
import random
import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.sync_api import expect
from sqlalchemy import text
from standardwebhooks import Webhook

from referral_app.domain import referrals, staff, users
from referral_app.domain.clock import utcnow
from tests.e2e.conftest import another_app, screenshot
from tests.e2e.test_admin_ui import STAFF_PASSWORD, staff_login
from tests.webhooks.conftest import SECRET, Receiver


def seed_growth(db, users_count: int = 120) -> None:
    """Users over the last 40 days, about half of them invited by a few busy inviters."""
    rng = random.Random(13)
    now = utcnow()
    base = 79150000000 + rng.randrange(10**4) * 1000
    people = []
    for n in range(users_count):
        created = now - timedelta(days=40 * (1 - n / users_count) ** 1.5, minutes=rng.randrange(600))
        people.append(users.get_or_create_user(db, f"+{base + n}", created))
        db.commit()
    inviters = people[:6]
    for n, person in enumerate(people[6:]):
        if rng.random() < 0.55:
            inviter = inviters[min(int(rng.expovariate(0.7)), 5)]
            when = max(person.created_at, now - timedelta(days=29)) + timedelta(minutes=rng.randrange(300))
            referrals.activate_invite(db, person.id, inviter.invite_code, now=min(when, now))


def test_dashboard_with_data_at_phone_and_desktop_widths(base_url, new_context, app_db):
    seed_growth(app_db)
    total, activated = app_db.exec(text("SELECT count(*), count(invited_by_id) FROM users")).one()
    top = app_db.exec(text("SELECT phone_number FROM users WHERE invited_count > 0 "
                           "ORDER BY invited_count DESC, id DESC LIMIT 10")).all()
    app_db.rollback()
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    for width, height in ((1440, 900), (375, 812)):
        page = new_context(width, height).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        staff_login(page, base_url, username)  # lands on the dashboard
        expect(page.locator("#total-users")).to_have_text(f"{total:,}")
        expect(page.locator("#total-activated")).to_have_text(f"{activated:,}")
        expect(page.locator("#activation-rate")).to_have_text(f"{activated / total:.1%}")
        for chart in ("#signups-chart svg", "#activations-chart svg"):
            expect(page.locator(chart)).to_be_visible()
            assert page.locator(chart + " rect.rect").count() == 30  # a bar per day (0-high ones too)
        expect(page.locator("#top-inviters tbody tr")).to_have_count(len(top))
        assert page.locator("#top-inviters tbody tr td:nth-child(2)").all_inner_texts() == [p for (p,) in top]
        # Nothing is wider than the screen; each chart fits its card.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        for chart in ("#signups-chart", "#activations-chart"):
            box, svg = page.locator(chart).bounding_box(), page.locator(chart + " svg").bounding_box()
            assert svg["width"] <= box["width"] + 0.5
        screenshot(page, f"admin-dashboard-{width}")
        assert errors == []


def test_users_csv_downloads_from_the_dashboard(base_url, new_context, app_db):
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    page = new_context().new_page()
    staff_login(page, base_url, username)
    with page.expect_download() as download:
        page.click("#export-users")
    path = download.value.path()
    rows = list(csv.reader(io.StringIO(open(path, encoding="utf-8").read())))
    count = app_db.exec(text("SELECT count(*) FROM users")).one()[0]
    app_db.rollback()
    assert rows[0][:3] == ["id", "phone_number", "invite_code"] and len(rows) == count + 1
    assert re.fullmatch(r"users-\d{4}-\d{2}-\d{2}\.csv", download.value.suggested_filename)


def test_the_running_app_delivers_webhooks(app_server, tmp_path_factory):
    """The app's own lifespan task sends a sign-up's user.created at once (nudged by the commit)."""
    receiver = Receiver()
    receiver.start()
    env = {"WEBHOOK_URL": receiver.url, "WEBHOOK_SECRET": SECRET, "WEBHOOK_POLL_SECONDS": "60"}
    try:
        with another_app(app_server, tmp_path_factory, extra_env=env) as app, httpx.Client(base_url=app.url) as client:
            phone = f"+7916{random.randrange(10**7):07d}"
            code = client.post("/api/v1/auth/request_code/", json={"phone_number": phone}).json()["confirmation_code"]
            signed_in = datetime.now(UTC)
            token = client.post("/api/v1/auth/auth_code/", json={"phone_number": phone, "confirmation_code": code})
            assert token.status_code == 200
            [received] = receiver.wait_for(1, timeout=10)  # long before the 60 s poll
            assert datetime.now(UTC) - signed_in < timedelta(seconds=10)
            event = Webhook(SECRET).verify(received.body, received.headers)
            assert event["type"] == "user.created" and event["data"]["phone_number"] == phone
    finally:
        receiver.stop()


def test_deliveries_and_audit_log_views(base_url, new_context, app_db, monkeypatch):
    """A failed delivery resent by staff: the deliveries list, its attempts, and the audit log."""
    from referral_app.domain import webhooks
    from referral_app.domain.webhooks import Outcome, RetryPolicy
    from referral_app.settings import settings

    monkeypatch.setattr(settings, "webhook_url", "http://127.0.0.1:9/hooks")
    # A plain id: reading an expired ORM object later would open a transaction on app_db, which
    # on SQLite holds the write lock the app's requests then wait for.
    user_id = users.get_or_create_user(app_db, f"+7917{random.randrange(10**7):07d}", utcnow()).id
    app_db.commit()
    pk = app_db.exec(text("SELECT max(id) FROM webhook_events")).one()[0]
    app_db.rollback()
    policy = RetryPolicy.from_settings()
    start = utcnow()
    for n, outcome in enumerate([Outcome(500, 83, "HTTP 500"), Outcome(None, 10_002, "no answer within 10 s")]):
        [delivery] = [d for d in webhooks.claim_due(app_db, start + timedelta(hours=25 * n), policy) if d.pk == pk]
        webhooks.record_attempt(app_db, delivery, outcome, start + timedelta(hours=25 * n), policy)
    username = f"staff_{uuid.uuid4().hex[:8]}"
    staff.create_staff(app_db, username, STAFF_PASSWORD)
    app_db.rollback()
    pages = {width: new_context(width, height).new_page() for width, height in ((1440, 900), (375, 812))}
    for width, page in pages.items():
        staff_login(page, base_url, username)
        page.goto(f"{base_url}/admin/webhook-event/list?search={user_id}")
        expect(page.locator("table tbody tr")).to_have_count(1)
        expect(page.locator("table tbody tr")).to_contain_text("failed")
        expect(page.locator("table tbody tr")).to_contain_text("no answer within 10 s")
        screenshot(page, f"admin-webhook-deliveries-{width}")
        page.goto(f"{base_url}/admin/webhook-event/details/{pk}")
        expect(page.locator("#attempts tbody tr")).to_have_count(2)
        screenshot(page, f"admin-webhook-delivery-{width}")
    # Resend it: the list shows it pending again, and the audit log has the action.
    page = pages[1440]
    page.goto(f"{base_url}/admin/webhook-event/list?search={user_id}")
    page.locator("table tbody tr input.select-box").check()
    page.click("#dropdownMenuButton")
    page.click("#action-customconfirm-resend")
    page.locator("#action-custom-modal-resend").click()
    page.wait_for_url(re.compile(r"/admin/webhook-event/list$"))
    expect(page.locator(f"table tbody tr:has(a[href$='/details/{pk}'])")).to_contain_text("pending")
    for width, page in pages.items():
        page.goto(f"{base_url}/admin/audit-log/list")
        expect(page.locator("table tbody tr").first).to_contain_text(username)
        expect(page.locator("table tbody tr").first).to_contain_text("webhook.resend")
        screenshot(page, f"admin-audit-log-{width}")
