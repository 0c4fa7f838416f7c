"""Claiming, leases, order per user, retries with backoff, giving up, resending, clean-up:
the delivery rules, driven with an injected clock (``now=``) instead of waiting."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from referral_app.domain import audit, maintenance, referrals, staff, webhooks
from referral_app.domain.webhooks import Outcome, RetryPolicy
from tests.conftest import IS_POSTGRES
from tests.domain.helpers import T0
from tests.webhooks.conftest import attempt_rows, event_rows

POLICY = RetryPolicy(
    base_delay=timedelta(seconds=10), max_delay=timedelta(hours=1), retry_for=timedelta(hours=24),
    lease=timedelta(seconds=25),
)
OK, DOWN = Outcome(204, 12, None), Outcome(500, 30, "HTTP 500")


def claim(db, now, limit=20):
    return webhooks.claim_due(db, now, POLICY, limit)


def types_and_users(deliveries, rows):
    by_pk = {r["id"]: r for r in rows}
    return [(d.event_type, by_pk[d.pk]["user_id"]) for d in deliveries]


def test_one_event_per_user_at_a_time_oldest_first(db, webhooks_on, make_users):
    alice, bob = make_users(2, now=T0)
    referrals.activate_invite(db, bob.id, alice.invite_code, now=T0)
    rows = event_rows(db)
    first = claim(db, T0)
    # Bob's activation waits for Bob's user.created (and for Alice's: it names her too).
    assert types_and_users(first, rows) == [("user.created", alice.id), ("user.created", bob.id)]
    assert [d.attempt for d in first] == [1, 1]
    assert claim(db, T0) == []  # both leased; the activation still waits
    webhooks.record_attempt(db, first[1], OK, T0, POLICY)
    assert claim(db, T0) == []  # Alice's user.created is not delivered yet
    webhooks.record_attempt(db, first[0], OK, T0, POLICY)
    [activation] = claim(db, T0)
    assert types_and_users([activation], rows) == [("referral.activated", bob.id)]


def test_a_failing_event_holds_back_its_users_later_events_until_it_fails_for_good(db, webhooks_on, make_users):
    alice, bob = make_users(2, now=T0)
    [a_created, b_created] = claim(db, T0)
    webhooks.record_attempt(db, b_created, OK, T0, POLICY)
    referrals.activate_invite(db, bob.id, alice.invite_code, now=T0)
    assert webhooks.record_attempt(db, a_created, DOWN, T0, POLICY) == "pending"
    # Long after, Alice's user.created is retried; Bob's activation (naming Alice) still waits.
    later = T0 + timedelta(hours=2)
    assert [d.event_type for d in claim(db, later)] == ["user.created"]
    # An event that failed for good no longer holds anything back.
    db.execute(webhooks._events.update().values(retry_until=T0))
    db.commit()
    [retry] = [d for d in event_rows(db) if d["event_type"] == "user.created" and d["status"] == "pending"]
    assert retry["attempts"] == 2
    delivery = webhooks.Delivery(retry["id"], retry["event_id"], "user.created", retry["payload"], 2)
    assert webhooks.record_attempt(db, delivery, DOWN, later, POLICY) == "failed"
    assert [d.event_type for d in claim(db, later)] == ["referral.activated"]


def test_a_lease_keeps_other_workers_off_until_it_ends(db, webhooks_on, make_users):
    make_users(1, now=T0)
    [mine] = claim(db, T0)
    assert claim(db, T0 + POLICY.lease - timedelta(seconds=1)) == []
    # The worker died mid-delivery: once the lease ends, another worker takes the event.
    [theirs] = claim(db, T0 + POLICY.lease)
    assert (theirs.pk, theirs.attempt) == (mine.pk, 2)
    # The dead worker's late answer is kept as an attempt, but changes nothing.
    assert webhooks.record_attempt(db, mine, OK, T0 + POLICY.lease, POLICY) == "stale"
    assert event_rows(db)[0]["status"] == "pending"
    assert webhooks.record_attempt(db, theirs, OK, T0 + POLICY.lease, POLICY) == "delivered"
    [row] = event_rows(db)
    assert (row["status"], row["attempts"], row["delivered_at"]) == ("delivered", 2, T0 + POLICY.lease)
    assert [(a["attempt"], a["status_code"]) for a in attempt_rows(db)] == [(1, 204), (2, 204)]
    assert claim(db, T0 + timedelta(days=1)) == []  # delivered: never again


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    rng = random.Random(7)
    for attempt in range(1, 40):
        ceiling = min(POLICY.max_delay, POLICY.base_delay * 2 ** (attempt - 1))
        delays = [POLICY.delay(attempt, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert len(set(delays)) > 40  # jittered, not one fixed value
    assert POLICY.delay(1, random.Random(1)) <= timedelta(seconds=10)
    assert POLICY.delay(10**6, random.Random(1)) <= timedelta(hours=1)


def test_retries_go_on_for_at_least_24_hours_then_the_event_fails(db, webhooks_on, make_users):
    make_users(1, now=T0)
    now, schedule, rng = T0, [], random.Random(3)
    while True:
        [delivery] = claim(db, now)
        status = webhooks.record_attempt(db, delivery, Outcome(None, 2000, "ConnectError: refused"), now, POLICY, rng)
        schedule.append(now)
        if status == "failed":
            break
        assert status == "pending"
        [row] = event_rows(db)
        assert claim(db, row["next_attempt_at"] - timedelta(microseconds=1)) == []  # not before its time
        now = row["next_attempt_at"]
    assert schedule[-1] >= T0 + timedelta(hours=24)  # tried for at least 24 hours
    assert all(b - a <= POLICY.max_delay for a, b in zip(schedule, schedule[1:]))
    gaps = [b - a for a, b in zip(schedule, schedule[1:])]
    assert gaps[0] <= timedelta(seconds=10) and gaps[8] >= timedelta(minutes=20)  # exponential
    [row] = event_rows(db)
    attempts = attempt_rows(db)
    assert row["status"] == "failed" and row["attempts"] == len(schedule) == len(attempts)
    assert row["last_error"] == "ConnectError: refused" and row["last_status_code"] is None
    assert [a["attempted_at"] for a in attempts] == schedule
    assert all(a["duration_ms"] == 2000 and a["status_code"] is None for a in attempts)
    assert claim(db, now + timedelta(days=30)) == []  # failed: nothing more


def test_resend_puts_an_event_back_with_a_full_window_and_is_audited(db, webhooks_on, make_users):
    make_users(1, now=T0)
    [delivery] = claim(db, T0)
    webhooks.record_attempt(db, delivery, OK, T0, POLICY)
    account = staff.create_staff(db, "resender", "a long staff password")
    later = T0 + timedelta(days=3)
    assert webhooks.resend(db, delivery.pk, audit.StaffActor(account.id, "192.0.2.9"), now=later)
    [row] = event_rows(db)
    assert (row["status"], row["next_attempt_at"], row["retry_until"]) == ("pending", later, later + POLICY.retry_for)
    [again] = claim(db, later)
    assert (again.pk, again.event_id, again.attempt) == (delivery.pk, delivery.event_id, 2)  # same webhook-id
    entries = [dict(r._mapping) for r in db.execute(select(audit.StaffAction.__table__)).all()]
    db.rollback()
    assert [(e["staff_id"], e["action"], e["target_type"], e["target_id"], e["client_ip"]) for e in entries] == [
        (account.id, "webhook.resend", "webhook_event", delivery.pk, "192.0.2.9")
    ]
    assert not webhooks.resend(db, 999_999, audit.StaffActor(account.id, "192.0.2.9"), now=later)


def test_cleanup_removes_delivered_events_after_the_retention_only(db, webhooks_on, make_users):
    make_users(3, now=T0)
    one, two, three = claim(db, T0)
    webhooks.record_attempt(db, one, OK, T0, POLICY)
    webhooks.record_attempt(db, two, OK, T0 + timedelta(days=6), POLICY)
    db.execute(webhooks._events.update().where(webhooks._events.c.id == three.pk).values(retry_until=T0))
    db.commit()
    webhooks.record_attempt(db, three, DOWN, T0, POLICY)  # failed
    purged = maintenance.purge_expired(db, now=T0 + timedelta(days=7, seconds=1))
    assert purged.webhook_events == 1
    assert [(r["id"], r["status"]) for r in event_rows(db)] == [(two.pk, "delivered"), (three.pk, "failed")]
    assert {a["webhook_event_id"] for a in attempt_rows(db)} == {two.pk, three.pk}


@pytest.mark.skipif(not IS_POSTGRES, reason="row locks with SKIP LOCKED are PostgreSQL's; SQLite has one writer")
def test_a_claim_in_progress_is_skipped_not_waited_for(db, engine, webhooks_on, make_users):
    alice, bob, carol = make_users(3, now=T0)
    referrals.activate_invite(db, bob.id, alice.invite_code, now=T0)
    with Session(engine) as other:
        # Another worker is in the middle of claiming Alice's user.created (row locked, not committed).
        alice_created = next(r for r in event_rows(db) if r["user_id"] == alice.id)
        other.execute(
            select(webhooks._events.c.id).where(webhooks._events.c.id == alice_created["id"]).with_for_update()
        )
        mine = claim(db, T0)
        # Not Alice's (locked), not Bob's activation (it names Alice, whose event is still pending).
        assert {d.event_type for d in mine} == {"user.created"}
        assert alice_created["id"] not in {d.pk for d in mine} and len(mine) == 2
        other.rollback()
