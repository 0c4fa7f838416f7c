"""Sign-in with a phone number and a one-time code."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlmodel import Session

from referral_app.domain import codes, events, limits, phones, users
from referral_app.domain.clock import utcnow
from referral_app.domain.codes import IssuedCode
from referral_app.domain.errors import AccountDisabled
from referral_app.domain.sms import SmsSender
from referral_app.i18n import translate_plural
from referral_app.models import User

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


async def send_code(issued: IssuedCode, sender: SmsSender, language: str | None = None) -> None:
    """Hand the code to the SMS sender (awaits the gateway; never blocks other requests).

    The text is in ``language``, the language of the person who asked for it (default:
    the current request's, see ``i18n.active_language``).
    """
    minutes = issued.ttl_seconds // 60
    text = translate_plural("sms.code", minutes, language, code=issued.code, minutes=minutes)
    await sender.send(issued.phone_number, text)
    events.emit("code_sent")


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
    events.emit("sign_in")
    return user
