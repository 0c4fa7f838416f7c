"""The staff use cases (``services/staff.py``): who may sign in, what is audited, how exports stream.

Each service is run as its callers run it, on an event loop (``asyncio.run``): the database
refuses a connection on the loop's thread, so these tests also prove that no SQL runs there.
The test's own session ends each of its transactions with a commit, which (unlike a
rollback) keeps its objects loaded: reading an expired one would take SQLite's write lock
on this thread while a service waits for it in another.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import select

from referral_app.domain import audit, insights, referrals, sessions, webhooks
from referral_app.domain.audit import StaffActor
from referral_app.domain.clock import utcnow
from referral_app.domain.errors import InvalidCredentials, NotAuthenticated, StaffLockedOut
from referral_app.domain.staff import UnknownStaff, UsernameTaken
from referral_app.domain.webhooks import Outcome, RetryPolicy
from referral_app.infra import db as database
from referral_app.models import AuthSession, StaffAction, User
from referral_app.services import staff
from referral_app.settings import settings
from tests.domain.conftest import make_users, sign_up  # noqa: F401  (fixtures)
from tests.domain.helpers import phone

NAME, PASSWORD, IP = "ops_chief", "a long staff password", "192.0.2.10"


@pytest.fixture(autouse=True)
def fast_bcrypt(monkeypatch):
    monkeypatch.setattr(settings, "bcrypt_rounds", 4)


@pytest.fixture
def actor(db) -> StaffActor:
    """A staff account, as the console's actor from a known address."""
    account = asyncio.run(staff.create_staff(NAME, PASSWORD))
    return StaffActor(account.id, IP)


def audit_log(db) -> list[tuple]:
    entries = [(a.staff_id, a.action, a.target_type, a.target_id, a.client_ip)
               for a in db.exec(select(StaffAction).order_by(StaffAction.id)).all()]
    db.commit()
    return entries


def session_of(db, user: User) -> tuple[str, int]:
    """A live API session of ``user``: its token and id."""
    token = sessions.create_session(db, user.id)
    session_pk = db.exec(select(AuthSession.id).where(AuthSession.user_id == user.id)).one()
    db.commit()
    return token, session_pk


# --- sign-in -----------------------------------------------------------------------------------


def test_a_signed_in_staff_session_names_its_account_until_sign_out(db, actor):
    session_id = asyncio.run(staff.sign_in(NAME, PASSWORD, IP))
    identity = asyncio.run(staff.staff_of_session(session_id))
    assert (identity.id, identity.username) == (actor.staff_id, NAME)
    assert asyncio.run(staff.sign_out(session_id)) is True
    assert asyncio.run(staff.staff_of_session(session_id)) is None
    assert asyncio.run(staff.sign_out(session_id)) is False  # already ended


@pytest.mark.parametrize("session_id", [None, 7, "", "x" * 129, "not-a-session"])
def test_anything_but_a_live_session_id_names_nobody(db, actor, session_id):
    assert asyncio.run(staff.staff_of_session(session_id)) is None


def test_a_wrong_password_and_an_unknown_name_are_refused_alike(db, actor):
    for username, password in ((NAME, "not the password!"), ("nobody_here", PASSWORD)):
        with pytest.raises(InvalidCredentials):
            asyncio.run(staff.sign_in(username, password, IP))


def test_a_deactivated_staff_account_cannot_sign_in_and_its_sessions_end(db, actor):
    session_id = asyncio.run(staff.sign_in(NAME, PASSWORD, IP))
    asyncio.run(staff.deactivate_staff(NAME))
    assert asyncio.run(staff.staff_of_session(session_id)) is None
    with pytest.raises(InvalidCredentials):
        asyncio.run(staff.sign_in(NAME, PASSWORD, IP))
    asyncio.run(staff.reactivate_staff(NAME))
    assert asyncio.run(staff.staff_of_session(session_id)) is None  # reactivation brings no session back
    assert asyncio.run(staff.staff_of_session(asyncio.run(staff.sign_in(NAME, PASSWORD, IP)))).id == actor.staff_id


def test_five_failures_lock_the_name_out_even_with_the_right_password(db, actor):
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            asyncio.run(staff.sign_in(NAME, "not the password!", IP))
    with pytest.raises(StaffLockedOut):
        asyncio.run(staff.sign_in(NAME, PASSWORD, "198.51.100.1"))


def test_failures_from_one_ipv6_slash_64_lock_it_out_whatever_the_address(db, actor):
    """Password spraying over many names from addresses of one /64 is one client's failures."""
    for i in range(5):
        with pytest.raises(InvalidCredentials):
            asyncio.run(staff.sign_in(f"nobody{i}", "not the password!", f"2001:db8:5:6::{i + 1:x}"))
    with pytest.raises(StaffLockedOut):
        asyncio.run(staff.sign_in(NAME, PASSWORD, "2001:db8:5:6::99"))
    account = asyncio.run(staff.sign_in(NAME, PASSWORD, "2001:db8:5:7::1"))  # another /64: another client
    assert account


