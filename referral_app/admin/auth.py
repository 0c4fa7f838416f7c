"""The admin's login, its server-side sessions, and its protection against forged requests.

For whoever adds an admin page or action
----------------------------------------
* **Who is signed in:** ``current_staff(request)`` gives the :class:`StaffIdentity`
  (``id``, ``username``) of the request, or ``None`` before login. Every route that
  sqladmin runs behind its login (``ModelView`` pages, ``@action``, ``@expose``) has one.
  sqladmin's own ``get_current_user_id(request)`` (its audit and authorization backends
  read it) gives the same ``id``.
* **Protecting a form or action:** nothing to do, as long as it does not change anything
  on a GET. Every POST, PUT, PATCH and DELETE under ``/admin`` passes :class:`AdminGuard`
  first, which refuses (403) a request that did not come from an admin page of this
  app: its ``Origin`` must be allowed by the origin policy (``infra/origins.py``) and it
  must carry the CSRF token of the session (form field ``csrf_token`` or header
  ``X-CSRF-Token``). Pages that extend sqladmin's templates get the token without
  help: ``templates/sqladmin/base.html`` puts it in ``<meta name="csrf-token">`` and adds
  it to every POST form when it is submitted; a template that must work without
  JavaScript can write ``{{ csrf_input(request) }}`` inside its form.
* sqladmin's ``@action`` routes answer only POST here (they run on GET in sqladmin), and
  the pages' links to them and to "Logout" are sent as POST forms with the token.

Sessions
--------
Logging in starts a row in ``staff_sessions`` (``services/staff.py``); the cookie holds the
random session id, the database only its SHA-256. A session ends when it is 8 hours old,
on logout (POST, with the token) and when the staff account is deactivated (``python -m
referral_app deactivate-admin NAME``); from then on its cookie opens nothing. The cookie
is ``HttpOnly``, ``SameSite=Lax``, ``Path=/``, and over HTTPS ``Secure`` with a
``__Host-`` name, so that a sibling subdomain can neither read nor replace it
(``infra/cookies.py``).

Over plain HTTP a sibling can still put a copy of its own staff cookie beside ours (cookie
tossing, ``infra/cookies.py``). So a staff session is bound to the browser's admin pages:
the login page makes a random binding, keeps it in this origin's ``localStorage`` (which
no sibling can write) and sends it with the login form (``staff_binding``); the cookie's
value is ``<session id>.<binding>``. Every POST sends the binding again (the pages' script
adds the field, or the ``X-Staff-Binding`` header), and only the cookie value that carries
it counts: a sibling's cookie runs no action, under nobody's name. A page (GET) cannot
send it, so it shows the session of the one cookie there is; its script compares that
cookie's binding (``<meta name="staff-binding">``) with its own and, when they differ (a
cookie this browser's pages did not get), leaves for the login page. A GET that carries
two staff cookies is sent once to the same address, after the sibling's copy is deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from markupsafe import Markup, escape
from sqladmin.authentication import AuthenticationBackend
from starlette.datastructures import URL
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.domain.errors import InvalidCredentials, StaffLockedOut
from referral_app.domain.staff import STAFF_SESSION_TTL, StaffIdentity
from referral_app.i18n import translate
from referral_app.infra import cookies
from referral_app.infra.asgi import BodyTooLarge, ClientGone, read_body, replay_body
from referral_app.infra.client_ip import request_client_ip
from referral_app.infra.origins import origin_allowed, source_origin
from referral_app.services import staff as staff_service
from referral_app.settings import settings

__all__ = ["AdminGuard", "StaffAuth", "StaffIdentity", "csrf_input", "csrf_token", "current_staff", "staff_binding"]

ADMIN_COOKIE = cookies.ADMIN_COOKIE
# Before login there is no session to bind the login form's token to: a random value does.
LOGIN_COOKIE = cookies.LOGIN_COOKIE
ADMIN_SESSION_SECONDS = int(STAFF_SESSION_TTL.total_seconds())
CSRF_FIELD, CSRF_HEADER = "csrf_token", b"x-csrf-token"
BINDING_FIELD, BINDING_HEADER = "staff_binding", b"x-staff-binding"
# A binding the login page makes: 128 random bits or more, URL-safe (base64url or hex).
_BINDING_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# Marks a GET already sent back once because it carried two staff cookies (no second round).
RETRY_COOKIE = "referral_admin_retry"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Admin forms are small; a bigger body is refused before it is read further.
MAX_FORM_BYTES = 64 * 1024
_STATE_STAFF, _STATE_BINDING = "staff", "admin_csrf_binding"
_STATE_SESSION, _STATE_PAGE_BINDING = "admin_session_id", "admin_staff_binding"


def current_staff(request: Request) -> StaffIdentity | None:
    """The staff account signed in on this admin request, or None."""
    return request.scope.get("state", {}).get(_STATE_STAFF)


def csrf_token(request: Request) -> str:
    """The token that this browser's admin forms must send back (HMAC-SHA256 of its session)."""
    binding = request.scope.get("state", {}).get(_STATE_BINDING, "")
    return _token_for(binding)


