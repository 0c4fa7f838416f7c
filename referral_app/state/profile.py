"""The profile page: own invite code, activation, and the referral list."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import reflex as rx

from referral_app.infra.db import session_scope
from referral_app.domain import invites, referrals, sessions
from referral_app.domain.errors import DomainError
from referral_app.domain.referrals import Referral
from referral_app.i18n import translate
from referral_app.infra import metrics
from referral_app.infra.live import referral_feed
from referral_app.settings import settings
from referral_app.state.base import SessionState, browser_session_script, message_for, text_field

LOGIN_ROUTE = "/"
# How often a live-update watcher checks that its page is still open.
WATCH_CHECK_SECONDS = 20


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _row(referral: Referral) -> dict[str, str]:
    return {"phone_number": referral.phone_number, "activated_at": _when(referral.activated_at)}


class ProfileState(SessionState):
    """Everything shown is re-read from the database after the session is re-checked."""

    loaded: bool = False
    phone_number: str = ""
    invite_code: str = ""
    share_link: str = ""
    activated_code: str = ""
    invited_by: str = ""
    invited_count: int = 0
    referrals: list[dict[str, str]] = []
    next_cursor: str = ""
    prefill_code: str = ""
    error: str = ""
    activating: bool = False
    loading_more: bool = False
    logging_out: bool = False
    _watching: bool = False

    def _signed_out(self):
        """Forget the page's data and go to the sign-in page."""
        self.reset()
        return rx.redirect(LOGIN_ROUTE)

    def _load(self, db, user_id: int) -> None:
        profile = referrals.get_profile(db, user_id)
        page = referrals.list_referrals(db, user_id, limit=settings.referral_page_size)
        self.phone_number = profile.phone_number
        self.invite_code = profile.invite_code
        self.activated_code = profile.activated_invite_code or ""
        self.invited_by = profile.invited_by or ""
        self.invited_count = profile.invited_count
        self.referrals = [_row(item) for item in page.items]
        self.next_cursor = page.next_cursor or ""
        origin = f"{self.router.url.scheme}://{self.router.url.netloc}" if self.router.url.netloc else ""
        self.share_link = f"{origin}/?ref={profile.invite_code}"
        self.loaded = True

    @rx.event
    def on_load(self):
        """Load the profile of the signed-in user; pre-fill a ``?ref=`` code."""
        user_id = self._authenticated_user_id()
        if user_id is None:
            return self._signed_out()
        self.error = ""
        with session_scope() as db:
            self._load(db, user_id)
        ref = self.router.url.query_parameters.get("ref")
        self.prefill_code = ""
        if ref is not None and not self.activated_code:
            try:
                code = invites.normalize_invite_code(ref)
            except DomainError:
                code = ""
            self.prefill_code = "" if code == self.invite_code else code
        if not self._watching:
            return ProfileState.watch_referrals

    @rx.event(background=True)
    async def watch_referrals(self):
        """While the page is open, show new referrals as soon as somebody enters the code."""
        async with self:
            user_id = self._authenticated_user_id()
            if user_id is None or self._watching:
                return
            self._watching = True
            client_token = self.router.session.client_token
        try:
            subscription = await referral_feed.subscribe(user_id)
        except Exception:  # no live updates (e.g. Redis away); the page still works
            async with self:
                self._watching = False
            return
        try:
            with metrics.track_live_subscriber():
                while True:
                    updated = await subscription.wait(WATCH_CHECK_SECONDS)
                    if not await _page_is_open(client_token):
                        return
                    if updated:
                        async with self:
                            if self._authenticated_user_id() != user_id:
                                return
                            await asyncio.to_thread(self._show_new_referrals, user_id)
        finally:
            await subscription.close()
            async with self:
                self._watching = False

    def _show_new_referrals(self, user_id: int) -> None:
        """Refresh the count and put new referrals (always the newest) on top of the list."""
        with session_scope() as db:
            profile = referrals.get_profile(db, user_id)
            page = referrals.list_referrals(db, user_id, limit=settings.referral_page_size)
        shown = {row["phone_number"] for row in self.referrals}
        fresh = [_row(item) for item in page.items if item.phone_number not in shown]
        self.invited_count = profile.invited_count
        self.referrals = fresh + self.referrals
        if not self.referrals[len(fresh):]:  # the list was empty: paging starts here
            self.next_cursor = page.next_cursor or ""

    def _activate(self, user_id: int, raw_code: Any) -> int:
        with session_scope() as db:
            owner = referrals.activate_invite(db, user_id, raw_code)
            self._load(db, user_id)
        return owner.id

    @rx.event
    async def activate(self, form_data: dict[str, Any]):
        """Enter someone else's invite code (once); the code's owner sees it live."""
        self.error, self.activating = "", True
        yield
        user_id = self._authenticated_user_id()
        if user_id is None:
            yield self._signed_out()
            return
        try:
            owner_id = await asyncio.to_thread(self._activate, user_id, text_field(form_data, "invite_code"))
        except DomainError as error:
            self.error = message_for(error)
        else:
            self.prefill_code = ""
            yield rx.toast.success(translate("profile.activated_success"))
            await referral_feed.publish(owner_id)
        finally:
            self.activating = False

    @rx.event
    def load_more(self):
        """Append the next page of referrals."""
        if not self.next_cursor:
            return
        self.loading_more = True
        yield
        user_id = self._authenticated_user_id()
        if user_id is None:
            yield self._signed_out()
            return
        try:
            with session_scope() as db:
                page = referrals.list_referrals(
                    db, user_id, cursor=self.next_cursor, limit=settings.referral_page_size
                )
        except DomainError as error:
            self.error = message_for(error)
        else:
            self.referrals = self.referrals + [_row(item) for item in page.items]
            self.next_cursor = page.next_cursor or ""
        finally:
            self.loading_more = False

    @rx.event
    def logout(self):
        """End the session on the server, then drop the cookie."""
        self.logging_out = True
        yield
        token = self._session_token()
        if token is not None:
            with session_scope() as db:
                sessions.revoke_session(db, token)
        self.reset()
        yield rx.call_script(browser_session_script("DELETE", None, LOGIN_ROUTE, always_go=True))


async def _page_is_open(client_token: str) -> bool:
    """Whether the browser tab that started a watcher is still connected (to any worker)."""
    from reflex.utils.prerequisites import get_and_validate_app

    namespace = get_and_validate_app().app.event_namespace
    if namespace is None:
        return False
    return await namespace._token_manager.is_token_connected(client_token)
