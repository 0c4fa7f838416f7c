"""Expired data is removed: codes, ended sessions and old send-log rows."""

from __future__ import annotations

from datetime import timedelta

from referral_app.domain import auth, maintenance, sessions
from referral_app.domain.clock import utcnow
from referral_app.settings import settings
from tests.domain.helpers import TEST_IP, rows_of


def test_purge_removes_only_what_has_ended(db):
    now = utcnow()
    old = now - timedelta(days=2)
    auth.request_code(db, "+79120000001", TEST_IP, now=old)  # expired code, old send
    live_code = auth.request_code(db, "+79120000002", TEST_IP, now=now)
    user = auth.sign_in(db, "+79120000002", live_code.code, now=now)
    live = sessions.create_session(db, user.id, now=now)
    revoked = sessions.create_session(db, user.id, now=now)
    sessions.revoke_session(db, revoked, now=now)
    sessions.create_session(db, user.id, now=now - timedelta(days=settings.session_ttl_days + 1))  # expired
    sessions.create_browser_claim(db, user.id, now=old)  # never claimed
    auth.request_code(db, "+79120000003", TEST_IP, now=now)  # live code, recent send

    purged = maintenance.purge_expired(db, now=now)

    assert (purged.codes, purged.sessions, purged.sends) == (1, 3, 1)
    assert [row["phone_number"] for row in rows_of(db, "confirmation_codes")] == ["+79120000003"]
    assert len(rows_of(db, "code_sends")) == 2
    assert sessions.authenticated_user_id(db, live, now=now) == user.id
    assert len(rows_of(db, "auth_sessions")) == 1


def test_purge_of_an_empty_database_is_harmless(db):
    assert maintenance.purge_expired(db) == maintenance.Purged(0, 0, 0)
