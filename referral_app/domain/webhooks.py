"""Webhook events: the outbox, claiming due events, recording attempts, retries, resending.

The delivery itself (HTTP, signatures) is plumbing in ``referral_app.infra.webhooks``; the
rules live here. Events follow the Standard Webhooks specification
(https://www.standardwebhooks.com): a JSON body ``{"type", "id", "timestamp", "data"}``
whose ``id`` is the ``webhook-id`` header, the same on every attempt.

- **Never sent for a rollback, never lost after a commit:** :func:`record_event` adds the
  event to the caller's transaction (the change that caused it); nothing is committed here.
- **At least once, in order per user:** an event waits while an earlier event of either user
  it names is still pending (delivered and failed ones no longer hold it back).
- **No double delivery between workers:** :func:`claim_due` takes due rows with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL; SQLite has one writer) and leases them
  by moving ``next_attempt_at`` past the delivery's timeout. A worker that dies mid-delivery
  leaves the event to another once the lease ends; a late result of an expired lease is
  kept as an attempt but changes nothing.
- **Retries** with exponential backoff and jitter until ``retry_until`` (at least 24 hours
  after the event or a staff resend), then the event is ``failed``.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlmodel import Session

from referral_app.domain import audit, events
from referral_app.domain.clock import utcnow
from referral_app.models import WebhookAttempt, WebhookEvent
from referral_app.settings import settings

USER_CREATED = "user.created"
REFERRAL_ACTIVATED = "referral.activated"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
MAX_ERROR_LENGTH = 500

_events = WebhookEvent.__table__
_attempts = WebhookAttempt.__table__


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again, and for how long.

    After failed attempt n the next one comes ``min(max_delay, base_delay * 2**(n-1))``
    later, times a random factor in [0.5, 1] ("equal jitter"), so that receivers coming
    back are not hit by every sender at once. ``retry_for`` counts from the event (or a
    resend); ``lease`` is how long a claimed event stays with its worker.
    """

    base_delay: timedelta
    max_delay: timedelta
    retry_for: timedelta
    lease: timedelta

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        timeout = settings.webhook_timeout_seconds
        return cls(
            base_delay=timedelta(seconds=settings.webhook_retry_base_seconds),
            max_delay=timedelta(seconds=settings.webhook_retry_max_seconds),
            retry_for=timedelta(hours=settings.webhook_retry_hours),
            # The delivery is cut off after ``timeout``; the rest covers writing the result.
            lease=timedelta(seconds=2 * timeout + 5),
        )

    def delay(self, attempt: int, rng: random.Random | None = None) -> timedelta:
        """The wait after failed attempt ``attempt`` (1 for the first)."""
        exponent = min(attempt - 1, 40)  # 2**40 base delays is past any cap
        ceiling = min(self.max_delay, self.base_delay * 2**exponent)
        return ceiling * (rng or random).uniform(0.5, 1.0)


@dataclass(frozen=True)
class Delivery:
    """A claimed event: what to send, and the attempt it is (1 for the first)."""

    pk: int
    event_id: str
    event_type: str
    payload: str
    attempt: int


@dataclass(frozen=True)
class Outcome:
    """What one HTTP attempt gave: ``status_code`` is None when no answer came."""

    status_code: int | None
    duration_ms: int
    error: str | None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def enabled() -> bool:
    """Events are written only while a receiver is configured (``WEBHOOK_URL``)."""
    return bool(settings.webhook_url)


