"""Sessions: opaque random tokens, stored only as hashes, with expiry and revocation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Connection
from sqlmodel import Session, select

from referral_app.domain import audit
from referral_app.domain.clock import utcnow
from referral_app.domain.errors import NotAuthenticated
from referral_app.models import AuthSession, User
from referral_app.settings import settings

TOKEN_BYTES = 32  # 256 bits
# A browser must trade its claim for a cookie right after sign-in.
CLAIM_TTL = timedelta(seconds=60)
# Tokens we issue are 43 characters; anything much longer is not ours.
MAX_TOKEN_LENGTH = 128

_sessions, _users = AuthSession.__table__, User.__table__


def hash_token(token: str) -> str:
    """SHA-256 is enough for a 256-bit random token (nothing to brute-force)."""
    return hashlib.sha256(token.encode()).hexdigest()


_INSERT_SESSION = insert(_sessions)  # a plain INSERT: no ORM object is made


def _start_session(db: Session, user_id: int, now: datetime, **claim: Any) -> str:
    """Insert a session for ``user_id`` (with a claim's columns, if given) and commit; return its token."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = {
        "user_id": user_id,
        "token_hash": hash_token(token),
        "claim_hash": None,
        "claim_expires_at": None,
        "created_at": now,
        "expires_at": now + timedelta(days=settings.session_ttl_days),
        "revoked_at": None,
        **claim,
    }
    db.execute(_INSERT_SESSION, row)
    db.commit()
    return token


def create_session(db: Session, user_id: int, now: datetime | None = None) -> str:
    """Start a session for ``user_id``, commit, and return its token (shown once)."""
    return _start_session(db, user_id, now or utcnow())


def create_browser_claim(db: Session, user_id: int, now: datetime | None = None) -> str:
    """Start a session whose token is handed out only through :func:`claim_browser_session`.

    Returns a one-time claim, valid for a minute. The session's token is not known to
    anyone until the claim is traded, so the claim can pass through the page safely.
    """
    now = now or utcnow()
    claim = secrets.token_urlsafe(TOKEN_BYTES)
    _start_session(db, user_id, now, claim_hash=hash_token(claim), claim_expires_at=now + CLAIM_TTL)
    return claim


def claim_browser_session(db: Session, claim: Any, now: datetime | None = None) -> str:
    """Trade a claim for the session's token (once); raise ``NotAuthenticated`` otherwise."""
    if not _looks_like_token(claim):
        raise NotAuthenticated()
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    claimed = db.exec(
        update(AuthSession)
        .where(
            AuthSession.claim_hash == hash_token(claim),
            AuthSession.claim_expires_at > now,
            AuthSession.revoked_at.is_(None),
        )
        .values(token_hash=hash_token(token), claim_hash=None, claim_expires_at=None)
    )
    if claimed.rowcount != 1:
        db.rollback()
        raise NotAuthenticated()
    db.commit()
    return token


# Built once, on the tables rather than the ORM classes: this runs on every authenticated
# request, and both building a statement and the ORM's handling of it cost more CPU than
# the query itself (the compiled SQL is cached either way).
_LIVE_SESSION_USER = (
    select(_sessions.c.user_id)
    .join(_users, _sessions.c.user_id == _users.c.id)
    .where(
        _sessions.c.token_hash == bindparam("token_hash"),
        _sessions.c.claim_hash.is_(None),
        _sessions.c.revoked_at.is_(None),
        _sessions.c.expires_at > bindparam("now"),
        _users.c.is_active,
    )
)


def authenticated_user_id(db: Session | Connection, token: Any, now: datetime | None = None) -> int:
    """Return the id of the active user of a live session token; raise ``NotAuthenticated`` otherwise."""
    if not _looks_like_token(token):
        raise NotAuthenticated()
    params = {"token_hash": hash_token(token), "now": now or utcnow()}
    user_id = db.execute(_LIVE_SESSION_USER, params).scalar()
    if user_id is None:
        raise NotAuthenticated()
    return user_id


def revoke_session_by_id(
    db: Session, session_id: int, now: datetime | None = None, actor: audit.StaffActor | None = None
) -> bool:
    """End a session by its id (staff action). Returns whether a live session was ended.

    With ``actor``, an ended session goes into the audit log in the same transaction.
    """
    now = now or utcnow()
    result = db.exec(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    if actor is not None and result.rowcount == 1:
        audit.record(db, actor, audit.REVOKE_SESSION, "session", session_id, now)
    db.commit()
    return result.rowcount == 1


def revoke_session(db: Session, token: Any, now: datetime | None = None) -> bool:
    """End the session of ``token`` (logout). Returns whether a live session was ended."""
    if not _looks_like_token(token):
        return False
    result = db.exec(
        update(AuthSession)
        .where(AuthSession.token_hash == hash_token(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    db.commit()
    return result.rowcount == 1


def _looks_like_token(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TOKEN_LENGTH
