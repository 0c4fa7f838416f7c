"""The admin's login: staff accounts checked by the domain layer, a signed session cookie."""

from __future__ import annotations

import asyncio

from sqladmin.authentication import AuthenticationBackend
from starlette.requests import Request

from referral_app.infra.client_ip import client_ip
from referral_app.infra.db import session_scope
from referral_app.domain import staff
from referral_app.domain.errors import InvalidCredentials, StaffLockedOut
from referral_app.settings import settings

SESSION_KEY = "staff_id"
ADMIN_COOKIE = "referral_admin"
ADMIN_SESSION_SECONDS = 8 * 3600


def _login(username: str, password: str, ip: str) -> int:
    with session_scope() as db:
        return staff.authenticate_staff(db, username, password, ip).id


def _is_active(staff_id: int) -> bool:
    with session_scope() as db:
        return staff.get_active_staff(db, staff_id) is not None


class StaffAuth(AuthenticationBackend):
    """Signed (server secret), HttpOnly, SameSite=Lax cookie; Secure on HTTPS (see SecureCookies)."""

    def __init__(self) -> None:
        super().__init__(
            secret_key=settings.secret_key,
            session_cookie=ADMIN_COOKIE,
            max_age=ADMIN_SESSION_SECONDS,
            same_site="lax",
        )

    async def login(self, request: Request) -> bool:
        form = await request.form()
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        ip = client_ip(request.client.host if request.client else None, request.headers.get("x-forwarded-for"))
        try:
            staff_id = await asyncio.to_thread(_login, username, password, ip)
        except (InvalidCredentials, StaffLockedOut):
            # One answer ("Invalid credentials.") for unknown user, wrong password and lockout.
            return False
        request.session.clear()
        request.session[SESSION_KEY] = staff_id
        return True

    async def logout(self, request: Request) -> bool:
        request.session.clear()
        return True

    async def get_user_id(self, request: Request) -> int | None:
        """The signed-in staff account's id (sqladmin keeps it for ``get_current_user_id``)."""
        staff_id = request.session.get(SESSION_KEY)
        return staff_id if isinstance(staff_id, int) else None

    async def authenticate(self, request: Request) -> bool:
        """Every admin request: the cookie's staff account must still exist and be active."""
        staff_id = request.session.get(SESSION_KEY)
        if not isinstance(staff_id, int):
            return False
        return await asyncio.to_thread(_is_active, staff_id)