def csrf_input(request: Request) -> Markup:
    """``<input type="hidden" name="csrf_token" value="...">`` for a template's form."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(csrf_token(request))}">')


def staff_binding(request: Request) -> str:
    """The binding of the staff cookie this page was shown with ("" before login)."""
    return request.scope.get("state", {}).get(_STATE_PAGE_BINDING, "")


def valid_binding(value: object) -> bool:
    return isinstance(value, str) and 22 <= len(value) <= 128 and set(value) <= _BINDING_CHARS


def session_cookie_value(session_id: str, binding: str) -> str:
    """The staff cookie's value: ``<session id>.<binding>``."""
    return f"{session_id}.{binding}"


def _split(value: str) -> tuple[str, str] | None:
    session_id, dot, binding = value.rpartition(".")
    return (session_id, binding) if dot and session_id and valid_binding(binding) else None


def _bound(values: list[str], presented: str) -> tuple[str, str] | None:
    """The (session id, binding) of the cookie value whose binding the page presented."""
    if not valid_binding(presented):
        return None
    for value in values:
        parts = _split(value)
        if parts is not None and hmac.compare_digest(parts[1], presented):
            return parts
    return None


def _token_for(binding: str) -> str:
    key = hashlib.sha256(b"admin-csrf\0" + settings.secret_key.encode()).digest()
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def _refuse(scope: Scope) -> Response:
    return PlainTextResponse(translate("admin.forged"), status_code=403, headers={"Cache-Control": "no-store"})


class AdminGuard:
    """Pure ASGI, in front of every admin route (sqladmin adds it as the auth backend's middleware).

    * finds the staff account of the session cookie (:func:`current_staff`): on a POST,
      PUT, PATCH or DELETE only the cookie that carries the binding the page sent; on a
      GET the one cookie there is (two: sent back once, see the module docstring);
    * refuses a POST/PUT/PATCH/DELETE whose ``Origin`` the origin policy does not allow
      or that lacks the session's CSRF token;
    * gives a browser without a session the random value its login form's token is bound to.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = cookies.is_secure(scope)
        header = cookies.cookie_header(scope)
        path = scope["path"][len(scope.get("root_path", "")) :]
        unsafe = scope["method"] not in SAFE_METHODS
        body = b""
        if unsafe:
            try:
                body = await read_body(receive, MAX_FORM_BYTES)
            except BodyTooLarge:
                await PlainTextResponse(translate("request.too_large", limit=MAX_FORM_BYTES), 413)(scope, receive, send)
                return
            except ClientGone:
                return
            receive = replay_body(body, receive)

        values = cookies.cookie_values(header, ADMIN_COOKIE, secure)
        if unsafe:  # only the cookie whose binding this browser's admin page sent
            session = _bound(values, _submitted_field(scope, body, BINDING_FIELD, BINDING_HEADER))
        elif len(values) > 1 and not path.startswith("/statics/"):
            if cookies.read_cookie(header, RETRY_COOKIE, secure) is None:
                # A sibling's copy beside ours: the request gate (infra/gate.py) deletes it with this answer.
                await _once_more(scope, secure)(scope, receive, send)
                return
            session = None
        else:
            session = _split(values[0]) if values else None
        session_id = session[0] if session else None
        # The login form's token is bound to the random login value, never to a session:
        # a sibling's cookie must not keep a signed-out staff member from logging in.
        login_page = path.rstrip("/") == "/login"
        binding = None if login_page else session_id
        binding = binding or cookies.read_cookie(header, LOGIN_COOKIE, secure)
        new_binding = None
        if binding is None:
            binding = new_binding = secrets.token_urlsafe(32)
        state = scope.setdefault("state", {})
        state[_STATE_BINDING] = binding
        state[_STATE_SESSION] = session_id
        state[_STATE_PAGE_BINDING] = session[1] if session else ""
        state[_STATE_STAFF] = (
            await staff_service.staff_of_session(session_id) if session_id and not path.startswith("/statics/") else None
        )

        if unsafe and (
            not origin_allowed(source_origin(scope), scope)
            or not hmac.compare_digest(_submitted_token(scope, body), _token_for(binding))
        ):
            await _refuse(scope)(scope, receive, send)
            return

        if path.startswith("/statics/"):
            new_binding = None  # the page's own response gives the browser its value

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and new_binding is not None:
                headers = list(message.get("headers", []))
                headers.append(
                    (b"set-cookie", cookies.cookie_header_value(LOGIN_COOKIE, new_binding, secure, max_age=None))
                )
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _once_more(scope: Scope, secure: bool) -> Response:
    """Send a GET back to its own address (relative ``Location``), once (``RETRY_COOKIE``)."""
    query = scope.get("query_string", b"").decode("latin-1")
    response = Response(status_code=303, headers={"Location": scope["path"] + (f"?{query}" if query else ""),
                                                  "Cache-Control": "no-store"})
    response.raw_headers.append((b"set-cookie", cookies.cookie_header_value(RETRY_COOKIE, "1", secure, max_age=30)))
    return response


def _submitted_token(scope: Scope, body: bytes) -> str:
    """The token from the ``X-CSRF-Token`` header, else the form's ``csrf_token`` field."""
    return _submitted_field(scope, body, CSRF_FIELD, CSRF_HEADER)


