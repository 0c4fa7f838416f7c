"""The profile page: own invite code, activation, and the referral list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import reflex as rx

from referral_app.db import session_scope
from referral_app.domain import invites, referrals, sessions
from referral_app.domain.errors import DomainError
from referral_app.domain.referrals import Referral
from referral_app.i18n import translate
from referral_app.settings import settings
from referral_app.state.base import SessionState, browser_session_script, message_for, text_field

LOGIN_ROUTE = "/"


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

    @rx.event
    def activate(self, form_data: dict[str, Any]):
        """Enter someone else's invite code (once)."""
        self.error, self.activating = "", True
        yield
        user_id = self._authenticated_user_id()
        if user_id is None:
            yield self._signed_out()
            return
        try:
            with session_scope() as db:
                referrals.activate_invite(db, user_id, text_field(form_data, "invite_code"))
                self._load(db, user_id)
        except DomainError as error:
            self.error = message_for(error)
        else:
            self.prefill_code = ""
            yield rx.toast.success(translate("profile.activated_success"))
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
