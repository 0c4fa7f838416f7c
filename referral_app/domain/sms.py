"""SMS senders: a demo sender (keeps messages for the demo UI) and a webhook sender."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import Protocol

import httpx

from referral_app.domain.errors import Unavailable
from referral_app.settings import settings

logger = logging.getLogger(__name__)


class SmsSender(Protocol):
    """Delivers a text message to a phone number."""

    async def send(self, phone_number: str, text: str) -> None: ...


class DemoSmsSender:
    """A simulated gateway: waits like a real one (``SMS_DELAY_SECONDS``), then keeps the message."""

    def __init__(self, keep: int = 100, delay_seconds: tuple[float, float] | None = None) -> None:
        self.outbox: deque[tuple[str, str]] = deque(maxlen=keep)
        self.delay_seconds = delay_seconds

    async def send(self, phone_number: str, text: str) -> None:
        low, high = self.delay_seconds or settings.sms_delay_seconds
        if high > 0:
            await asyncio.sleep(random.uniform(low, high))
        self.outbox.append((phone_number, text))
        if settings.demo_mode:  # outside demo mode a code never reaches the logs
            logger.info("demo SMS to %s: %s", phone_number, text)


class WebhookSmsSender:
    """POSTs ``{"phone": ..., "text": ...}`` as JSON to a gateway URL, with a timeout and retries."""

    def __init__(self, url: str, timeout_seconds: float, retries: int, backoff_seconds: float = 0.5) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds

    async def send(self, phone_number: str, text: str) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
            for attempt in range(self.retries + 1):
                try:
                    response = await client.post(self.url, json={"phone": phone_number, "text": text})
                    if response.status_code < 500:
                        response.raise_for_status()
                        return
                    logger.warning("SMS webhook attempt %d: HTTP %d", attempt + 1, response.status_code)
                except httpx.HTTPStatusError as error:  # a 4xx: our request is wrong, retrying won't help
                    logger.error("SMS webhook refused the message: %s", error.response.status_code)
                    raise Unavailable() from error
                except httpx.HTTPError as error:
                    logger.warning("SMS webhook attempt %d failed: %s", attempt + 1, type(error).__name__)
                if attempt < self.retries:
                    await asyncio.sleep(self.backoff_seconds * 2**attempt)
        logger.error("SMS webhook gave up after %d attempts", self.retries + 1)
        raise Unavailable()


def make_sms_sender() -> SmsSender:
    """The webhook sender when ``SMS_WEBHOOK_URL`` is set, else the demo sender."""
    if settings.sms_webhook_url:
        return WebhookSmsSender(
            settings.sms_webhook_url, settings.sms_webhook_timeout_seconds, settings.sms_webhook_retries
        )
    return DemoSmsSender()


sms_sender: SmsSender = make_sms_sender()
