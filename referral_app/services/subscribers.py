"""The one table of who hears which domain event (the message bus's subscribers).

Every consequence of a committed event is here, whatever door caused it (REST, pages,
staff console, command line, background loops):

- metrics count codes sent, sign-ins and activations (``referral_app.infra.metrics``);
- the inviter's open pages show a new referral at once (the live feed, ``infra.live``);
- the webhook delivery loops wake up when an event wrote to the outbox (``infra.wakeups``);
  the outbox row itself is written in the event's own transaction by the domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from referral_app.domain.events import CodeSent, DomainEvent, InviteActivated, UserCreated, UserSignedIn, WebhookResent
from referral_app.infra import metrics, wakeups
from referral_app.infra.live import referral_feed
from referral_app.services.bus import Subscriber, bus


async def show_to_inviter(event: InviteActivated) -> None:
    """The live publish: the inviter's open pages add the new referral (one caller)."""
    await referral_feed.publish(event.inviter_id)


SUBSCRIBERS: Mapping[type[DomainEvent], Sequence[Subscriber]] = {
    CodeSent: [metrics.count_code_sent],
    UserCreated: [wakeups.nudge],  # user.created is in the outbox
    UserSignedIn: [metrics.count_sign_in],
    InviteActivated: [metrics.count_activation, show_to_inviter, wakeups.nudge],  # referral.activated too
    WebhookResent: [wakeups.nudge],
}


def install() -> None:
    """Put :data:`SUBSCRIBERS` on the bus (idempotent; done when ``referral_app.services`` is imported)."""
    bus.install(SUBSCRIBERS)
