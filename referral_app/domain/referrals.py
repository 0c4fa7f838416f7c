"""Activating someone's invite code, and the referral list with its keyset cursor."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text, tuple_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, select

from referral_app.domain.clock import utcnow
from referral_app.domain.errors import (
    AlreadyActivated,
    InvalidCursor,
    InvalidLimit,
    InviteLoop,
    NotAuthenticated,
    OwnInviteCode,
    UnknownInviteCode,
)
from referral_app.domain.invites import normalize_invite_code
from referral_app.domain.locks import lock
from referral_app.models import User

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100

# Is :me an ancestor of :owner (walking invited_by links up from the owner)?
_ANCESTOR_SQL = text(
    """
    WITH RECURSIVE chain(id) AS (
        SELECT invited_by_id FROM users WHERE id = :owner
        UNION ALL
        SELECT u.invited_by_id FROM users u JOIN chain c ON u.id = c.id
    )
    SELECT 1 FROM chain WHERE id = :me LIMIT 1
    """
)


@dataclass(frozen=True)
class Referral:
    phone_number: str
    activated_at: datetime


@dataclass(frozen=True)
class ReferralPage:
    items: list[Referral]
    next_cursor: str | None


@dataclass(frozen=True)
class Profile:
    """What a user sees of themselves. ``invited_count`` is kept on the row, never counted."""

    phone_number: str
    invite_code: str
    activated_invite_code: str | None
    invited_by: str | None
    activated_at: datetime | None
    invited_count: int


_inviter = aliased(User)
# Built once (see ``sessions``): the profile and its first page are the hottest reads.
_PROFILE = (
    select(
        User.phone_number,
        User.invite_code,
        _inviter.invite_code,
        _inviter.phone_number,
        User.activated_at,
        User.invited_count,
    )
    .outerjoin(_inviter, _inviter.id == User.invited_by_id)
    .where(User.id == bindparam("user_id"))
)
_REFERRALS = (
    select(User.phone_number, User.activated_at, User.id)
    .where(User.invited_by_id == bindparam("user_id"))
    .order_by(User.activated_at.desc(), User.id.desc())
    .limit(bindparam("rows"))
)
_REFERRALS_AFTER = _REFERRALS.where(
    tuple_(User.activated_at, User.id)
    < tuple_(bindparam("after_time", type_=User.activated_at.type), bindparam("after_id", type_=User.id.type))
)


def get_profile(db: Session, user_id: int) -> Profile:
    """The user's profile, read fresh from the database (one query)."""
    row = db.exec(_PROFILE, params={"user_id": user_id}).first()
    if row is None:
        raise NotAuthenticated()
    return Profile(*row)


def activate_invite(db: Session, user_id: int, raw_code: Any, now: datetime | None = None) -> User:
    """Record that ``user_id`` entered ``raw_code``; return the code's owner.

    Once per user (a conditional UPDATE decides, so simultaneous requests give one
    success), never one's own code, and never a code that would close a loop.
    """
    code = normalize_invite_code(raw_code)
    now = now or utcnow()
    # Two activations that each close half of a loop would both pass the loop check
    # under READ COMMITTED; serialising activations rules that out.
    lock(db, "activation")
    try:
        me = db.get(User, user_id, populate_existing=True)
        if me is None:
            raise NotAuthenticated()
        if me.invited_by_id is not None:
            raise AlreadyActivated()
        owner = db.exec(select(User).where(User.invite_code == code)).first()
        if owner is None:
            raise UnknownInviteCode()
        if owner.id == me.id:
            raise OwnInviteCode()
        if db.exec(_ANCESTOR_SQL, params={"owner": owner.id, "me": me.id}).first() is not None:
            raise InviteLoop()
        activated = db.exec(
            update(User)
            .where(User.id == me.id, User.invited_by_id.is_(None))
            .values(invited_by_id=owner.id, activated_at=now)
        )
        if activated.rowcount != 1:
            raise AlreadyActivated()
        db.exec(update(User).where(User.id == owner.id).values(invited_count=User.invited_count + 1))
        db.commit()
    except BaseException:
        db.rollback()
        raise
    logger.info("invite activated", extra={"event": "invite_activated", "user_id": user_id, "inviter_id": owner.id})
    return owner


def list_referrals(db: Session, user_id: int, cursor: Any = None, limit: Any = 20) -> ReferralPage:
    """One page of the users who entered ``user_id``'s code, newest first.

    Keyset pagination on (activated_at, id): the cost of a page does not depend on
    how deep it is or how many referrals there are.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidLimit(max=MAX_PAGE_SIZE)
    params = {"user_id": user_id, "rows": limit + 1}
    query = _REFERRALS
    if cursor is not None:
        params["after_time"], params["after_id"] = decode_cursor(cursor)
        query = _REFERRALS_AFTER
    rows = db.exec(query, params=params).all()
    items = [Referral(phone, activated_at) for phone, activated_at, _ in rows[:limit]]
    next_cursor = encode_cursor(rows[limit - 1][1], rows[limit - 1][2]) if len(rows) > limit else None
    return ReferralPage(items, next_cursor)


def encode_cursor(activated_at: datetime, user_id: int) -> str:
    """An opaque cursor for the position after (activated_at, user_id)."""
    raw = f"{activated_at.astimezone(UTC).isoformat()}|{user_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: Any) -> tuple[datetime, int]:
    """Parse a cursor made by :func:`encode_cursor`; anything else is a field error."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= 64:
        raise InvalidCursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        time_part, id_part = raw.split("|")
        activated_at, user_id = datetime.fromisoformat(time_part), int(id_part)
        if activated_at.utcoffset() is None or not 0 < user_id < 2**31:
            raise InvalidCursor()
        # An offset can push a date at either end of the calendar out of range.
        return activated_at.astimezone(UTC), user_id
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise InvalidCursor() from exc
