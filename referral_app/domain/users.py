"""Users: created by their first sign-in, each with a unique invite code."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update
from sqlmodel import Session, select

from referral_app.domain import audit, events, webhooks
from referral_app.domain.clock import utcnow
from referral_app.domain.invites import generate_invite_code
from referral_app.domain.sql import insert
from referral_app.models import AuthSession, User

# 32**6 ≈ 10**9 codes: ten collisions in a row would mean something is broken.
MAX_INVITE_CODE_TRIES = 10


_USER_BY_PHONE = select(User).where(User.phone_number == bindparam("phone"))


def get_or_create_user(db: Session, phone_number: str, now: datetime | None = None) -> User:
    """Return the user of ``phone_number``, creating it (not committed) on first sign-in.

    Unique constraints decide races: the INSERT does nothing on a taken phone or invite
    code (no error, so the caller's transaction goes on); a phone created by a
    simultaneous sign-in is then read back, a taken invite code retried with a new one.
    A new user's ``user.created`` webhook event joins the same transaction.
    """
    user = db.exec(_USER_BY_PHONE, params={"phone": phone_number}).first()
    if user is not None:
        return user
    now = now or utcnow()
    for _ in range(MAX_INVITE_CODE_TRIES):
        values = {"phone_number": phone_number, "invite_code": generate_invite_code(), "created_at": now}
        created = db.scalars(insert(db, User).values(**values).on_conflict_do_nothing().returning(User)).first()
        if created is not None:
            webhooks.user_created(db, created.id, created.phone_number, created.invite_code, now)
            events.record(db, events.UserCreated(created.id))
            return created
        existing = db.exec(_USER_BY_PHONE, params={"phone": phone_number}).first()
        if existing is not None:
            return existing
    raise RuntimeError("could not find a free invite code")


def set_user_active(
    db: Session, user_id: int, active: bool, now: datetime | None = None, actor: audit.StaffActor | None = None
) -> bool:
    """Activate or deactivate a user (staff action); False for an unknown user.

    Deactivating also revokes every session, so reactivating later does not bring back a
    token that may have been the reason for the deactivation. With ``actor``, the action
    goes into the audit log in the same transaction.
    """
    now = now or utcnow()
    result = db.exec(update(User).where(User.id == user_id).values(is_active=active))
    if not active:
        db.exec(
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    if actor is not None and result.rowcount == 1:
        action = audit.REACTIVATE_USER if active else audit.DEACTIVATE_USER
        audit.record(db, actor, action, "user", user_id, now)
    db.commit()
    return result.rowcount == 1


def set_language(db: Session, user_id: int, language: str) -> None:
    """Remember the language ``user_id`` chose (a catalogue's name, checked by the caller); commit."""
    db.exec(update(User).where(User.id == user_id).values(language=language))
    db.commit()


def language_of(db: Session, user_id: int) -> str | None:
    """The language ``user_id`` chose, if any."""
    language = db.exec(select(User.language).where(User.id == user_id)).first()
    db.rollback()
    return language
