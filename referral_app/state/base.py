"""What every page state shares: the signed-in user, re-checked on each event."""

from __future__ import annotations

import json
from typing import Any

import reflex as rx

from referral_app.infra.cookies import session_token_from_header
from referral_app.infra.db import session_scope
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
    # The backend's URL on the host name the page was opened with, as Reflex's own
    # websocket does, so the cookie is set where the websocket connects.
    backend = json.dumps(rx.config.get_config().api_url)
    return (
        f"((base) => {{ base.hostname = window.location.hostname; "
        f"return fetch(new URL({json.dumps(SESSION_API_PATH)}, base), "
        f"{{method: {json.dumps(method)}, credentials: 'include', "
        f"headers: {{'Content-Type': 'application/json'}}{payload}}}); }})(new URL({backend}))"
        ".then((r) => r.ok, () => false)"
        # A leaving page sends nothing more: Reflex closed its socket on beforeunload, a
        # callback event would reconnect it only to be cut off, and that can leave the
        # session's Redis state lock held (10 s), stalling the next page's load.
        f".then((ok) => {{ if (!({go})) return ok; window.location.assign({json.dumps(then_go_to)}); "
        "return new Promise(() => {}); })"
    )


class SessionState(rx.State):
    """Base of the page states. The token lives only in an HttpOnly cookie, read here."""

    def _session_token(self) -> str | None:
        # The page's origin says whether the socket is HTTPS: then only the __Host- cookie counts
        # (infra/cookies.py). The origin policy has already refused pages of other origins.
        secure = self.router.headers.origin.lower().startswith("https://")
        return session_token_from_header(self.router.headers.cookie, secure)

    def _authenticated_user_id(self) -> int | None:
        """The id of the user whose live session cookie came with this connection."""
        token = self._session_token()
        if token is None:
            return None
        with session_scope() as db:
            try:
                return sessions.authenticated_user_id(db, token)
            except DomainError:
                return None