def test_staff_accounts_need_a_free_name(db, actor):
    with pytest.raises(UsernameTaken):
        asyncio.run(staff.create_staff(NAME, PASSWORD))
    with pytest.raises(UnknownStaff):
        asyncio.run(staff.deactivate_staff("nobody_here"))


# --- actions: each one audited, nothing audited when nothing changed -----------------------------


def test_deactivating_a_user_ends_their_sessions_and_is_audited(db, actor, make_users):
    [user] = make_users(1)
    token, _ = session_of(db, user)
    assert asyncio.run(staff.deactivate_user(user.id, actor)) is True
    with pytest.raises(NotAuthenticated):
        sessions.authenticated_user_id(db, token)
    db.commit()
    assert asyncio.run(staff.reactivate_user(user.id, actor)) is True
    with pytest.raises(NotAuthenticated):  # the old token stays dead
        sessions.authenticated_user_id(db, token)
    db.commit()
    assert audit_log(db) == [
        (actor.staff_id, audit.DEACTIVATE_USER, "user", user.id, IP),
        (actor.staff_id, audit.REACTIVATE_USER, "user", user.id, IP),
    ]


def test_an_action_on_nothing_changes_nothing_and_is_not_audited(db, actor, make_users):
    [user] = make_users(1)
    _, session_pk = session_of(db, user)
    assert asyncio.run(staff.deactivate_user(999_999, actor)) is False
    assert asyncio.run(staff.revoke_session(999_999, actor)) is False
    assert asyncio.run(staff.revoke_session(session_pk, actor)) is True
    assert asyncio.run(staff.revoke_session(session_pk, actor)) is False  # already revoked
    assert audit_log(db) == [(actor.staff_id, audit.REVOKE_SESSION, "session", session_pk, IP)]


# --- what the console shows ------------------------------------------------------------------


def test_the_dashboard_counts_users_and_activations(db, actor, make_users):
    inviter, invited, _ = make_users(3)
    referrals.activate_invite(db, invited.id, inviter.invite_code)
    db.commit()
    numbers = asyncio.run(staff.dashboard())
    assert (numbers.users, numbers.activated) == (3, 1)
    assert numbers.signups[-1][1] == 3 and numbers.activations[-1][1] == 1
    assert [(i.user_id, i.invited_count) for i in numbers.top_inviters] == [(inviter.id, 1)]


def test_webhook_attempts_are_listed_newest_first(db, actor, make_users, monkeypatch):
    monkeypatch.setattr(settings, "webhook_url", "http://127.0.0.1:9/hooks")
    [user] = make_users(1)
    webhooks.record_event(db, webhooks.USER_CREATED, user.id, {"user_id": user.id}, utcnow())
    db.commit()
    policy = RetryPolicy.from_settings()
    for hours, status, ms in ((0, 503, 41), (1, 500, 12)):
        now = utcnow() + timedelta(hours=hours)
        [delivery] = webhooks.claim_due(db, now, policy)
        assert webhooks.record_attempt(db, delivery, Outcome(status, ms, f"HTTP {status}"), now, policy) == "pending"
    pk = delivery.pk
    db.commit()
    attempts = asyncio.run(staff.webhook_attempts(pk))
    assert [(a.attempt, a.status_code, a.duration_ms) for a in attempts] == [(2, 500, 12), (1, 503, 41)]
    assert asyncio.run(staff.webhook_attempts(pk + 1)) == []


# --- exports: audited before the first row, streamed without holding a connection -----------------


def test_an_export_is_audited_before_its_first_row_and_streams_every_row(db, actor, make_users):
    users = make_users(3)
    inviter = users[0]
    referrals.activate_invite(db, users[1].id, inviter.invite_code)
    db.commit()

    async def export(start) -> tuple[list[tuple], list[tuple], list[int]]:
        chunks = await start(actor)
        logged = await asyncio.to_thread(audit_log, db)  # the stream has not been read yet
        rows, held = [], []
        async for chunk in chunks:
            held.append(database.engine.pool.checkedout())  # while the caller handles a chunk
            rows.extend(chunk)
        return logged, rows, held

    logged, rows, held = asyncio.run(export(staff.export_users))
    assert logged == [(actor.staff_id, audit.EXPORT_USERS, audit.EXPORT_TARGET, 3, IP)]
    assert [row[1] for row in rows] == [phone(1), phone(2), phone(3)]
    assert len(rows[0]) == len(insights.USER_COLUMNS)
    assert held and set(held) == {0}

    logged, rows, _ = asyncio.run(export(staff.export_referrals))
    assert logged[-1] == (actor.staff_id, audit.EXPORT_REFERRALS, audit.EXPORT_TARGET, 1, IP)
    assert [(row[0], row[2]) for row in rows] == [(users[1].id, inviter.id)]


def test_an_export_stream_left_unfinished_releases_its_connection(db, actor, make_users):
    make_users(2)

    async def take_one() -> None:
        chunks = await staff.export_users(actor)
        async for _ in chunks:
            break
        await chunks.aclose()

    asyncio.run(take_one())
    assert database.engine.pool.checkedout() == 0
