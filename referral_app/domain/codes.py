"""One-time confirmation codes: issued per phone, stored as a keyed hash, used once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlmodel import Session, select

from referral_app.domain.clock import utcnow
from referral_app.domain.errors import CodeRequired, InvalidCodeFormat, TooManyAttempts, WrongCode
from referral_app.domain.sql import insert
from referral_app.models import ConfirmationCode
from referral_app.settings import settings


@dataclass(frozen=True)
class IssuedCode:
    """A freshly issued code. ``code`` is the plain value: hand it to the SMS sender only.

    ``expires_at`` is provisional (``issued_at`` + lifetime) until :func:`start_lifetime`
    counts the lifetime from the gateway's acceptance (SPEC §3).
    """

    phone_number: str
    code: str
    expires_at: datetime
    ttl_seconds: int
    issued_at: datetime | None = None


def hash_code(phone_number: str, code: str) -> str:
    """Keyed hash of a code, bound to its phone so a hash is useless for any other number."""
    message = f"{phone_number}:{code}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


def generate_code(length: int | None = None) -> str:
    """A uniformly random number of ``length`` digits, never starting with 0.

    No leading zero, as in the original service: its clients send the code as a JSON
    number, and ``0731`` is not valid JSON.
    """
    length = length or settings.code_length
    lowest = 10 ** (length - 1)
    return str(lowest + secrets.randbelow(9 * lowest))


def normalize_code(raw: Any) -> str:
    """Strip spaces from what the user typed; raise a field error unless it is N digits."""
    if not isinstance(raw, str):
        raise InvalidCodeFormat(length=settings.code_length)
    code = "".join(raw.split())
    if not code:
        raise CodeRequired()
    if len(code) != settings.code_length or not code.isascii() or not code.isdigit():
        raise InvalidCodeFormat(length=settings.code_length)
    return code


def issue_code(db: Session, phone_number: str, now: datetime | None = None) -> IssuedCode:
    """Create a code for ``phone_number``, replacing any earlier one, and commit."""
    now = now or utcnow()
    code = generate_code()
    expires_at = now + timedelta(seconds=settings.code_ttl_seconds)
    values = {
        "phone_number": phone_number,
        "code_hash": hash_code(phone_number, code),
        "attempts": 0,
        "created_at": now,
        "expires_at": expires_at,
    }
    statement = insert(db, ConfirmationCode).values(**values)
    statement = statement.on_conflict_do_update(
        index_elements=[ConfirmationCode.phone_number],
        set_={key: statement.excluded[key] for key in values if key != "phone_number"},
    )
    db.exec(statement)
    db.commit()
    return IssuedCode(phone_number, code, expires_at, settings.code_ttl_seconds, now)


def start_lifetime(db: Session, issued: IssuedCode, accepted_at: datetime) -> IssuedCode | None:
    """Count the code's lifetime from ``accepted_at``, when the SMS gateway accepted it; commit.

    SPEC §3: valid ``CODE_TTL_SECONDS`` from the gateway's acceptance, so the ``expires_in``
    given with it is exact. Returns the code with its final expiry, or ``None`` when the
    code is no longer there (a newer request for the phone replaced it, or it was used).
    """
    expires_at = accepted_at + timedelta(seconds=issued.ttl_seconds)
    moved = db.execute(
        update(_codes)
        .where(_codes.c.phone_number == issued.phone_number, _codes.c.code_hash == _hash_of(issued))
        .values(expires_at=expires_at)
    ).rowcount
    db.commit()
    return replace(issued, expires_at=expires_at) if moved == 1 else None


def withdraw_code(db: Session, issued: IssuedCode) -> bool:
    """Delete ``issued`` (its SMS was not sent), unless a newer code replaced it; commit.

    Returns whether it was still there.
    """
    deleted = db.execute(
        delete(_codes).where(_codes.c.phone_number == issued.phone_number, _codes.c.code_hash == _hash_of(issued))
    ).rowcount
    db.commit()
    return deleted == 1


def _hash_of(issued: IssuedCode) -> str:
    return hash_code(issued.phone_number, issued.code)


# Built once, on the table: they run on every sign-in (see ``sessions``).
_codes = ConfirmationCode.__table__
_TAKE_ATTEMPT = (
    update(_codes)
    .where(
        _codes.c.phone_number == bindparam("phone"),
        _codes.c.expires_at > bindparam("now"),
        _codes.c.attempts < bindparam("max_attempts"),
    )
    .values(attempts=_codes.c.attempts + 1)
    .returning(_codes.c.id, _codes.c.code_hash, _codes.c.attempts)
)
_DELETE_CODE = delete(_codes).where(_codes.c.id == bindparam("code_id"))


def consume_code(db: Session, phone_number: str, code: str, now: datetime | None = None) -> None:
    """Check ``code`` for ``phone_number`` and use it up.

    Every check first takes one of the code's attempts in a single UPDATE, so even
    simultaneous guesses get at most ``CODE_MAX_ATTEMPTS`` tries. The attempt count is
    committed whatever the outcome; on success the code's deletion is left in the open
    transaction for the caller to commit with what the sign-in creates.
    """
    now = now or utcnow()
    max_attempts = settings.code_max_attempts
    params = {"phone": phone_number, "now": now, "max_attempts": max_attempts}
    taken = db.execute(_TAKE_ATTEMPT, params).first()
    if taken is None:
        db.rollback()
        if _is_exhausted(db, phone_number, now):
            raise TooManyAttempts()
        raise WrongCode()
    code_id, code_hash, attempts = taken
    if not hmac.compare_digest(code_hash, hash_code(phone_number, code)):
        db.commit()
        if attempts >= max_attempts:
            raise TooManyAttempts()
        raise WrongCode()
    deleted = db.execute(_DELETE_CODE, {"code_id": code_id})
    if deleted.rowcount != 1:  # a simultaneous request used it first
        db.rollback()
        raise WrongCode()


def _is_exhausted(db: Session, phone_number: str, now: datetime) -> bool:
    row = db.exec(
        select(ConfirmationCode.id).where(
            ConfirmationCode.phone_number == phone_number,
            ConfirmationCode.expires_at > now,
            ConfirmationCode.attempts >= settings.code_max_attempts,
        )
    ).first()
    db.rollback()
    return row is not None
