"""Removing what has expired, so tables do not grow without bound."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session

from referral_app.domain import webhooks
from referral_app.domain.clock import utcnow
from referral_app.models import AuthSession, CodeSend, ConfirmationCode, StaffSession

# The longest send-limit window; older log rows can no longer count against anyone.
SEND_LOG_KEPT = timedelta(days=1)


@dataclass(frozen=True)
class Purged:
    codes: int
    sessions: int
    sends: int
    staff_sessions: int = 0
    webhook_events: int = 0


def purge_expired(db: Session, now: datetime | None = None) -> Purged:
    """Delete expired codes, ended sessions (expired, revoked, or never claimed), old send logs
    ended staff sessions, and webhook events delivered more than ``WEBHOOK_RETENTION_DAYS`` ago."""
    now = now or utcnow()
    codes = db.exec(delete(ConfirmationCode).where(ConfirmationCode.expires_at <= now)).rowcount
    sessions = db.exec(
        delete(AuthSession).where(
            or_(
                AuthSession.expires_at <= now,
                AuthSession.revoked_at.is_not(None),
                AuthSession.claim_expires_at <= now,
            )
        )
    ).rowcount
    sends = db.exec(delete(CodeSend).where(CodeSend.sent_at <= now - SEND_LOG_KEPT)).rowcount
    staff_sessions = db.exec(
        delete(StaffSession).where(or_(StaffSession.expires_at <= now, StaffSession.revoked_at.is_not(None)))
    ).rowcount
    delivered = webhooks.purge_delivered(db, now)
    db.commit()
    return Purged(codes, sessions, sends, staff_sessions, delivered)
