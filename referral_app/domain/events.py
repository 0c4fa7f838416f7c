"""Domain events: what happened, with the ids a subscriber needs, recorded by the domain.

A domain function that changes something records an event on the unit of work's session
with :func:`record`; the session keeps it with the transaction. When the transaction
commits the event is kept for dispatch; when it rolls back the event is forgotten
(``referral_app.services.unit_of_work``). After the unit of work ends, the service hands
the committed events to the message bus (``referral_app.services.bus``), whose one table
of subscribers (metrics, the live feed, the webhook loop's wake-up) is in
``referral_app.services.subscribers``. The domain knows nothing of who listens.

The pattern is "Architecture Patterns with Python", ch. 8-9 (events collected by the
unit of work, published by a message bus after commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Keys of ``Session.info``: events of the open transaction, and of transactions committed.
PENDING = "domain_events.pending"
COMMITTED = "domain_events.committed"


@dataclass(frozen=True)
class DomainEvent:
    """Base class of every event; events are immutable values."""


@dataclass(frozen=True)
class CodeSent(DomainEvent):
    """The SMS gateway accepted a one-time code for ``phone_number`` (E.164)."""

    phone_number: str


@dataclass(frozen=True)
class UserCreated(DomainEvent):
    """A phone signed in for the first time and became user ``user_id``."""

    user_id: int


@dataclass(frozen=True)
class UserSignedIn(DomainEvent):
    """User ``user_id`` entered a correct code (new or not) and was let in."""

    user_id: int


@dataclass(frozen=True)
class InviteActivated(DomainEvent):
    """User ``user_id`` entered the invite code of ``inviter_id``.

    The referral is the invited user's row until the referral programme gives it a row of
    its own, so ``referral_id`` is ``user_id`` for now.
    """

    user_id: int
    inviter_id: int

    @property
    def referral_id(self) -> int:
        return self.user_id


@dataclass(frozen=True)
class WebhookResent(DomainEvent):
    """Staff sent webhook event ``event_pk`` (the outbox row's id) again."""

    event_pk: int


def record(db: Any, event: DomainEvent) -> None:
    """Record ``event`` on the unit of work ``db`` (a session or connection with ``info``).

    It is dispatched only if the transaction it belongs to commits. An event recorded
    while no transaction is open describes work already committed and is kept as such.
    """
    db.info.setdefault(PENDING, []).append(event)
