"""Profile use cases: a user's profile, pages of their referrals, their language.

Each takes the session token and checks it in the same unit of work as the read, so a
revoked session sees nothing (``NotAuthenticated``). Reads use a Core connection
(``unit_of_work.read``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from referral_app.domain import referrals, sessions, users
from referral_app.domain.errors import NotAuthenticated
from referral_app.domain.referrals import Profile, ReferralPage
from referral_app.services import unit_of_work
from referral_app.settings import settings


@dataclass(frozen=True)
class ProfileView:
    """What a profile page or ``GET /profile/me/`` shows: whose it is, the profile, the first page."""

    user_id: int
    profile: Profile
    first_page: ReferralPage


async def read_profile(token: Any) -> ProfileView:
    """The profile of the token's user with the first ``REFERRAL_PAGE_SIZE`` referrals, newest first."""

    def work(db) -> ProfileView:
        user_id = sessions.authenticated_user_id(db, token)
        profile = referrals.get_profile(db, user_id)
        return ProfileView(user_id, profile, referrals.list_referrals(db, user_id, limit=settings.referral_page_size))

    return await unit_of_work.read(work)


async def referral_page(token: Any, cursor: Any = None, limit: Any = None) -> ReferralPage:
    """One page of the token's user's referrals after ``cursor`` (keyset), ``limit`` 1-100
    (default ``REFERRAL_PAGE_SIZE``); ``InvalidCursor``/``InvalidLimit`` for bad ones."""
    size = settings.referral_page_size if limit is None else limit

    def work(db) -> ReferralPage:
        user_id = sessions.authenticated_user_id(db, token)
        return referrals.list_referrals(db, user_id, cursor=cursor, limit=size)

    return await unit_of_work.read(work)


async def invited_count(user_id: int) -> int:
    """How many people entered ``user_id``'s code, now; -1 if the account is gone.

    For the live watcher of a page that already holds a checked session (one row read).
    """

    def work(db) -> int:
        try:
            return referrals.get_profile(db, user_id).invited_count
        except NotAuthenticated:
            return -1

    return await unit_of_work.read(work)


async def account_language(user_id: int) -> str | None:
    """The language ``user_id`` chose on their account, if any."""
    return await unit_of_work.run(lambda db: users.language_of(db, user_id))


async def set_account_language(user_id: int, language: str) -> None:
    """Remember ``language`` (a catalogue's name, checked by the caller) on ``user_id``'s account."""
    await unit_of_work.run(lambda db: users.set_language(db, user_id, language))
