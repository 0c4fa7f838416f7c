"""The unit of work and the message bus: committed events are dispatched once, after the
commit, in order; a rolled-back transaction dispatches nothing; a failing subscriber
does not stop the others."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from referral_app.domain import events
from referral_app.domain.clock import utcnow
from referral_app.domain.events import InviteActivated, UserCreated, UserSignedIn
from referral_app.models import User
from referral_app.services import auth, unit_of_work
from referral_app.services.bus import bus
from referral_app.services.subscribers import SUBSCRIBERS

PHONE = "+79123456789"


@pytest.fixture
def heard(monkeypatch):
    """Every event the bus dispatches, in order (the app's subscribers still run)."""
    seen: list[events.DomainEvent] = []
    for event_class in (UserCreated, UserSignedIn, InviteActivated, events.CodeSent, events.WebhookResent):
        bus.subscribe(event_class, seen.append)
    yield seen
    for event_class in (UserCreated, UserSignedIn, InviteActivated, events.CodeSent, events.WebhookResent):
        bus.unsubscribe(event_class, seen.append)


def _users(db) -> int:
    return db.execute(select(func.count()).select_from(User)).scalar_one()


def test_a_rolled_back_transaction_dispatches_nothing(db, heard):
    def work(session):
        session.add(User(phone_number=PHONE, invite_code="ROLLED", created_at=utcnow()))
        session.flush()
        events.record(session, UserCreated(1))
        raise RuntimeError("the work fails before its commit")

    with pytest.raises(RuntimeError, match="before its commit"):
        asyncio.run(unit_of_work.run(work))
    assert heard == []
    assert _users(db) == 0


def test_an_explicit_rollback_drops_the_events_recorded_before_it(db, heard):
    def work(session):
        events.record(session, UserCreated(1))
        session.rollback()
        events.record(session, UserSignedIn(2))

    asyncio.run(unit_of_work.run(work))
    assert heard == [UserSignedIn(2)]


def test_events_committed_before_a_failure_are_still_dispatched(db, heard):
    def work(session):
        events.record(session, UserCreated(1))
        session.commit()
        events.record(session, UserSignedIn(1))
        raise RuntimeError("after the commit")

    with pytest.raises(RuntimeError, match="after the commit"):
        asyncio.run(unit_of_work.run(work))
    assert heard == [UserCreated(1)]


def test_a_first_sign_in_dispatches_user_created_then_signed_in_once(db, heard):
    issued = asyncio.run(auth.request_code(PHONE, "198.51.100.7"))
    asyncio.run(auth.sign_in(PHONE, issued.code))
    user_id = db.execute(select(User.id).where(User.phone_number == PHONE)).scalar_one()
    assert heard == [events.CodeSent(PHONE), UserCreated(user_id), UserSignedIn(user_id)]


def test_a_failing_subscriber_does_not_stop_the_others(db, heard, caplog):
    def broken(_event):
        raise RuntimeError("subscriber bug")

    bus.subscribe(UserCreated, broken)
    try:
        asyncio.run(bus.dispatch([UserCreated(7), UserSignedIn(7)]))
    finally:
        bus.unsubscribe(UserCreated, broken)
    assert heard == [UserCreated(7), UserSignedIn(7)]
    assert "subscriber bug" in caplog.text


def test_every_event_class_has_its_subscribers_in_the_one_table():
    for event_class in (events.CodeSent, UserCreated, UserSignedIn, InviteActivated, events.WebhookResent):
        assert event_class in SUBSCRIBERS
        assert bus.subscribers(event_class)[: len(SUBSCRIBERS[event_class])] == tuple(SUBSCRIBERS[event_class])


def test_a_cancelled_caller_does_not_lose_the_events_its_unit_of_work_commits(db, heard):
    """The thread cannot be stopped: what it commits happened, so its events are dispatched."""
    import threading

    release = threading.Event()

    def work(session):
        release.wait(5)
        events.record(session, UserCreated(9))
        session.commit()

    async def scenario():
        caller = asyncio.ensure_future(unit_of_work.run(work))
        await asyncio.sleep(0.05)
        caller.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await caller
        for _ in range(100):  # the unit of work ends in its own time
            if heard:
                break
            await asyncio.sleep(0.02)

    asyncio.run(scenario())
    assert heard == [UserCreated(9)]
