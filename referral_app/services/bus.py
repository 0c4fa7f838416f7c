"""The message bus: hands each committed domain event to its subscribers, in order.

Subscribers are registered once, in one table (``referral_app.services.subscribers``,
installed by the app's wiring). A subscriber is a plain function of the event or a
coroutine function; it runs on the event loop after the unit of work committed, so it
must not block (a subscriber that needs the database calls a service). A subscriber that
fails is logged and skipped: what happened stands, and the others still run.

"Architecture Patterns with Python", ch. 9; ``cosmicpython/code``: ``service_layer/messagebus.py``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence

from referral_app.domain.events import DomainEvent

logger = logging.getLogger(__name__)

Subscriber = Callable[[DomainEvent], None | Awaitable[None]]


class MessageBus:
    """Maps each event class to its subscribers (exact class; no inheritance lookup)."""

    def __init__(self) -> None:
        self._subscribers: dict[type[DomainEvent], tuple[Subscriber, ...]] = {}

    def install(self, table: Mapping[type[DomainEvent], Sequence[Subscriber]]) -> None:
        """Set the subscribers of every event class in ``table`` (the app's wiring does it once)."""
        for event_class, subscribers in table.items():
            self._subscribers[event_class] = tuple(subscribers)

    def subscribers(self, event_class: type[DomainEvent]) -> tuple[Subscriber, ...]:
        return self._subscribers.get(event_class, ())

    def subscribe(self, event_class: type[DomainEvent], subscriber: Subscriber) -> None:
        """Add one subscriber (tests; the app's own are in the table)."""
        if subscriber not in self.subscribers(event_class):
            self._subscribers[event_class] = (*self.subscribers(event_class), subscriber)

    def unsubscribe(self, event_class: type[DomainEvent], subscriber: Subscriber) -> None:
        self._subscribers[event_class] = tuple(s for s in self.subscribers(event_class) if s is not subscriber)

    async def dispatch(self, events: Iterable[DomainEvent]) -> None:
        """Run every subscriber of each event, event by event, in order."""
        for event in events:
            for subscriber in self._subscribers.get(type(event), ()):
                try:
                    outcome = subscriber(event)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:  # noqa: BLE001 - a subscriber's failure must not undo the event
                    logger.exception("subscriber %s failed for %r", getattr(subscriber, "__qualname__", subscriber), event)


bus = MessageBus()
