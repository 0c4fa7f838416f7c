"""What every page state shares: the signed-in user, re-checked on each event."""

from __future__ import annotations

import json
import logging
from typing import Any

import reflex as rx

from referral_app.infra.cookies import BINDING_STORAGE_KEY, bound_session_token
from referral_app.infra.db import UNAVAILABLE_ERRORS
from referral_app.infra.frontend import backend_base_url_js
from referral_app.infra.framework.reflex_state import hydrate_storage_value, state_was_lost
from referral_app.i18n import (
    LANGUAGE_COOKIE,
    LANGUAGE_COOKIE_MAX_AGE,
    available_languages,
    catalogue,
    choose_language,
    language_name,
    translate,
)
from referral_app.services import auth, profile as profiles
from referral_app.settings import settings

SESSION_API_PATH = "/api/v1/auth/browser_session/"

logger = logging.getLogger(__name__)

# Vars of the page states that mean "a button is waiting for the server" (it shows its
# loading state and ignores clicks). A handler that the database fails can leave one set
# (it was sent to the page before the failure): SessionState.service_unavailable clears them.
BUSY_VARS = ("requesting", "confirming", "activating", "loading_more", "logging_out")


def text_field(form_data: Any, name: str) -> Any:
    """A field of submitted form data; whatever the client sent, never an exception."""
    return form_data.get(name) if isinstance(form_data, dict) else None


def browser_session_script(method: str, body: dict | None, then_go_to: str, always_go: bool = False) -> str:
    """JavaScript that calls the browser-session endpoint, then loads ``then_go_to``.

    On a sign-in (POST) the answer's binding goes into this origin's ``localStorage``
    (``infra/cookies.py``); a sign-out (DELETE) removes it. A full page load follows (on
    success, or ``always_go``) so that the websocket reconnects carrying the new cookie
    and binding. Resolves to false if the page stays (the call failed); a page that leaves
    never resolves.
    """
    key = json.dumps(BINDING_STORAGE_KEY)
    if method == "POST":
        keep = (f".then((r) => r.ok ? r.json().then((b) => {{ localStorage.setItem({key}, b.binding); "
                "return true; }) : false)")
    else:
        keep = f".then((r) => {{ localStorage.removeItem({key}); return r.ok; }})"
    payload = "" if body is None else f", body: JSON.stringify({json.dumps(body)})"
    go = "true" if always_go else "ok"
    # The backend as the page's websocket reaches it (its own origin, see
    # referral_app/infra/frontend.py), so the cookie is set where the websocket connects.
    return (
        f"((base) => {{ "
        f"return fetch(new URL({json.dumps(SESSION_API_PATH)}, base), "
        f"{{method: {json.dumps(method)}, credentials: 'include', "
        f"headers: {{'Content-Type': 'application/json'}}{payload}}}); }})({backend_base_url_js()})"
        f"{keep}.catch(() => false)"
        # A leaving page sends nothing more: Reflex closed its socket on beforeunload, a
        # callback event would reconnect it only to be cut off, and that can leave the
        # session's Redis state lock held (10 s), stalling the next page's load.
        f".then((ok) => {{ if (!({go})) return ok; window.location.assign({json.dumps(then_go_to)}); "
        "return new Promise(() => {}); })"
    )


# Shows the page once its texts are in the person's language (see components/head.py).
# A field that asked for focus while the page was hidden gets it now.
_SHOW_PAGE_SCRIPT = (
    "((lang) => {{ const root = document.documentElement; root.lang = lang; "
    "if (!root.classList.contains('i18n-pending')) return; root.classList.remove('i18n-pending'); "
    "const field = document.querySelector('[autofocus]'); "
    "if (field && document.activeElement === document.body) field.focus(); }})({language})"
)


