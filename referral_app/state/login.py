"""The sign-in page: phone number → one-time code → signed in.

Every handler guards itself on the server: a second click or Enter that arrives after
the first was handled finds the step moved on (or the same code already tried) and does
nothing, so nothing is ever sent twice, whatever the browser does.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from referral_app.infra.client_ip import client_address
from referral_app.domain import invites, phones
from referral_app.domain.clock import utcnow
from referral_app.domain.errors import DomainError, RateLimited, TooManyAttempts
from referral_app.i18n import translate
from referral_app.services import auth, referrals
from referral_app.settings import settings
from referral_app.state.base import SessionState, browser_session_script, text_field

# The profile page's address as the server serves it (no redirect on the way).
PROFILE_ROUTE = "/profile"
PROFILE_URL = "/profile/"
# A tick of the countdowns; never on a page that is leaving (components/head.py sets the
# flag): its callback would reconnect the socket the leaving page has just closed.
ONE_SECOND = "new Promise((resolve) => setTimeout(() => window.__referralLeaving || resolve(true), 1000))"
# ?session=ended: the page was opened because a session ended (SPEC §7).
SESSION_ENDED = "ended"
# How long past its deadline a send still counts as under way (its task writes back).
SEND_GRACE_SECONDS = 5
# A malformed ?ref= value is named, shortened to this, as unknown.
SHOWN_REF_LENGTH = 16


def clock_text(seconds: int) -> str:
    """``m:ss`` (``4:59``): the same in every language."""
    return f"{seconds // 60}:{seconds % 60:02d}"


class LoginState(SessionState):
    """Steps of the sign-in form. The code is on screen only in demo mode."""

    step: str = "phone"  # "phone", then "code", then "done" while the browser takes its cookie
    phone_number: str = ""  # E.164, once a code was sent
    demo_code: str = ""
    ref_code: str = ""  # a valid code from /?ref=CODE, carried to the profile
    ref_shown: str = ""  # the ?ref= value as named on the page
    ref_inviter: str = ""  # the code owner's number, masked
    ref_status: str = ""  # "", "known" or "unknown"
    session_ended: bool = False
    error_code: str = ""  # a message id; the text follows the language
    error_params: dict[str, str] = {}
    error_field: str = ""
    requesting: bool = False
    confirming: bool = False
    retry_after: int = 0  # seconds until another code may be requested (a send limit)
    code_left: int = 0  # seconds the code is still valid
    resend_in: int = 0  # seconds until "send a new code" may be used
    code_dead: str = ""  # "", "expired" or "attempts": the code can no longer sign in
    sending: bool = False  # the code step waits for the SMS gateway's acceptance
    sms_late: bool = False  # ... for longer than SMS_LATE_NOTICE_SECONDS
    send_failed: bool = False  # the gateway failed or missed its deadline: no code was sent
    _retry_until: float = 0.0
    _code_until: float = 0.0
    _resend_until: float = 0.0
    _tried_codes: list[str] = []
    _outgoing: str = ""  # the number a send was asked for, until send_code takes it
    _send_id: int = 0  # the latest send the page waits for
    _sending_until: float = 0.0
    _requesting_until: float = 0.0  # a code request in flight counts as busy until then
    _ticking: bool = False

    # --- Texts (computed in the page's language) -------------------------------------

    @rx.var
    def phone_display(self) -> str:
        return phones.format_phone(self.phone_number) if self.phone_number else ""

    @rx.var
    def error_text(self) -> str:
        """The error to show; a send limit counts down by itself."""
        if self.retry_after > 0:
            return translate("rate.limited", self.language, seconds=self.retry_after)
        if self.send_failed and self.step == "code":
            return translate("login.sms_failed", self.language)
        if self.code_dead == "expired" and self.step == "code":
            return translate("login.code_expired", self.language)
        if not self.error_code:
            return ""
        return translate(self.error_code, self.language, **self.error_params)

    @rx.var
    def code_expires_text(self) -> str:
        return translate("login.code_expires", self.language, time=clock_text(self.code_left))

    @rx.var
    def sending_text(self) -> str:
        """While the gateway has not accepted the SMS: sending, then late."""
        return translate("login.sms_late" if self.sms_late else "login.sms_sending", self.language)

    @rx.var
    def code_sent_text(self) -> str:
        """The line under the code step's heading: sending, could not send, or sent."""
        if self.sending:
            return translate("login.code_sending_to", self.language)
        if self.send_failed:
            return translate("login.code_send_failed_to", self.language)
        return translate("login.code_sent_to", self.language)

    @rx.var
    def resend_text(self) -> str:
        if self.resend_in > 0:
            return translate("login.resend_in", self.language, time=clock_text(self.resend_in))
        return translate("login.new_code" if self.code_dead else "login.resend", self.language)

    @rx.var
    def invited_text(self) -> str:
        if self.ref_status == "known":
            phone = phones.keep_together(self.ref_inviter)
            return translate("login.invited_by", self.language, phone=phone, code=self.ref_code)
        if self.ref_status == "unknown":
            return translate("login.invite_unknown", self.language, code=self.ref_shown)
        return ""

    # --- Helpers ------------------------------------------------------------------------

    def _profile_url(self) -> str:
        return f"{PROFILE_URL}?{urlencode({'ref': self.ref_code})}" if self.ref_code else PROFILE_URL

    def _fail(self, error: DomainError) -> None:
        self.error_code, self.error_field = error.code, error.field or ""
        self.error_params = {key: str(value) for key, value in error.params.items()}

    def _clear_error(self) -> None:
        self.error_code, self.error_field, self.error_params = "", "", {}
        self.session_ended = False

    def _update_clocks(self) -> None:
        now = time.time()
        self.retry_after = max(0, math.ceil(self._retry_until - now))
        if self.step != "code":
            return
        if self.sending and now > self._sending_until:  # its task died with its worker
            self.sending, self.sms_late, self.send_failed = False, False, True
            self._resend_until = 0.0
        self.resend_in = max(0, math.ceil(self._resend_until - now))
        if self.sending or self.send_failed:  # no code is on its way: nothing counts down
            self.code_left = 0
            return
        self.code_left = max(0, math.ceil(self._code_until - now))
        if self.code_left == 0 and not self.code_dead:
            self.code_dead = "expired"

    def _clocks_running(self) -> bool:
        if self.retry_after > 0:
            return True
        if self.step != "code" or self.sending:
            return False
        return (self.code_left > 0 and not self.code_dead and not self.send_failed) or self.resend_in > 0

    def _start_clock(self):
        """The countdown event, unless one is already running for this page."""
        self._update_clocks()
        if self._ticking or not self._clocks_running():
            return None
        self._ticking = True
        return LoginState.count_down

    async def _show_ref(self, raw: str | None) -> None:
        self.ref_code = self.ref_shown = self.ref_inviter = self.ref_status = ""
        if raw is None:
            return
        try:
            code = invites.normalize_invite_code(raw)
        except DomainError:
            self.ref_shown, self.ref_status = raw.strip()[:SHOWN_REF_LENGTH], "unknown"
            return
        owner = await referrals.inviter_phone(code)
        if owner is None:
            self.ref_shown, self.ref_status = code, "unknown"
        else:
            self.ref_code, self.ref_inviter, self.ref_status = code, phones.mask_phone(owner), "known"

    # --- Events --------------------------------------------------------------------------

    @rx.event
    async def on_load(self):
        """Choose the language; show the invitation of ``?ref=`` and an ended session; send
        a signed-in visitor to the profile."""
        # Whatever was in flight when the page was left is over now; a code request handed to
        # send_code (a background event) is not, until its deadline: the page's on_load can
        # arrive between two presses of Enter, and the second must still find it busy.
        self.confirming = self._ticking = False
        if time.time() > self._requesting_until:
            self.requesting = False
        if self.step == "done":  # signed in here before: this is a new sign-in
            self.step, self.phone_number, self.demo_code = "phone", "", ""
            self._clear_error()
        query = self.router.url.query_parameters
        await self._show_ref(query.get("ref"))
        if query.get("session") == SESSION_ENDED and self.step == "phone":
            self._clear_error()
            self.session_ended = True
        user_id = await self._authenticated_user_id()
        events = [await self._resolve_language(user_id)]
        if user_id is not None:
            events.append(rx.redirect(self._profile_url()))
        else:
            events.append(self._start_clock())
        return [event for event in events if event is not None]

    @rx.event
    async def request_code(self, form_data: dict[str, Any]):
        """Issue a code for the submitted phone number and send it (once: a repeat is ignored)."""
        if self.step != "phone":
            return
        try:
            phone_number = phones.normalize_phone(text_field(form_data, "phone"))
        except DomainError as error:
            self._clear_error()
            self._fail(error)
            return
        for update in self._start_send(phone_number):
            yield update

    @rx.event
    async def resend_code(self):
        """Issue a new code for the phone already entered (the old one stops working)."""
        self._update_clocks()
        if self.step == "code" and self.resend_in == 0 and not self.sending:
            for update in self._start_send(self.phone_number):
                yield update

    def _client_ip(self) -> str:
        # The socket's client as infra/client_ip.py resolved it (trusted proxies included),
        # which Reflex keeps for the connection.
        return client_address(self.router.session.client_ip)

    def _start_send(self, phone_number: str):
        """Hand the send to :meth:`send_code`, which runs outside the state lock."""
        self._update_clocks()
        if self.retry_after > 0 or self.requesting or self.sending:  # a second click while it works
            return
        self._clear_error()
        self.requesting = True
        self._requesting_until = time.time() + settings.sms_send_timeout_seconds + SEND_GRACE_SECONDS
        self._outgoing = phone_number
        self._send_id += 1  # a result for an older id is stale: the page has moved on
        yield LoginState.send_code

    @rx.event(background=True)
    async def send_code(self):
        """Issue the code, then wait for the SMS gateway without holding the page's state.

        A handler holds the page's state lock for its whole run (with Redis it expires
        after ``REFLEX_REDIS_LOCK_EXPIRATION``, 10 s): a slow gateway would outlive it and
        the page's later events would be lost (SPEC §16). So the send runs here, outside
        the lock, with its own deadline (``SMS_SEND_TIMEOUT_SECONDS``); each step writes
        its outcome back in a short locked section, only if the page still waits for this
        send. A call the page did not start (a hostile client's) finds nothing to send.
        """
        async with self:
            if not self._outgoing:
                return
            phone_number, self._outgoing = self._outgoing, ""
            send_id, ip, language = self._send_id, self._client_ip(), self.language
        try:
            issued = await auth.issue_code(phone_number, ip)
        except DomainError as error:
            async with self:
                if self._send_id != send_id:
                    return
                self.requesting = False
                if isinstance(error, RateLimited):
                    self._retry_until = time.time() + error.retry_after
                else:
                    self._fail(error)
                clock = self._start_clock()
            if clock is not None:
                yield clock
            return
        except Exception:  # the database, say: reported as any handler's error, the button freed
            async with self:
                if self._send_id == send_id:
                    self.requesting = False
            raise
        async with self:
            if self._send_id != send_id:  # the person went back meanwhile: this code is not theirs now
                stale = True
            else:
                stale = False
                self.requesting = False
                self.phone_number, self.demo_code = issued.phone_number, ""
                self.step, self.code_dead, self._tried_codes = "code", "", []
                self.sending, self.sms_late, self.send_failed = True, False, False
                # A send whose task died with its worker is over after its deadline.
                self._sending_until = time.time() + settings.sms_send_timeout_seconds + SEND_GRACE_SECONDS
        if stale:
            await auth.withdraw_code(issued)
            return
        delivery = asyncio.ensure_future(auth.deliver_code(issued, language))
        done, _ = await asyncio.wait({delivery}, timeout=settings.sms_late_notice_seconds)
        if not done:
            async with self:
                if self._send_id == send_id and self.sending:
                    self.sms_late = True
        try:
            accepted = await delivery  # a failed send is withdrawn before its error comes
        except Exception as error:
            await self._send_failed(send_id)
            if isinstance(error, DomainError):  # the gateway failed or missed the deadline
                return
            raise  # a fault of ours: reported as any handler's error
        if accepted is None:  # another request for the number (another tab) replaced this code
            await self._send_failed(send_id)
            return
        async with self:
            if self._send_id != send_id:
                return
            now = time.time()
            self.sending, self.sms_late = False, False
            self.demo_code = accepted.code if settings.demo_mode else ""
            # The lifetime counts from the gateway's acceptance, as the database has it.
            self._code_until = now + (accepted.expires_at - utcnow()).total_seconds()
            cooldown = settings.send_cooldown_seconds if settings.rate_limits_enabled else 0
            self._resend_until = now + cooldown
            clock = self._start_clock()
        if clock is not None:
            yield clock

    async def _send_failed(self, send_id: int) -> None:
        """The page says the send failed and offers a new code at once (in send_code)."""
        async with self:
            if self._send_id == send_id:
                self.sending, self.sms_late, self.send_failed = False, False, True
                self._resend_until = 0.0  # the failed send holds no cooldown
                self._update_clocks()

    @rx.event
    def count_down(self, _result: Any = None):
        """Tick the countdowns once a second, paced by the browser (so they end with the page).

        Only the display depends on them: the server checks the clock itself in every handler.
        """
        self._update_clocks()
        if self._clocks_running():
            self._ticking = True
            return rx.call_script(ONE_SECOND, callback=LoginState.count_down)
        self._ticking = False

    @rx.event
    async def code_typed(self, value: Any):
        """The code field changed: sign in by itself once the last digit is typed."""
        if isinstance(value, str) and len("".join(value.split())) == settings.code_length:
            async for update in self.confirm_code({"code": value}):
                yield update

    @rx.event
    async def confirm_code(self, form_data: dict[str, Any]):
        """Check the code; on success the browser trades a one-time claim for its cookie."""
        self._update_clocks()
        if self.step != "code" or self.code_dead or self.confirming:
            return
        raw = text_field(form_data, "code")
        typed = "".join(raw.split()) if isinstance(raw, str) else raw
        if typed in self._tried_codes:  # the same code again (double Enter, auto-submit + Enter)
            return
        self._clear_error()
        self.confirming = True
        yield
        try:
            signed_in = await auth.sign_in_browser(self.phone_number, raw)
            self._hold_data_of(signed_in.user_id)  # the page now shows this user's number
        except TooManyAttempts as error:
            self._fail(error)
            self.code_dead = "attempts"
            self.confirming = False
            return
        except DomainError as error:
            self._fail(error)
            if error.code == "code.wrong":
                self._tried_codes = [*self._tried_codes, typed]
            self.confirming = False
            return
        await self._remember_language_on_account(signed_in.user_id)
        self.demo_code, self.step, self.confirming = "", "done", False
        yield rx.call_script(
            browser_session_script("POST", {"claim": signed_in.claim}, self._profile_url()),
            callback=LoginState.session_claimed,
        )

    @rx.event
    def session_claimed(self, ok: Any):
        """The cookie exchange failed (the page reloads on success)."""
        if ok is not True:  # the code is used up: start again from the phone number
            self.step, self.phone_number = "phone", ""
            self.error_code, self.error_field, self.error_params = "error.unknown", "", {}

    @rx.event
    def change_phone(self):
        if self.step != "code" or self.confirming:
            return
        self.step, self.phone_number, self.demo_code, self.code_dead = "phone", "", "", ""
        # A send still under way for the old number no longer reaches this page.
        self._send_id += 1
        self.sending = self.sms_late = self.send_failed = False
        self._clear_error()
