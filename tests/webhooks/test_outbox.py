"""Events are written to the outbox in the transaction of the change that caused them:
never for a change that rolled back, never missing for one that committed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import event, text

from referral_app.domain import referrals
from referral_app.domain.errors import AlreadyActivated, OwnInviteCode, UnknownInviteCode
from tests.domain.helpers import T0, phone, snapshot
from tests.webhooks.conftest import event_rows


def payload(row: dict) -> dict:
    return json.loads(row["payload"])


def test_a_first_sign_in_writes_user_created(db, webhooks_on, sign_up):
    user = sign_up(phone(1), now=T0)
    [row] = event_rows(db)
    assert row["event_type"] == "user.created" and row["user_id"] == user.id and row["inviter_id"] is None
    assert row["status"] == "pending" and row["attempts"] == 0
    assert row["event_id"].startswith("msg_") and len(row["event_id"]) == 36
    assert payload(row) == {
        "type": "user.created",
        "id": row["event_id"],
        "timestamp": "2030-01-01T12:00:00Z",
        "data": {"user_id": user.id, "phone_number": phone(1), "invite_code": user.invite_code,
                 "created_at": "2030-01-01T12:00:00Z"},
    }
    # Retries for at least 24 hours (the default window).
    assert (row["created_at"], row["retry_until"]) == (T0, T0 + timedelta(hours=24))
    # Signing in again creates nobody, so no event.
    sign_up(phone(1), now=T0 + timedelta(minutes=1))
    assert len(event_rows(db)) == 1


def test_an_activation_writes_referral_activated(db, webhooks_on, make_users):
    alice, bob = make_users(2, now=T0)
    referrals.activate_invite(db, bob.id, alice.invite_code.lower(), now=T0 + timedelta(hours=1))
    rows = event_rows(db)
    assert [r["event_type"] for r in rows] == ["user.created", "user.created", "referral.activated"]
    activation = rows[-1]
    assert (activation["user_id"], activation["inviter_id"]) == (bob.id, alice.id)
    assert payload(activation)["data"] == {
        "user_id": bob.id, "phone_number": bob.phone_number, "invite_code": alice.invite_code,
        "inviter_id": alice.id, "inviter_phone_number": alice.phone_number, "activated_at": "2030-01-01T13:00:00Z",
    }
    assert len({r["event_id"] for r in rows}) == 3


@pytest.mark.parametrize("case", ["own code", "unknown code", "second activation"])
def test_a_refused_activation_writes_no_event(db, webhooks_on, make_users, case):
    alice, bob, carol = make_users(3, now=T0)
    if case == "second activation":
        referrals.activate_invite(db, bob.id, alice.invite_code, now=T0)
    before = event_rows(db)
    error, code = {
        "own code": (OwnInviteCode, bob.invite_code),
        "unknown code": (UnknownInviteCode, "ZZZZZZ"),
        "second activation": (AlreadyActivated, carol.invite_code),
    }[case]
    with pytest.raises(error):
        referrals.activate_invite(db, bob.id, code, now=T0)
    assert event_rows(db) == before


def test_an_activation_whose_commit_fails_leaves_no_event(db, webhooks_on, make_users):
    """The event and the activation are one transaction: if the commit fails, neither stays."""
    alice, bob = make_users(2, now=T0)
    before = snapshot(db), event_rows(db)

    def database_gone(session):
        raise RuntimeError("the database went away at COMMIT")

    event.listen(db, "before_commit", database_gone)
    try:
        with pytest.raises(RuntimeError):
            referrals.activate_invite(db, bob.id, alice.invite_code, now=T0)
    finally:
        event.remove(db, "before_commit", database_gone)
    db.rollback()
    assert (snapshot(db), event_rows(db)) == before
    assert db.info.get("webhook_events_written") is None  # nobody will be woken for it


def test_with_webhooks_off_nothing_is_written(db, make_users):
    alice, bob = make_users(2, now=T0)
    referrals.activate_invite(db, bob.id, alice.invite_code, now=T0)
    assert event_rows(db) == []
    assert db.exec(text("SELECT count(*) FROM users WHERE invited_by_id IS NOT NULL")).one()[0] == 1
    db.rollback()
