"""Staff accounts for the admin: bcrypt passwords and a lockout after failed logins."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from functools import cache
from datetime import datetime, timedelta

import bcrypt
from sqlalchemy.exc import IntegrityError
from sqlalchemy import update
from sqlmodel import Session, col, select

from referral_app.domain.clients import client_key
from referral_app.domain.clock import utcnow
from referral_app.domain.errors import InvalidCredentials, InvalidInput, StaffLockedOut
from referral_app.domain.locks import lock
from referral_app.models import StaffAccount, StaffLoginFailure, StaffSession
from referral_app.settings import settings

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
LOCKOUT = timedelta(minutes=15)
USERNAME = re.compile(r"[A-Za-z0-9_.@-]{3,64}")
MIN_PASSWORD_LENGTH = 10
# bcrypt reads at most 72 bytes; refuse longer rather than silently ignore the rest.
MAX_PASSWORD_BYTES = 72


class InvalidUsername(InvalidInput):
    code, field = "staff.username", "username"


class WeakPassword(InvalidInput):
    code, field = "staff.password", "password"


class UsernameTaken(InvalidInput):
    code, field = "staff.username_taken", "username"


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=settings.bcrypt_rounds)).decode()


@cache
def _dummy_hash(rounds: int) -> str:
    """Checked against when the username is unknown, so that both answers take as long."""
    return bcrypt.hashpw(b"no such staff account", bcrypt.gensalt(rounds=rounds)).decode()


def create_staff(db: Session, username: str, password: str, now: datetime | None = None) -> StaffAccount:
    """Create an active staff account; commit."""
    if not USERNAME.fullmatch(username or ""):
        raise InvalidUsername()
    if len(password) < MIN_PASSWORD_LENGTH or len(password.encode()) > MAX_PASSWORD_BYTES:
        raise WeakPassword(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_BYTES)
    account = StaffAccount(username=username, password_hash=hash_password(password), created_at=now or utcnow())
    db.add(account)
    try:
        db.commit()
    except IntegrityError as error:
        db.rollback()
        raise UsernameTaken() from error
    return account


def authenticate_staff(
    db: Session, username: str, password: str, client_ip: str, now: datetime | None = None
) -> StaffAccount:
    """Check a staff login.

    Raises ``StaffLockedOut`` after ``MAX_FAILURES`` failures for the username or the IP in
    ``FAILURE_WINDOW``, and ``InvalidCredentials`` for an unknown user, a wrong password or
    an inactive account alike (the same bcrypt work is done in each case).
    """
    now = now or utcnow()
    username = (username or "")[:64]
    client_ip = client_key(client_ip)  # an IPv6 client is its /64 (domain/clients.py)
    lock(db, f"staff-login:{username}")
    retry_after = max(_lockout_left(db, StaffLoginFailure.username == username, now),
                      _lockout_left(db, StaffLoginFailure.client_ip == client_ip, now))
    if retry_after > 0:
        db.rollback()
        raise StaffLockedOut(retry_after)
    account = db.exec(select(StaffAccount).where(StaffAccount.username == username)).first()
    stored = account.password_hash if account else _dummy_hash(settings.bcrypt_rounds)
    matches = bcrypt.checkpw((password or "").encode()[:MAX_PASSWORD_BYTES], stored.encode())
    if account is None or not matches or not account.is_active:
        db.add(StaffLoginFailure(username=username, client_ip=client_ip, failed_at=now))
        db.commit()
        raise InvalidCredentials()
    account.last_login_at = now
    db.add(account)
    db.commit()
    return account


def _lockout_left(db: Session, condition, now: datetime) -> int:
    """Seconds of lockout left for the failures matching ``condition`` (0: not locked).

    A failure that makes ``MAX_FAILURES`` within ``FAILURE_WINDOW`` locks for ``LOCKOUT``
    from that failure, however early the first of them was. (No failure is recorded while
    locked, so only the last ``LOCKOUT + FAILURE_WINDOW`` matter, and few rows at that.)
    """
    recent = db.exec(
        select(StaffLoginFailure.failed_at)
        .where(condition, StaffLoginFailure.failed_at > now - LOCKOUT - FAILURE_WINDOW)
        .order_by(col(StaffLoginFailure.failed_at).desc())
        .limit(100)
    ).all()
    # Newest first: the first run of MAX_FAILURES within the window ends the latest lockout.
    for newest, oldest in zip(recent, recent[MAX_FAILURES - 1 :]):
        if newest - oldest < FAILURE_WINDOW:
            return max(0, math.ceil((newest + LOCKOUT - now).total_seconds()))
    return 0


def get_active_staff(db: Session, staff_id: int) -> StaffAccount | None:
    """The account of an admin session, if it still exists and is active."""
    account = db.get(StaffAccount, staff_id)
    return account if account is not None and account.is_active else None


# --- Staff sessions: kept on the server, ended by logout and by deactivation ---

STAFF_SESSION_TTL = timedelta(hours=8)
SESSION_ID_BYTES = 32  # 256 bits
MAX_SESSION_ID_LENGTH = 128


@dataclass(frozen=True)
class StaffIdentity:
    """Who a signed-in admin request comes from (plain values, no ORM object)."""

    id: int
    username: str


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_staff_session(db: Session, staff_id: int, now: datetime | None = None) -> str:
    """Start an admin session for ``staff_id`` (after :func:`authenticate_staff`); commit.

    Returns the session id for the cookie, at least 256 random bits; only its SHA-256 is
    stored. It lives ``STAFF_SESSION_TTL`` (8 hours) unless ended sooner.
    """
    now = now or utcnow()
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    db.add(StaffSession(staff_id=staff_id, session_hash=_session_hash(session_id), created_at=now,
                        expires_at=now + STAFF_SESSION_TTL))
    db.commit()
    return session_id


def staff_of_session(db: Session, session_id: object, now: datetime | None = None) -> StaffIdentity | None:
    """The active staff account of a live session id (not expired, not ended); else None."""
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID_LENGTH:
        return None
    row = db.exec(
        select(StaffAccount.id, StaffAccount.username)
        .join(StaffSession, col(StaffSession.staff_id) == col(StaffAccount.id))
        .where(
            StaffSession.session_hash == _session_hash(session_id),
            col(StaffSession.revoked_at).is_(None),
            StaffSession.expires_at > (now or utcnow()),
            col(StaffAccount.is_active).is_(True),
        )
    ).first()
    db.rollback()  # a read: end the transaction (on SQLite it holds the write lock)
    return StaffIdentity(id=row[0], username=row[1]) if row else None


def end_staff_session(db: Session, session_id: object, now: datetime | None = None) -> bool:
    """End one admin session (logout); commit. Whether a live session was ended."""
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID_LENGTH:
        return False
    result = db.exec(
        update(StaffSession)
        .where(StaffSession.session_hash == _session_hash(session_id), col(StaffSession.revoked_at).is_(None))
        .values(revoked_at=now or utcnow())
    )
    db.commit()
    return result.rowcount == 1


class UnknownStaff(InvalidInput):
    code, field = "staff.unknown", "username"


def set_staff_active(db: Session, username: str, active: bool, now: datetime | None = None) -> StaffAccount:
    """Deactivate (or reactivate) a staff account; deactivation ends all its sessions. Commit."""
    account = db.exec(select(StaffAccount).where(StaffAccount.username == username)).first()
    if account is None:
        db.rollback()
        raise UnknownStaff()
    account.is_active = active
    db.add(account)
    if not active:
        db.exec(
            update(StaffSession)
            .where(StaffSession.staff_id == account.id, col(StaffSession.revoked_at).is_(None))
            .values(revoked_at=now or utcnow())
        )
    db.commit()
    return account
