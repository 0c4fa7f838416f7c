"""What every page state shares: the signed-in user, re-checked on each event."""

from __future__ import annotations

import json
from typing import Any

import reflex as rx
from reflex.middleware import Middleware

from referral_app.infra.cookies import session_token_from_header
from referral_app.infra.db import session_scope
from referral_app.infra.frontend import backend_base_url_js
from referral_app.domain import sessions
from referral_app.domain.errors import DomainError
from referral_app.i18n import translate

SESSION_API_PATH = "/api/v1/auth/browser_session/"


def message_for(error: DomainError) -> str:
    """The user-facing text of a domain error."""
    return translate(error.code, **error.params)


def text_field(form_data: Any, name: str) -> Any:
    """A field of submitted form data; whatever the client sent, never an exception."""
    return form_data.get(name) if isinstance(form_data, dict) else None


def browser_session_script(method: str, body: dict | None, then_go_to: str, always_go: bool = False) -> str:
    """JavaScript that calls the browser-session endpoint, then loads ``then_go_to``.

    A full page load follows (on success, or ``always_go``) so that the websocket
    reconnects carrying the new cookie. Resolves to false if the page stays (the call
    failed); a page that leaves never resolves.
    """
    payload = "" if body is None else f", body: JSON.stringify({json.dumps(body)})"
    go = "true" if always_go else "ok"
    # The backend as the page's websocket reaches it (its own origin, see
    # referral_app/infra/frontend.py), so the cookie is set where the websocket connects.
    return (
        f"((base) => {{ "
        f"return fetch(new URL({json.dumps(SESSION_API_PATH)}, base), "
        f"{{method: {json.dumps(method)}, credentials: 'include', "
        f"headers: {{'Content-Type': 'application/json'}}{payload}}}); }})({backend_base_url_js()})"
        ".then((r) => r.ok, () => false)"
        # A leaving page sends nothing more: Reflex closed its socket on beforeunload, a
        # callback event would reconnect it only to be cut off, and that can leave the
        # session's Redis state lock held (10 s), stalling the next page's load.
        f".then((ok) => {{ if (!({go})) return ok; window.location.assign({json.dumps(then_go_to)}); "
        "return new Promise(() => {}); })"
    )


class SessionState(rx.State):
    """Base of the page states. The token lives only in an HttpOnly cookie, read here.

    No page state without a valid session: the states below this one hold the data of the
    user whose session :meth:`_authenticated_user_id` last confirmed (``_data_owner``).
    Every hydrate (each time a tab connects or reconnects, before Reflex sends it the page
    state) re-checks the cookie's session (:class:`HydrateSessionCheck`); when it no longer
    belongs to that user (signed out, revoked, expired, deactivated, another account, or an
    old tab's client token used without the cookie), every page state is reset to its
    defaults before anything is sent. A state that derives from this one gets this without
    code of its own; client-side vars (``rx.Cookie``, ``rx.LocalStorage``) come back from
    the browser after the reset, as Reflex hydrates them.
    """

    # The user whose data the page states hold; None: nobody's (a sign-in in progress).
    _data_owner: int | None = None

    def _session_token(self) -> str | None:
        # The page's origin says whether the socket is HTTPS: then only the __Host- cookie counts
        # (infra/cookies.py). The origin policy has already refused pages of other origins.
        secure = self.router.headers.origin.lower().startswith("https://")
        return session_token_from_header(self.router.headers.cookie, secure)

    def _authenticated_user_id(self) -> int | None:
        """The id of the user whose live session cookie came with this connection.

        A handler reads user data only after this confirmed a user, so from then on the
        page states hold that user's data (``_hold_data_of``).
        """
        user_id = self._session_user_id()
        if user_id is not None:
            self._hold_data_of(user_id)
        return user_id

    def _session_user_id(self) -> int | None:
        token = self._session_token()
        if token is None:
            return None
        with session_scope() as db:
            try:
                return sessions.authenticated_user_id(db, token)
            except DomainError:
                return None

    def _hold_data_of(self, user_id: int) -> None:
        """Record that the page states now hold data of ``user_id`` (see the class docstring)."""
        if self._data_owner != user_id:
            self._data_owner = user_id

    def _drop_stale_user_data(self) -> bool:
        """Reset every page state if the session no longer belongs to the user whose data they
        hold; whether it did. Run by :class:`HydrateSessionCheck` before every hydrate."""
        if self._data_owner is None or self._session_user_id() == self._data_owner:
            return False
        self.reset()  # this state and every page state below it, _data_owner included
        return True


_HYDRATE_EVENTS = frozenset(f"{rx.State.get_full_name()}.{name}" for name in ("hydrate", "hydrate_and_load"))


class HydrateSessionCheck(Middleware):
    """Reflex app middleware (``app.add_middleware``): before a hydrate event sends a tab its
    whole state, :meth:`SessionState._drop_stale_user_data` re-checks the cookie's session."""

    async def preprocess(self, app, state, event) -> None:
        if event.name in _HYDRATE_EVENTS:
            session_state = await state.get_state(SessionState)
            session_state._drop_stale_user_data()
        return None
