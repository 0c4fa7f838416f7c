"""Use cases of the webhook outbox's delivery loop (``referral_app.infra.webhooks``) and of staff."""

from __future__ import annotations

from referral_app.domain import audit, webhooks
from referral_app.domain.clock import utcnow
from referral_app.domain.webhooks import Delivery, Outcome, RetryPolicy
from referral_app.services import unit_of_work


async def claim_due(policy: RetryPolicy, limit: int) -> list[Delivery]:
    """Claim up to ``limit`` due events for this worker (leased; see ``domain.webhooks.claim_due``)."""
    return await unit_of_work.run(lambda db: webhooks.claim_due(db, utcnow(), policy, limit))


async def record_attempt(delivery: Delivery, outcome: Outcome, policy: RetryPolicy) -> str:
    """Record one attempt's outcome; returns the event's status after it (or ``"stale"``)."""
    return await unit_of_work.run(lambda db: webhooks.record_attempt(db, delivery, outcome, utcnow(), policy))


async def pending_count() -> int:
    """How many events wait to be delivered."""
    return await unit_of_work.run(webhooks.pending_count)


async def resend(pk: int, actor: audit.StaffActor) -> bool:
    """Staff: send event ``pk`` again (audited; wakes the loops). False for an unknown event."""
    return await unit_of_work.run(lambda db: webhooks.resend(db, pk, actor))