class SessionState(rx.State):
    """Base of the page states. The token lives only in an HttpOnly cookie, read here.

    No page state without a valid session: the states below this one hold the data of the
    user whose session :meth:`_authenticated_user_id` last confirmed (``_data_owner``).
    Every hydrate (each time a tab connects or reconnects, before Reflex sends it the page
    state) re-checks the cookie's session (:func:`check_session_on_hydrate`); when it no longer
    belongs to that user (signed out, revoked, expired, deactivated, another account, or an
    old tab's client token used without the cookie), every page state is reset to its
    defaults before anything is sent. A state that derives from this one gets this without
    code of its own; client-side vars (``rx.Cookie``, ``rx.LocalStorage``) come back from
    the browser after the reset, as Reflex hydrates them.

    It also holds the person's language (SPEC §8): ``language``, and ``messages``, the
    catalogue of that language, from which every page takes its texts. One build of the
    pages serves every language; switching sends the new catalogue, nothing is rebuilt.
    """

    # The user whose data the page states hold; None: nobody's (a sign-in in progress).
    _data_owner: int | None = None
    # The binding of this browser's session cookie, from this origin's localStorage: without
    # it a session cookie counts for nothing (a sibling's tossed cookie; infra/cookies.py).
    session_binding: str = rx.LocalStorage("", name=BINDING_STORAGE_KEY)

    language: str = settings.default_language
    messages: dict[str, str] = catalogue(settings.default_language)
    # The person's own choice in this browser (a cookie, so the server sees it with the page).
    language_choice: str = rx.Cookie("", name=LANGUAGE_COOKIE, max_age=LANGUAGE_COOKIE_MAX_AGE, same_site="lax")

    @rx.var
    def language_options(self) -> list[list[str]]:
        """``[code, own name]`` of every catalogue, for the language switch."""
        return [[code, language_name(code)] for code in available_languages()]

    def _use_language(self, language: str):
        """Show the page in ``language``; returns the script that marks the document with it."""
        if language != self.language:
            self.language, self.messages = language, catalogue(language)
        return rx.call_script(_SHOW_PAGE_SCRIPT.format(language=json.dumps(language)))

    async def _resolve_language(self, user_id: int | None = None):
        """Choose the page's language: this browser's choice, the account's, the browser's
        ``Accept-Language``, then ``DEFAULT_LANGUAGE``. Call it first in every page's load."""
        choice = self.language_choice if self.language_choice in available_languages() else None
        if choice is None and user_id is not None:
            choice = await profiles.account_language(user_id)
            if choice in available_languages():
                self.language_choice = choice  # remembered in this browser too
        return self._use_language(choose_language(choice, self.router.headers.accept_language))

    async def _remember_language_on_account(self, user_id: int) -> None:
        """At sign-in: the choice made in this browser goes with the account."""
        if self.language_choice in available_languages():
            await profiles.set_account_language(user_id, self.language_choice)

    @rx.event
    async def switch_language(self, language: Any):
        """The person chose ``language``: remembered in a cookie and, signed in, on the account."""
        if not isinstance(language, str) or language not in available_languages():
            return None
        self.language_choice = language
        user_id = await self._authenticated_user_id()
        if user_id is not None:
            await profiles.set_account_language(user_id, language)
        return self._use_language(language)

    def _session_token(self, binding: str | None = None) -> str | None:
        """The session token of the cookie this page's binding (``binding``, else the one the
        page sent on connecting) is for; None without one (infra/cookies.py)."""
        # The page's origin says whether the socket is HTTPS: then only the __Host- cookie counts
        # (infra/cookies.py). The origin policy has already refused pages of other origins.
        secure = self.router.headers.origin.lower().startswith("https://")
        return bound_session_token(
            self.router.headers.cookie, secure, self.session_binding if binding is None else binding
        )

    async def _authenticated_user_id(self) -> int | None:
        """The id of the user whose live session cookie came with this connection.

        A handler reads user data only after this confirmed a user, so from then on the
        page states hold that user's data (``_hold_data_of``).
        """
        user_id = await self._session_user_id()
        if user_id is not None:
            self._hold_data_of(user_id)
        return user_id

    async def _session_user_id(self, binding: str | None = None) -> int | None:
        """The user of this page's live session cookie (see :meth:`_session_token`); None without one."""
        return await auth.user_of(self._session_token(binding))

    def _hold_data_of(self, user_id: int) -> None:
        """Record that the page states now hold data of ``user_id`` (see the class docstring)."""
        if self._data_owner != user_id:
            self._data_owner = user_id

    @rx.event
    async def service_unavailable(self):
        """A handler failed because the database is unavailable (:func:`backend_exception_handler`):
        no button stays in its loading state, and the page says so in its language."""
        pending = list(SessionState.get_substates())
        while pending:
            state_class = pending.pop()
            pending.extend(state_class.get_substates())
            busy = [name for name in BUSY_VARS if name in state_class.base_vars]
            if busy:
                state = await self.get_state(state_class)
                for name in busy:
                    setattr(state, name, False)
        return rx.toast.error(translate("service.unavailable", self.language), id="service-unavailable")

    def _state_was_lost(self) -> bool:
        """Whether the server lost this page's state (Redis restarted or the state expired)
        while a background task had released it (infra/framework/reflex_state.py): such a task returns
        :meth:`resume` and stops."""
        return state_was_lost(self)

    @rx.event
    def resume(self):
        """Sent by a page whose state the server lost (see :meth:`_state_was_lost`). An event
        from the page carries its route, and Reflex rehydrates a routeless tree before it
        runs one: the page's state is rebuilt (``hydrate``, then the page's ``on_load`` from
        the session cookie and the database), so the page goes on by itself."""

    async def _drop_stale_user_data(self, binding: str | None = None) -> bool:
        """Reset every page state if the session no longer belongs to the user whose data they
        hold; whether it did. Run by :func:`check_session_on_hydrate` before every hydrate, with
        the binding the reconnecting page sent (``binding``)."""
        if self._data_owner is None or await self._session_user_id(binding) == self._data_owner:
            return False
        self.reset()  # this state and every page state below it, _data_owner included
        return True


def backend_exception_handler(exception: Exception):
    """Reflex's ``backend_exception_handler``: a page event that the database failed (down,
    refusing, saturated: ``UNAVAILABLE_ERRORS``) gets :meth:`SessionState.service_unavailable`
    (a message in the page's language, its buttons usable again), as the API answers 503;
    anything else gets Reflex's own handler (logged with its traceback, a generic toast)."""
    if isinstance(exception, UNAVAILABLE_ERRORS):
        # The driver's first line only: SQLAlchemy's own text carries the statement and its parameters.
        reason = str(getattr(exception, "orig", None) or exception).strip().splitlines()[:1]
        logger.warning("database unavailable: %s", type(exception).__name__, extra={"reason": "".join(reason)})
        return SessionState.service_unavailable()
    from reflex.app import default_backend_exception_handler

    return default_backend_exception_handler(exception)


def hydrate_binding(payload: object) -> str | None:
    """The binding a (re)connecting page sent with ``hydrate_and_load`` ("" when its storage has
    none); None when the event carries no storage values (then the state's own counts)."""
    return hydrate_storage_value(payload, SessionState, "session_binding")


async def check_session_on_hydrate(session_state: SessionState, payload: object) -> None:
    """Before a hydrate event sends a tab its whole state (``referral_app.py`` has
    ``infra/framework/reflex_state.py`` call it), :meth:`SessionState._drop_stale_user_data`
    re-checks the cookie's session."""
    await session_state._drop_stale_user_data(hydrate_binding(payload))
