"""SMS senders. Sending is simulated; the sender is pluggable so a real gateway can replace it."""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

from referral_app.settings import settings

logger = logging.getLogger(__name__)


class SmsSender(Protocol):
    """Delivers a text message to a phone number."""

    def send(self, phone_number: str, text: str) -> None: ...


class DemoSmsSender:
    """Keeps the last messages in memory instead of sending them (a local demo's "phone")."""

    def __init__(self, keep: int = 100) -> None:
        self.outbox: deque[tuple[str, str]] = deque(maxlen=keep)

    def send(self, phone_number: str, text: str) -> None:
        self.outbox.append((phone_number, text))
        if settings.demo_mode:  # outside demo mode a code never reaches the logs
            logger.info("demo SMS to %s: %s", phone_number, text)


sms_sender: SmsSender = DemoSmsSender()
