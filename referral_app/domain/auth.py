"""Sign-in with a phone number and a one-time code."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from referral_app.domain import codes, events, limits, phones, users
from referral_app.domain.clock import utcnow
from referral_app.domain.codes import IssuedCode
from referral_app.domain.errors import AccountDisabled, Unavailable
from referral_app.domain.sms import SmsSender
from referral_app.i18n import translate_plural
from referral_app.models import User
from referral_app.settings import settings

logger = logging.getLogger(__name__)


def request_code(db: Session, raw_phone: Any, client_ip: str, now: datetime | None = None) -> IssuedCode:
    """Issue a code for the phone, within the send limits; commit.

    Raises a field error for a malformed phone and ``RateLimited`` over a limit. The
    answer is the same whether or not the phone has an account. Deliver the returned
    code with :func:`send_code`.
    """
    phone_number = phones.normalize_phone(raw_phone)
    now = now or utcnow()
    limits.reserve_send(db, phone_number, client_ip, now)
    return codes.issue_code(db, phone_number, now)


async def send_code(
    issued: IssuedCode, sender: SmsSender, language: str | None = None, timeout_seconds: float | None = None
) -> datetime:
    """Hand the code to the SMS sender within a deadline; return when the gateway accepted it.

    Awaits the gateway without blocking other requests, for at most ``timeout_seconds``
    (default ``SMS_SEND_TIMEOUT_SECONDS``), the sender's retries included. Raises
    ``Unavailable`` when the gateway fails or misses the deadline: then call
    :func:`code_not_sent`; on success, :func:`code_accepted` with the returned time (SPEC §3,
    §16). The text is in ``language``, the language of the person who asked for it
    (default: the current request's, see ``i18n.active_language``).
    """
    minutes = issued.ttl_seconds // 60
    text = translate_plural("sms.code", minutes, language, code=issued.code, minutes=minutes)
    deadline = settings.sms_send_timeout_seconds if timeout_seconds is None else timeout_seconds
    try:
        async with asyncio.timeout(deadline):
            await sender.send(issued.phone_number, text)
    except TimeoutError:
        logger.error("SMS gateway missed the %.1f s deadline", deadline, extra={"event": "sms_timeout"})
        raise Unavailable() from None
    return utcnow()


def code_accepted(db: Session, issued: IssuedCode, accepted_at: datetime) -> IssuedCode | None:
    """The gateway accepted ``issued`` at ``accepted_at``: its lifetime starts now; commit.

    Returns the code with its final expiry, or ``None`` if a newer request replaced it meanwhile.
    Records ``CodeSent``.
    """
    events.record(db, events.CodeSent(issued.phone_number))
    return codes.start_lifetime(db, issued, accepted_at)


def code_not_sent(db: Session, issued: IssuedCode) -> None:
    """The gateway failed ``issued``: nothing is left that counts as a sent code; commit.

    The code is deleted (nobody can sign in with it) and the send no longer holds the
    phone's cooldown, so the person may ask again at once; it still counts in the wider
    send windows (see :func:`limits.forgive_cooldown` for why).
    """
    codes.withdraw_code(db, issued)
    if issued.issued_at is not None:
        limits.forgive_cooldown(db, issued.phone_number, issued.issued_at)


def sign_in(db: Session, raw_phone: Any, raw_code: Any, now: datetime | None = None) -> User:
    """Check the code and return the phone's user, creating it on first sign-in.

    Raises a field error for malformed input (nothing is written), ``WrongCode`` or
    ``TooManyAttempts`` for a code that does not match.
    """
    phone_number = phones.normalize_phone(raw_phone)
    code = codes.normalize_code(raw_code)
    now = now or utcnow()
    codes.consume_code(db, phone_number, code, now)
    user = users.get_or_create_user(db, phone_number, now)
    db.commit()
    # Checked only after a correct code, so the answer reveals nothing to a stranger.
    if not user.is_active:
        raise AccountDisabled()
    logger.info("signed in", extra={"event": "sign_in", "user_id": user.id})  # never the phone's code
    events.record(db, events.UserSignedIn(user.id))
    return user
