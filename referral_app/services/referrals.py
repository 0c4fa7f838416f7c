"""Referral use cases: activate an invitation, and whose invite code a link carries."""

from __future__ import annotations

from typing import Any

from referral_app.domain import referrals, sessions
from referral_app.domain.referrals import Inviter
from referral_app.services import unit_of_work


async def activate_invitation(token: Any, raw_code: Any) -> Inviter:
    """The token's user enters ``raw_code``, someone else's invite code; returns its owner.

    What happens, in one transaction (``domain.referrals.activate_invite``): the user is
    linked to the code's owner (once per user, never their own code, never a loop; a
    conditional UPDATE and tree locks decide races), the owner's ``invited_count`` goes
    up, and the ``referral.activated`` webhook is written to the outbox. After the commit
    the bus hands ``InviteActivated`` to its subscribers (``services/subscribers.py``):
    the activations metric, the live update of the inviter's open pages, and the wake-up
    of the webhook delivery loops.

    Raises ``NotAuthenticated``, a field error for a malformed code, ``UnknownInviteCode``,
    ``OwnInviteCode``, ``AlreadyActivated`` or ``InviteLoop``; nothing is changed then.
    """

    def work(db) -> Inviter:
        user_id = sessions.authenticated_user_id(db, token)
        return referrals.activate_invite(db, user_id, raw_code)

    return await unit_of_work.run(work)


async def inviter_phone(code: str) -> str | None:
    """The E.164 number of the owner of the normalised invite ``code``, None if nobody has it
    (for the sign-in page of ``/?ref=CODE``, which shows it masked)."""
    return await unit_of_work.run(lambda db: referrals.code_owner_phone(db, code))
