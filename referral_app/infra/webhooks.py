"""Webhook delivery: the loop that sends the outbox (``referral_app.domain.webhooks``).

It runs in every server process as a lifespan task (like the clean-up), and from the
command line (``python -m referral_app deliver-webhooks``). Any number of them may run
against one database: claims are row locks with ``SKIP LOCKED`` and leases (see the domain).

Wake-ups: a committed domain event that wrote to the outbox wakes the loops of its own
process at once (a subscriber on the bus, ``referral_app.services.subscribers``, through
``referral_app.infra.wakeups``); besides that the loop looks every
``WEBHOOK_POLL_SECONDS`` (retries that come due, events written by other instances).

Each request carries the Standard Webhooks headers ``webhook-id``, ``webhook-timestamp``
(the attempt's time, Unix seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``,
signed with the ``standardwebhooks`` library and ``WEBHOOK_SECRET``). A 2xx answer
delivers the event; anything else, a timeout or no connection is a failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
from standardwebhooks import Webhook

from referral_app.domain import webhooks
from referral_app.domain.clock import utcnow
from referral_app.domain.webhooks import Delivery, Outcome, RetryPolicy
from referral_app.infra import metrics, wakeups
from referral_app.services import webhooks as webhook_service
from referral_app.settings import settings

logger = logging.getLogger(__name__)

BATCH = 20  # events claimed (and sent concurrently) at once; never two of one user
USER_AGENT = "referral-app-webhooks/1"



# --- sending ------------------------------------------------------------------------------


class WebhookSender:
    """Signs and POSTs events to one URL with one ``httpx.AsyncClient`` (a connection pool)."""

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.signer = Webhook(secret)
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def send(self, delivery: Delivery) -> Outcome:
        sent_at = utcnow()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(sent_at.timestamp())),
            "webhook-signature": self.signer.sign(delivery.event_id, sent_at, delivery.payload),
        }
        started = time.perf_counter()
        status_code, error = None, None
        try:
            # httpx's timeout bounds each phase; this bounds the whole request (a receiver
            # dripping bytes must not hold the lease).
            async with asyncio.timeout(self.timeout):
                response = await self.client.post(self.url, content=delivery.payload.encode(), headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except TimeoutError:
            error = f"no answer within {self.timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        duration_ms = round((time.perf_counter() - started) * 1000)
        return Outcome(status_code, duration_ms, error)

    async def aclose(self) -> None:
        await self.client.aclose()


async def deliver_due(sender: WebhookSender, policy: RetryPolicy) -> int:
    """One round: claim due events, send them concurrently, record each result. Returns how many."""
    deliveries = await webhook_service.claim_due(policy, BATCH)
    if not deliveries:
        return 0

    async def one(delivery: Delivery) -> None:
        outcome = await sender.send(delivery)
        status = await webhook_service.record_attempt(delivery, outcome, policy)
        metrics.count_webhook_attempt(status)
        log = logger.info if outcome.succeeded else logger.warning
        log(
            "webhook %s %s attempt %d: %s",
            delivery.event_type, delivery.event_id, delivery.attempt, outcome.status_code or outcome.error,
            extra={"event": "webhook_delivery", "webhook_id": delivery.event_id, "status": status,
                   "status_code": outcome.status_code, "duration_ms": outcome.duration_ms},
        )

    await asyncio.gather(*(one(delivery) for delivery in deliveries))
    return len(deliveries)


async def run_delivery_loop(
    sender: WebhookSender, policy: RetryPolicy, poll_seconds: float, until_idle: bool = False,
    on_round: Callable[[int], None] | None = None,
) -> None:
    """Deliver until cancelled (or, with ``until_idle``, until no event is pending).

    Sleeps ``poll_seconds`` between rounds that found nothing, unless nudged. A database
    error ends only the round: the loop tries again after the pause.
    """
    with wakeups.waiting() as wakeup:
        while True:
            wakeup.clear()
            try:
                sent = await deliver_due(sender, policy)
            except Exception:
                logger.exception("webhook delivery round failed")
                sent = 0
            if on_round is not None:
                on_round(sent)
            if sent:
                continue  # there may be more due right away
            if until_idle and await webhook_service.pending_count() == 0:
                return
            try:
                await asyncio.wait_for(wakeup.wait(), poll_seconds)
            except TimeoutError:
                pass


def sender_from_settings() -> WebhookSender:
    return WebhookSender(settings.webhook_url, settings.webhook_secret, settings.webhook_timeout_seconds)


async def webhook_delivery(until_idle: bool = False) -> None:
    """The server's lifespan task (a no-op while ``WEBHOOK_URL`` is empty)."""
    if not webhooks.enabled():
        return
    sender = sender_from_settings()
    try:
        await run_delivery_loop(sender, RetryPolicy.from_settings(), settings.webhook_poll_seconds, until_idle)
    finally:
        await sender.aclose()
