"""What happened, for whoever listens (metrics, later webhooks): the domain's one hook.

The domain calls :func:`emit` after a unit of work has committed; listeners are added by
the plumbing (``referral_app.infra.metrics``) at import. A listener that fails is logged
and skipped: what happened stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal

logger = logging.getLogger(__name__)

# sign_in: a correct code was entered (a user signed in, new or not);
# invite_activated: a user entered someone's invite code;
# code_sent: a confirmation code was handed to the SMS gateway.
Event = Literal["sign_in", "invite_activated", "code_sent"]
Listener = Callable[[Event], None]

_listeners: list[Listener] = []


def add_listener(listener: Listener) -> None:
    """Call ``listener(event)`` after each event (in the thread or task that caused it)."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def emit(event: Event) -> None:
    for listener in list(_listeners):
        try:
            listener(event)
        except Exception:  # noqa: BLE001 - a listener's failure must not undo the event
            logger.exception("event listener failed for %s", event)
