"""The profile page: sharing tools, the referral list, and activation of someone's code.

Other people's numbers are shown masked, the person's own formatted (SPEC §3); times
relative, with the exact time on hover (SPEC §8). What is shown is kept raw on the
server and rendered in the page's language, so a language switch re-renders it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import reflex as rx
import segno

from referral_app.domain import invites, phones
from referral_app.domain.clock import utcnow
from referral_app.domain.errors import DomainError, NotAuthenticated
from referral_app.domain.referrals import Referral
from urllib.parse import unquote

from referral_app.infra import metrics
from referral_app.i18n import TIMEZONE_COOKIE, format_moment, format_relative, known_timezone, translate, translate_plural
from referral_app.infra.cookies import read_cookie
from referral_app.infra.hosts import link_base
from referral_app.infra.live import referral_feed
from referral_app.services import auth, profile as profiles, referrals
from referral_app.services.profile import ProfileView
from referral_app.settings import settings
from referral_app.state.base import SessionState, browser_session_script, text_field

LOGIN_ROUTE = "/"


def share_link(origin: str, invite_code: str) -> str:
    """``PUBLIC_URL`` (else ``origin``, the page's own, checked by ``infra/hosts.link_base``)
    + ``/?ref=CODE`` (SPEC §9)."""
    return f"{settings.public_url or origin}/?ref={invite_code}"


def qr_code_svg(link: str) -> str:
    """A QR code of ``link`` as an SVG data URI, made on the server (segno; error level M,
    the standard 4-module quiet zone), black on white in either colour scheme."""
    return segno.make(link, error="m").svg_data_uri(scale=5, border=4, dark="#000", light="#fff")


def _raw(referral: Referral) -> list[str]:
    return [referral.phone_number, referral.activated_at.astimezone(UTC).isoformat()]


class ProfileState(SessionState):
    """Everything shown is re-read from the database after the session is re-checked."""

    loaded: bool = False
    phone_number: str = ""
    invite_code: str = ""
    share_link: str = ""
    qr_code: str = ""
    activated_code: str = ""
    invited_by: str = ""  # masked
    invited_count: int = 0
    next_cursor: str = ""
    prefill_code: str = ""
    error_code: str = ""
    error_params: dict[str, str] = {}
    activating: bool = False
    loading_more: bool = False
    logging_out: bool = False
    _rows: list[list[str]] = []  # [E.164, ISO time] of the referrals shown, newest first
    _timezone: str = "UTC"  # the browser's, for exact times

    @rx.var
    def phone_display(self) -> str:
        return phones.format_phone(self.phone_number) if self.phone_number else ""

    @rx.var
    def referral_summary(self) -> str:
        return translate_plural("profile.referral_summary", self.invited_count, self.language)

    @rx.var
    def referrals(self) -> list[dict[str, str]]:
        """The list as shown: masked number, relative time, exact time and ISO time."""
        now = utcnow()
        shown = []
        for phone, when in self._rows:
            moment = datetime.fromisoformat(when)
            shown.append(
                {
                    "phone_number": phones.mask_phone(phone),
                    "activated_at": format_relative(moment, now, self.language),
                    "exact": format_moment(moment, self.language, self._timezone),
                    "iso": when,
                }
            )
        return shown

    @rx.var
    def share_text(self) -> str:
        return translate("profile.share_text", self.language, code=self.invite_code) if self.invite_code else ""

    @rx.var
    def error_text(self) -> str:
        return translate(self.error_code, self.language, **self.error_params) if self.error_code else ""

    def _fail(self, error: DomainError) -> None:
        self.error_code = error.code
        self.error_params = {key: str(value) for key, value in error.params.items()}

    def _signed_out(self, typed_code: str = ""):
        """Forget the page's data and go to the sign-in page.

        A session that had been there (its cookie came with the page) has ended: the
        sign-in page says so, and an invite code typed here comes back after signing in.
        """
        ended = self._session_token() is not None
        self.reset()
        query = {}
        if ended:
            query["session"] = "ended"
        if typed_code:
            query["ref"] = typed_code
        return rx.redirect(f"{LOGIN_ROUTE}?{urlencode(query)}" if query else LOGIN_ROUTE)

    def _load(self, view: ProfileView) -> None:
        """Show ``view`` (the profile and its first page of referrals), as the user whose data it is."""
        self._hold_data_of(view.user_id)
        profile, page = view.profile, view.first_page
        self.phone_number = profile.phone_number
        self.invite_code = profile.invite_code
        self.activated_code = profile.activated_invite_code or ""
        self.invited_by = phones.mask_phone(profile.invited_by) if profile.invited_by else ""
        self.invited_count = profile.invited_count
        self._rows = [_raw(item) for item in page.items]
        self.next_cursor = page.next_cursor or ""
        # The socket's Origin passed the origin policy and its Host the host check; the page's
        # URL is what the client says. Neither is used unless its host is one configured.
        page = f"{self.router.url.scheme}://{self.router.url.netloc}" if self.router.url.netloc else ""
        link = share_link(link_base(self.router.headers.origin, page), profile.invite_code)
        if link != self.share_link:
            self.share_link, self.qr_code = link, qr_code_svg(link)
        self.loaded = True

    @rx.event
    async def on_load(self):
        """Load the profile of the signed-in user; pre-fill a ``?ref=`` code."""
        try:  # the session is checked in the same read
            view = await profiles.read_profile(self._session_token())
        except NotAuthenticated:
            return self._signed_out()
        self.error_code = ""
        zone = read_cookie(self.router.headers.cookie, TIMEZONE_COOKIE, secure=False)
        self._timezone = known_timezone(unquote(zone) if zone else None)
        self._load(view)
        ref = self.router.url.query_parameters.get("ref")
        self.prefill_code = ""
        if ref is not None and not self.activated_code:
            try:
                code = invites.normalize_invite_code(ref)
            except DomainError:
                code = ""
            self.prefill_code = "" if code == self.invite_code else code
        # Each load (a reconnect's too) starts a watcher; the tab's older one ends.
        return [await self._resolve_language(view.user_id), ProfileState.watch_referrals]

    @rx.event(background=True)
    async def watch_referrals(self):
        """While the page is open, show new referrals as soon as somebody enters the code.

        The watcher sleeps on its subscription (no timer) and ends when the page's
        websocket closes (``infra/framework/reflex_socket.py``), when a newer load of the same tab
        replaces it, or when the page is signed out.
        """
        async with self:
            if self._state_was_lost():  # Redis lost the page's state: the page reloads it
                return SessionState.resume
            user_id = await self._authenticated_user_id()
            if user_id is None:
                return
            session = self.router.session
            page, socket = session.client_token, session.session_id
        subscription = await referral_feed.subscribe(user_id, page=page, session=socket)
        # Somebody may have entered the code between the page's load and this subscription
        # (after a Redis restart that gap is a page reload long): not heard, so the count,
        # one row, is looked at once; a change is shown as an update would be.
        # -1: the account is gone; the update's session check then ends the watcher.
        if await profiles.invited_count(user_id) != self.invited_count:
            subscription.notify()
        try:
            with metrics.track_live_subscriber():
                while await subscription.wait():
                    async with self:
                        if self._state_was_lost():
                            return SessionState.resume
                        try:  # the session is checked in the same read
                            view = await profiles.read_profile(self._session_token())
                        except NotAuthenticated:
                            return
                        self._hold_data_of(view.user_id)
                        if view.user_id != user_id:
                            return
                        self._show_new_referrals(view)
        finally:
            subscription.close()

    def _show_new_referrals(self, view: ProfileView) -> None:
        """Refresh the count and put new referrals (always the newest) on top of the list."""
        profile, page = view.profile, view.first_page
        shown = {phone for phone, _ in self._rows}
        fresh = [_raw(item) for item in page.items if item.phone_number not in shown]
        self.invited_count = profile.invited_count
        had_rows = bool(self._rows)
        self._rows = fresh + self._rows
        if not had_rows:  # the list was empty: paging starts here
            self.next_cursor = page.next_cursor or ""

    @rx.event
    async def activate(self, form_data: dict[str, Any]):
        """Enter someone else's invite code (once); the code's owner sees it live.

        A repeat (double click, double Enter) after the code was taken does nothing.
        """
        if self.activated_code or self.activating:
            return
        raw_code = text_field(form_data, "invite_code")
        if await self._authenticated_user_id() is None:
            typed = ""
            try:
                typed = invites.normalize_invite_code(raw_code)
            except DomainError:
                pass
            yield self._signed_out(typed)
            return
        self.error_code, self.activating = "", True
        yield
        token = self._session_token()
        try:
            # The inviter's open pages hear of it from the message bus (services/subscribers.py).
            await referrals.activate_invitation(token, raw_code)
            view = await profiles.read_profile(token)
        except DomainError as error:
            self._fail(error)
        else:
            self._load(view)
            self.prefill_code = ""
            yield rx.toast.success(translate("profile.activated_success", self.language))
        finally:
            self.activating = False

    @rx.event
    async def load_more(self):
        """Append the next page of referrals (once per page, however often it is clicked)."""
        if not self.next_cursor or self.loading_more:
            return
        cursor = self.next_cursor
        self.loading_more = True
        yield
        if await self._authenticated_user_id() is None:
            yield self._signed_out()
            return
        try:
            page = await profiles.referral_page(self._session_token(), cursor)
        except DomainError as error:
            self._fail(error)
        else:
            if self.next_cursor == cursor:
                self._rows = self._rows + [_raw(item) for item in page.items]
                self.next_cursor = page.next_cursor or ""
        finally:
            self.loading_more = False

    @rx.event
    def shared(self, outcome: Any):
        """What the share button did in the browser: a toast in the page's language."""
        messages = {"copied": "profile.share_copied", "failed": "profile.share_failed"}
        if outcome in messages:
            toast = rx.toast.success if outcome == "copied" else rx.toast.error
            return toast(translate(messages[outcome], self.language))

    @rx.event
    async def logout(self):
        """End the session on the server, then drop the cookie (once)."""
        if self.logging_out:
            return
        self.logging_out = True
        yield
        token = self._session_token()
        if token is not None:
            await auth.sign_out(token, require_live=False)
        self.reset()
        self.logging_out = True  # until the page leaves
        yield rx.call_script(browser_session_script("DELETE", None, LOGIN_ROUTE, always_go=True))