def _submitted_field(scope: Scope, body: bytes, field: str, header: bytes) -> str:
    """A value from a request header, else from the form's field of that name ("" if none)."""
    for name, value in scope.get("headers", ()):
        if name.lower() == header:
            return value.decode("latin-1").strip()
    content_type = next(
        (v.decode("latin-1").lower() for k, v in scope.get("headers", ()) if k.lower() == b"content-type"), ""
    )
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("latin-1"), max_num_fields=100).get(field, [])
        return values[0] if len(values) == 1 else ""
    if content_type.startswith("multipart/form-data"):
        return _multipart_field(content_type, body, field)
    return ""


def _multipart_field(content_type: str, body: bytes, name: str) -> str:
    """One short text field of a multipart body (the token comes first in our forms)."""
    boundary = next((part.split("=", 1)[1].strip('"') for part in content_type.split(";")
                     if part.strip().startswith("boundary=")), "")
    if not boundary:
        return ""
    marker = f'name="{name}"'.encode()
    for part in body.split(b"--" + boundary.encode("latin-1")):
        head, _, value = part.partition(b"\r\n\r\n")
        if marker in head and b"filename=" not in head:
            return value.rstrip(b"\r\n").decode("latin-1")
    return ""


class StaffAuth(AuthenticationBackend):
    """sqladmin's authentication backend, on server-side staff sessions (see the module docstring)."""

    def __init__(self) -> None:  # no SessionMiddleware: the session lives in the database
        # Outermost inside the staff console's own app (whose error page would answer 500 before
        # anything outside it sees the error): the database down is a 503 (infra/responses.py).
        from referral_app.infra.responses import DatabaseUnavailableGuard

        self.middlewares = [Middleware(DatabaseUnavailableGuard, plain_text=True), Middleware(AdminGuard)]

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        binding = form.get(BINDING_FIELD)
        if not valid_binding(binding):  # the login page's script makes one; without it, no session
            return False
        try:
            session_id = await staff_service.sign_in(username, password, request_client_ip(request.scope))
        except (InvalidCredentials, StaffLockedOut):
            # One answer ("Invalid credentials.") for unknown user, wrong password and lockout.
            return False
        response = RedirectResponse(request.url_for("admin:index"), status_code=302)
        secure = cookies.is_secure(request.scope)
        response.raw_headers.append(
            (b"set-cookie", cookies.cookie_header_value(
                ADMIN_COOKIE, session_cookie_value(session_id, binding), secure, ADMIN_SESSION_SECONDS))
        )
        response.raw_headers.append((b"set-cookie", cookies.expired_cookie_header_value(LOGIN_COOKIE, secure)))
        return response

    async def logout(self, request: Request) -> Response | bool:
        secure = cookies.is_secure(request.scope)
        session_id = request.scope.get("state", {}).get(_STATE_SESSION)  # the bound one (AdminGuard)
        if session_id:
            await staff_service.sign_out(session_id)
        response = RedirectResponse(URL(str(request.url_for("admin:login"))), status_code=303)
        response.raw_headers.append((b"set-cookie", cookies.expired_cookie_header_value(ADMIN_COOKIE, secure)))
        return response

    async def authenticate(self, request: Request) -> bool:
        """Every admin request: a live session of an active staff account (looked up by AdminGuard)."""
        return current_staff(request) is not None

    async def get_user_id(self, request: Request) -> int | None:
        identity = current_staff(request)
        return identity.id if identity else None
