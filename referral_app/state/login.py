"""The sign-in page: phone number → one-time code → signed in."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from referral_app.infra.client_ip import client_address
from referral_app.infra.db import session_scope
from referral_app.domain import auth, invites, sessions
from referral_app.domain.errors import DomainError, RateLimited
from referral_app.domain.sms import sms_sender
from referral_app.i18n import translate
from referral_app.settings import settings
from referral_app.state.base import SessionState, browser_session_script, message_for, text_field

PROFILE_ROUTE = "/profile"
ONE_SECOND = "new Promise((resolve) => setTimeout(() => resolve(true), 1000))"


class LoginState(SessionState):
    """Steps of the sign-in form. The code is on screen only in demo mode."""

    step: str = "phone"  # "phone", then "code", then "done" while the browser takes its cookie
    phone_number: str = ""  # E.164, once a code was sent
    demo_code: str = ""
    ref_code: str = ""  # from /?ref=CODE, carried to the profile
    error: str = ""
    error_field: str = ""
    requesting: bool = False
    confirming: bool = False
    retry_after: int = 0  # seconds until another code may be requested

    @rx.var
    def code_sent_text(self) -> str:
        return translate("login.code_sent", phone=self.phone_number) if self.phone_number else ""

    @rx.var
    def error_text(self) -> str:
        """The error to show; a send limit counts down by itself."""
        if self.retry_after > 0:
            return translate("rate.limited", seconds=self.retry_after)
        return self.error

    @rx.var
    def invited_text(self) -> str:
        return translate("login.invited_notice", code=self.ref_code) if self.ref_code else ""

    def _profile_url(self) -> str:
        return f"{PROFILE_ROUTE}?{urlencode({'ref': self.ref_code})}" if self.ref_code else PROFILE_ROUTE

    def _fail(self, error: DomainError) -> None:
        self.error, self.error_field = message_for(error), error.field or ""

    @rx.event
    def on_load(self):
        """Keep a valid ``?ref=`` code; send a signed-in visitor to the profile."""
        # Whatever was in flight when the page was left is over now.
        self.requesting = self.confirming = False
        if self.step == "done":  # signed in here before: this is a new sign-in
            self.step, self.phone_number, self.demo_code, self.error = "phone", "", "", ""
        ref = self.router.url.query_parameters.get("ref")
        if ref is not None:
            try:
                self.ref_code = invites.normalize_invite_code(ref)
            except DomainError:
                self.ref_code = ""
        if self._authenticated_user_id() is not None:
            return rx.redirect(self._profile_url())

    @rx.event
    async def request_code(self, form_data: dict[str, Any]):
        """Issue a code for the submitted phone number and send it."""
        async for update in self._issue_code(text_field(form_data, "phone")):
            yield update

    @rx.event
    async def resend_code(self):
        """Issue a new code for the phone already entered (the old one stops working)."""
        if self.step == "code":
            async for update in self._issue_code(self.phone_number):
                yield update

    def _client_ip(self) -> str:
        # The socket's client as infra/client_ip.py resolved it (trusted proxies included),
        # which Reflex keeps for the connection.
        return client_address(self.router.session.client_ip)

    @staticmethod
    def _issue(raw_phone: Any, ip: str):
        with session_scope() as db:
            return auth.request_code(db, raw_phone, ip)

    async def _issue_code(self, raw_phone: Any):
        if self.retry_after > 0:
            return
        self.error, self.error_field, self.requesting = "", "", True
        yield
        try:
            issued = await asyncio.to_thread(self._issue, raw_phone, self._client_ip())
            await auth.send_code(issued, sms_sender)
        except RateLimited as error:
            self.retry_after = error.retry_after
            yield LoginState.count_down
        except DomainError as error:
            self._fail(error)
        else:
            self.phone_number = issued.phone_number
            self.demo_code = issued.code if settings.demo_mode else ""
            self.step = "code"
        finally:
            self.requesting = False

    @rx.event
    def count_down(self, _result: Any = None):
        """Tick ``retry_after`` down once a second, paced by the browser (so it ends with the page).

        Only the display depends on it: the limit itself is enforced by the server.
        """
        if _result is not None:  # a tick (the first call only starts the clock)
            self.retry_after = max(0, self.retry_after - 1)
        if self.retry_after > 0:
            return rx.call_script(ONE_SECOND, callback=LoginState.count_down)

    @rx.event
    def confirm_code(self, form_data: dict[str, Any]):
        """Check the code; on success the browser trades a one-time claim for its cookie."""
        if self.step != "code":
            return
        self.error, self.error_field, self.confirming = "", "", True
        yield
        try:
            with session_scope() as db:
                user = auth.sign_in(db, self.phone_number, text_field(form_data, "code"))
                claim = sessions.create_browser_claim(db, user.id)
            self._hold_data_of(user.id)  # the page now shows this user's number
        except DomainError as error:
            self._fail(error)
            self.confirming = False
            return
        self.demo_code, self.step, self.confirming = "", "done", False
        yield rx.call_script(
            browser_session_script("POST", {"claim": claim}, self._profile_url()),
            callback=LoginState.session_claimed,
        )

    @rx.event
    def session_claimed(self, ok: Any):
        """The cookie exchange failed (the page reloads on success)."""
        if ok is not True:  # the code is used up: start again from the phone number
            self.step, self.phone_number = "phone", ""
            self.error, self.error_field = translate("error.unknown"), ""

    @rx.event
    def change_phone(self):
        self.step, self.phone_number, self.demo_code = "phone", "", ""
        self.error, self.error_field = "", ""
