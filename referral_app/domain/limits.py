"""Send limits for confirmation codes: a cooldown and windows per phone, a window per client IP.

Each send is logged in ``code_sends``; a new send is allowed only if the log shows room in
every window, and the check and the new log row happen under a lock on the phone and the
IP, so two simultaneous requests cannot both slip under a limit. With the limits switched
off (``RATE_LIMITS_ENABLED=false``) sends are still logged, but nothing is checked or locked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlmodel import Session, col, select

from referral_app.domain.clients import client_key
from referral_app.domain.errors import RateLimited
from referral_app.domain.locks import lock
from referral_app.models import CodeSend
from referral_app.settings import settings


_LOG_SEND = insert(CodeSend.__table__)  # a plain INSERT: no ORM object is made


@dataclass(frozen=True)
class Window:
    """At most ``max_sends`` in any ``length`` of time."""

    max_sends: int
    length: timedelta


def phone_windows() -> list[Window]:
    return [
        Window(1, timedelta(seconds=settings.send_cooldown_seconds)),
        Window(settings.sends_per_phone_10min, timedelta(minutes=10)),
        Window(settings.sends_per_phone_day, timedelta(days=1)),
    ]


def ip_windows() -> list[Window]:
    return [Window(settings.sends_per_ip_10min, timedelta(minutes=10))]


def reserve_send(db: Session, phone_number: str, client_ip: str, now: datetime) -> None:
    """Log a send for ``phone_number`` from ``client_ip`` or raise ``RateLimited``.

    The per-client window counts by :func:`~referral_app.domain.clients.client_key` (an IPv6
    client is its /64), and the log keeps that key. Leaves the log row in the open
    transaction: the caller commits it with the code.
    """
    client_ip = client_key(client_ip)
    if settings.rate_limits_enabled:
        lock(db, f"send:phone:{phone_number}")
        lock(db, f"send:ip:{client_ip}")
        waits = [_wait(db, CodeSend.phone_number == phone_number, window, now) for window in phone_windows()]
        waits += [_wait(db, CodeSend.client_ip == client_ip, window, now) for window in ip_windows()]
        longest = max(waits)
        if longest > 0:
            db.rollback()
            raise RateLimited(retry_after=longest)
    db.execute(_LOG_SEND, {"phone_number": phone_number, "client_ip": client_ip, "sent_at": now})


def forgive_cooldown(db: Session, phone_number: str, sent_at: datetime) -> None:
    """A send that the SMS gateway did not accept no longer holds the phone's cooldown; commit.

    Its log row stays in the 10-minute, daily and per-IP windows: a message the gateway
    did not confirm in time may still have been delivered and billed, so a slow gateway
    must not open the way to unlimited sends (SMS pumping, OWASP API4:2023). It is dated
    back by the cooldown, which takes it out of the cooldown window only; the person may
    ask again at once. (The wider windows forget it up to one cooldown sooner.)
    """
    earlier = sent_at - timedelta(seconds=settings.send_cooldown_seconds)
    db.execute(
        update(CodeSend.__table__)
        .where(CodeSend.__table__.c.phone_number == phone_number, CodeSend.__table__.c.sent_at == sent_at)
        .values(sent_at=earlier)
    )
    db.commit()


def _wait(db: Session, condition, window: Window, now: datetime) -> int:
    """Whole seconds until ``window`` has room again (0 if it has room now; a 0 limit is off)."""
    if window.max_sends <= 0:
        return 0
    recent = db.exec(
        select(CodeSend.sent_at)
        .where(condition, CodeSend.sent_at > now - window.length)
        .order_by(col(CodeSend.sent_at).desc())
        .limit(window.max_sends)
    ).all()
    if len(recent) < window.max_sends:
        return 0
    frees_at = recent[-1] + window.length
    return max(1, math.ceil((frees_at - now).total_seconds()))
