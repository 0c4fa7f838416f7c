"""Activating someone's invite code, and the referral list with its keyset cursor."""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text, tuple_, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from referral_app.domain import events, webhooks
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

# The root of a user's referral tree: walk invited_by links up from the user.
# UNION, not UNION ALL: it would stop even on a loop, which the rules never let exist.
_TREE_ROOT = text(
    """
    WITH RECURSIVE chain(id, parent) AS (
        SELECT id, invited_by_id FROM users WHERE id = :user_id
        UNION
        SELECT u.id, u.invited_by_id FROM users u JOIN chain c ON u.id = c.parent
    )
    SELECT id FROM chain WHERE parent IS NULL
    """
)
# An activation that finds a root gone (attached meanwhile) starts over; this many times.
MAX_ACTIVATION_TRIES = 10


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


# Built once, on the table (see ``sessions``): the profile and its first page are the
# hottest reads.
_users = User.__table__
_inviter = _users.alias("inviter")
_PROFILE = (
    select(
        _users.c.phone_number,
        _users.c.invite_code,
        _inviter.c.invite_code.label("activated_invite_code"),
        _inviter.c.phone_number.label("invited_by"),
        _users.c.activated_at,
        _users.c.invited_count,
    )
    .select_from(_users.outerjoin(_inviter, _inviter.c.id == _users.c.invited_by_id))
    .where(_users.c.id == bindparam("user_id"))
)
_REFERRALS = (
    select(_users.c.phone_number, _users.c.activated_at, _users.c.id)
    .where(_users.c.invited_by_id == bindparam("user_id"))
    .order_by(_users.c.activated_at.desc(), _users.c.id.desc())
    .limit(bindparam("rows"))
)
_REFERRALS_AFTER = _REFERRALS.where(
    tuple_(_users.c.activated_at, _users.c.id)
    < tuple_(bindparam("after_time", type_=_users.c.activated_at.type), bindparam("after_id", type_=_users.c.id.type))
)


def get_profile(db: Session | Connection, user_id: int) -> Profile:
    """The user's profile, read fresh from the database (one query)."""
    row = db.execute(_PROFILE, {"user_id": user_id}).first()
    if row is None:
        raise NotAuthenticated()
    return Profile(**row._mapping)


@dataclass(frozen=True)
class Inviter:
    """The owner of an invite code that was just entered."""

    id: int
    phone_number: str
    invite_code: str


_ME = select(_users.c.id, _users.c.phone_number, _users.c.invited_by_id).where(_users.c.id == bindparam("user_id"))
_CODE_OWNER = select(_users.c.id, _users.c.phone_number, _users.c.invite_code).where(
    _users.c.invite_code == bindparam("code")
)
_IS_ROOT = select(_users.c.id).where(_users.c.id == bindparam("user_id"), _users.c.invited_by_id.is_(None))
_LINK = (
    update(_users)
    .where(_users.c.id == bindparam("user_id"), _users.c.invited_by_id.is_(None))
    .values(invited_by_id=bindparam("owner_id"), activated_at=bindparam("now"))
)
_COUNT_REFERRAL = (
    update(_users).where(_users.c.id == bindparam("owner_id")).values(invited_count=_users.c.invited_count + 1)
)


def activate_invite(db: Session, user_id: int, raw_code: Any, now: datetime | None = None) -> Inviter:
    """Record that ``user_id`` entered ``raw_code``; return the code's owner.

    Once per user (a conditional UPDATE decides, so simultaneous requests give one
    success), never one's own code, and never a code that would close a loop.

    The ``referral.activated`` webhook event is written in the same transaction, so it is
    sent exactly when the activation commits.

    Loops: the user has not activated yet, so they are the root of their referral tree,
    and entering the code closes a loop exactly when the code's owner is in that tree,
    i.e. when the owner's root is the user. Under READ COMMITTED two activations could
    each pass that check and close a loop together, so each one holds the locks of both
    trees it joins (the user's and the owner's root) until it commits. A tree changes only
    under its root's lock, so activations in unrelated trees never wait for each other.
    """
    code = normalize_invite_code(raw_code)
    now = now or utcnow()
    try:
        for _ in range(MAX_ACTIVATION_TRIES):
            owner = _try_activate(db, user_id, code, now)
            if owner is not None:
                db.commit()
                break
            db.rollback()  # the owner's root was attached meanwhile: look again
        else:
            raise RuntimeError("the referral tree kept changing")
    except BaseException:
        db.rollback()
        raise
    logger.info("invite activated", extra={"event": "invite_activated", "user_id": user_id, "inviter_id": owner.id})
    return owner


def _try_activate(db: Session, user_id: int, code: str, now: datetime) -> Inviter | None:
    """One attempt of :func:`activate_invite`, left uncommitted; None if it must start over."""
    me = db.execute(_ME, {"user_id": user_id}).first()
    if me is None:
        raise NotAuthenticated()
    if me.invited_by_id is not None:
        raise AlreadyActivated()
    found = db.execute(_CODE_OWNER, {"code": code}).first()
    if found is None:
        raise UnknownInviteCode()
    owner = Inviter(**found._mapping)
    if owner.id == user_id:
        raise OwnInviteCode()
    root = db.execute(_TREE_ROOT, {"user_id": owner.id}).scalar_one()
    if root == user_id:  # final without a lock: only this user's own activation could change it
        raise InviteLoop()
    for tree in sorted((user_id, root)):  # always in the same order: no deadlock
        lock(db, f"referral-tree:{tree}")
    if db.execute(_IS_ROOT, {"user_id": root}).first() is None:
        return None
    linked = db.execute(_LINK, {"user_id": user_id, "owner_id": owner.id, "now": now})
    if linked.rowcount != 1:
        raise AlreadyActivated()
    db.execute(_COUNT_REFERRAL, {"owner_id": owner.id})
    webhooks.referral_activated(db, user_id, me.phone_number, owner.id, owner.phone_number, owner.invite_code, now)
    events.record(db, events.InviteActivated(user_id=user_id, inviter_id=owner.id))
    return owner


def list_referrals(db: Session | Connection, user_id: int, cursor: Any = None, limit: Any = 20) -> ReferralPage:
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
    rows = db.execute(query, params).all()
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


_OWNER_PHONE = select(_users.c.phone_number).where(_users.c.invite_code == bindparam("code"))


def code_owner_phone(db: Session, code: str) -> str | None:
    """The E.164 number of the owner of an already normalised invite ``code``; None if nobody has it.

    For the sign-in page of ``/?ref=CODE``, which anyone may open: one lookup on the
    code's unique index. Callers show the number masked (``phones.mask_phone``) only.
    """
    phone = db.execute(_OWNER_PHONE, {"code": code}).scalar_one_or_none()
    db.rollback()
    return phone