def iso(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, as Standard Webhooks' examples write timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_event_id() -> str:
    """A unique message id (``msg_`` + 32 hex digits), the ``webhook-id`` of every attempt."""
    return f"msg_{uuid.uuid4().hex}"


_ADD_EVENT = insert(_events)


def record_event(
    db: Session, event_type: str, user_id: int, data: dict[str, Any], now: datetime, inviter_id: int | None = None
) -> str | None:
    """Add an event to the open transaction (not committed); returns its id, or None when off.

    ``data`` must be JSON-serializable; the body is fixed here, so every attempt signs and
    sends the same bytes.
    """
    if not enabled():
        return None
    event_id = new_event_id()
    body = {"type": event_type, "id": event_id, "timestamp": iso(now), "data": data}
    db.execute(
        _ADD_EVENT,
        {
            "event_id": event_id, "event_type": event_type, "user_id": user_id, "inviter_id": inviter_id,
            "payload": json.dumps(body, ensure_ascii=False, separators=(",", ":")), "status": PENDING,
            "attempts": 0, "created_at": now, "next_attempt_at": now,
            "retry_until": now + RetryPolicy.from_settings().retry_for,
        },
    )
    return event_id


def user_created(db: Session, user_id: int, phone_number: str, invite_code: str, now: datetime) -> None:
    """``user.created``: a phone signed in for the first time."""
    data = {"user_id": user_id, "phone_number": phone_number, "invite_code": invite_code, "created_at": iso(now)}
    record_event(db, USER_CREATED, user_id, data, now)


def referral_activated(
    db: Session, user_id: int, phone_number: str, inviter_id: int, inviter_phone_number: str, invite_code: str,
    now: datetime,
) -> None:
    """``referral.activated``: ``user_id`` entered ``invite_code``, the code of ``inviter_id``."""
    data = {
        "user_id": user_id, "phone_number": phone_number, "invite_code": invite_code,
        "inviter_id": inviter_id, "inviter_phone_number": inviter_phone_number, "activated_at": iso(now),
    }
    record_event(db, REFERRAL_ACTIVATED, user_id, data, now, inviter_id=inviter_id)


# --- claiming -----------------------------------------------------------------------------

_earlier = _events.alias("earlier")
_PEOPLE = (_events.c.user_id, _events.c.inviter_id)
_WAITS_FOR_EARLIER = exists().where(
    _earlier.c.status == PENDING,
    _earlier.c.id < _events.c.id,
    or_(_earlier.c.user_id.in_(_PEOPLE), _earlier.c.inviter_id.in_(_PEOPLE)),
)
_DUE = (
    select(_events.c.id, _events.c.event_id, _events.c.event_type, _events.c.payload, _events.c.attempts)
    .where(_events.c.status == PENDING, _events.c.next_attempt_at <= bindparam("now"), ~_WAITS_FOR_EARLIER)
    .order_by(_events.c.id)
    .limit(bindparam("rows"))
    # PostgreSQL: rows another worker is claiming right now are skipped, not waited for
    # (and, being still pending, they hold back that user's later events). SQLite ignores it.
    .with_for_update(skip_locked=True, of=_events)
)
_LEASE = (
    update(_events)
    .where(_events.c.id == bindparam("pk"), _events.c.attempts == bindparam("before"))
    .values(next_attempt_at=bindparam("lease_until"), attempts=_events.c.attempts + 1)
)


def claim_due(db: Session, now: datetime, policy: RetryPolicy, limit: int = 20) -> list[Delivery]:
    """Claim up to ``limit`` due events for this worker and commit; oldest first.

    Never two events of one user at once: an event is due only when no earlier event of
    its users is pending, and the claimed ones stay pending until their result is in.
    """
    try:
        rows = db.execute(_DUE, {"now": now, "rows": limit}).all()
        lease_until = now + policy.lease
        for row in rows:
            db.execute(_LEASE, {"pk": row.id, "before": row.attempts, "lease_until": lease_until})
        db.commit()
    except BaseException:
        db.rollback()
        raise
    return [Delivery(row.id, row.event_id, row.event_type, row.payload, row.attempts + 1) for row in rows]


# --- results ------------------------------------------------------------------------------

_ADD_ATTEMPT = insert(_attempts)
_THIS_LEASE = and_(
    _events.c.id == bindparam("pk"), _events.c.attempts == bindparam("attempt"), _events.c.status == PENDING
)


def record_attempt(
    db: Session, delivery: Delivery, outcome: Outcome, now: datetime, policy: RetryPolicy,
    rng: random.Random | None = None,
) -> str:
    """Keep the attempt and move the event on; commit. Returns the event's status after it.

    A success delivers it; a failure schedules the next attempt, or fails the event once
    ``retry_until`` has passed. The result of a lease that has meanwhile gone to another
    worker is kept as an attempt but changes nothing (the return value is then "stale").
    """
    error = (outcome.error or "")[:MAX_ERROR_LENGTH] or None
    db.execute(
        _ADD_ATTEMPT,
        {
            "webhook_event_id": delivery.pk, "attempt": delivery.attempt, "attempted_at": now,
            "status_code": outcome.status_code, "duration_ms": outcome.duration_ms, "error": error,
        },
    )
    values: dict[str, Any] = {"last_status_code": outcome.status_code, "last_error": error}
    if outcome.succeeded:
        status, values = DELIVERED, values | {"status": DELIVERED, "delivered_at": now}
    elif now >= db.execute(select(_events.c.retry_until).where(_events.c.id == delivery.pk)).scalar_one():
        status, values = FAILED, values | {"status": FAILED}
    else:
        status, values = PENDING, values | {"next_attempt_at": now + policy.delay(delivery.attempt, rng)}
    changed = db.execute(update(_events).where(_THIS_LEASE).values(**values), {"pk": delivery.pk, "attempt": delivery.attempt})
    db.commit()
    return status if changed.rowcount == 1 else "stale"


def resend(db: Session, pk: int, actor: audit.StaffActor, now: datetime | None = None) -> bool:
    """Staff: send an event again (delivered or failed: it goes back to pending, due now, with a
    full retry window). Recorded in the audit log; commit. False for an unknown event."""
    now = now or utcnow()
    changed = db.execute(
        update(_events)
        .where(_events.c.id == pk)
        .values(status=PENDING, next_attempt_at=now, retry_until=now + RetryPolicy.from_settings().retry_for)
    ).rowcount
    if changed:
        audit.record(db, actor, audit.RESEND_WEBHOOK, "webhook_event", pk, now)
        events.record(db, events.WebhookResent(pk))
    db.commit()
    return changed == 1


def pending_count(db: Session) -> int:
    """Events still to deliver (due or not)."""
    count = db.execute(select(func.count()).select_from(_events).where(_events.c.status == PENDING)).scalar_one()
    db.rollback()
    return count


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as staff see it: its number, when, the HTTP status (None: no
    answer), how long it took (milliseconds) and what went wrong (None: nothing)."""

    attempt: int
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None


_RECENT_ATTEMPTS = (
    select(_attempts.c.attempt, _attempts.c.attempted_at, _attempts.c.status_code, _attempts.c.duration_ms,
           _attempts.c.error)
    .where(_attempts.c.webhook_event_id == bindparam("event"))
    .order_by(_attempts.c.id.desc())
    .limit(bindparam("rows"))
)


def recent_attempts(db: Session | Connection, event_pk: int, limit: int = 50) -> list[Attempt]:
    """The delivery attempts of event ``event_pk``, newest first, at most ``limit`` (a read)."""
    return [Attempt(*row) for row in db.execute(_RECENT_ATTEMPTS, {"event": event_pk, "rows": limit}).all()]


def purge_delivered(db: Session, now: datetime) -> int:
    """Delete delivered events (and their attempts) older than ``WEBHOOK_RETENTION_DAYS``; not committed.

    Failed events stay until staff resend them: they are the ones someone must look at.
    """
    old = select(_events.c.id).where(
        _events.c.status == DELIVERED, _events.c.delivered_at < now - timedelta(days=settings.webhook_retention_days)
    )
    db.execute(delete(_attempts).where(_attempts.c.webhook_event_id.in_(old)))
    return db.execute(delete(_events).where(_events.c.id.in_(old))).rowcount
