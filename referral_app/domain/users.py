"""Users: created by their first sign-in, each with a unique invite code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from referral_app.domain.clock import utcnow
from referral_app.domain.invites import generate_invite_code
from referral_app.models import AuthSession, User

# 32**6 ≈ 10**9 codes: ten collisions in a row would mean something is broken.
MAX_INVITE_CODE_TRIES = 10


def get_or_create_user(db: Session, phone_number: str, now: datetime | None = None) -> User:
    """Return the user of ``phone_number``, creating it (not committed) on first sign-in.

    Unique constraints decide races: a taken invite code retries with a new one, and a
    phone created by a simultaneous sign-in is read back instead of failing.
    """
    user = db.exec(select(User).where(User.phone_number == phone_number)).first()
    if user is not None:
        return user
    for _ in range(MAX_INVITE_CODE_TRIES):
        candidate = User(phone_number=phone_number, invite_code=generate_invite_code(), created_at=now or utcnow())
        try:
            with db.begin_nested():
                db.add(candidate)
        except IntegrityError:
            existing = db.exec(select(User).where(User.phone_number == phone_number)).first()
            if existing is not None:
                return existing
            continue
        return candidate
    raise RuntimeError("could not find a free invite code")


def set_user_active(db: Session, user_id: int, active: bool, now: datetime | None = None) -> bool:
    """Activate or deactivate a user (staff action).

    Deactivating also revokes every session, so reactivating later does not bring back a
    token that may have been the reason for the deactivation.
    """
    result = db.exec(update(User).where(User.id == user_id).values(is_active=active))
    if not active:
        db.exec(
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now or utcnow())
        )
    db.commit()
    return result.rowcount == 1
