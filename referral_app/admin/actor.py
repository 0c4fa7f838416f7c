"""Who is acting: the signed-in staff account behind an admin request, for the audit log.

One seam: sqladmin resolves the account once per request through the authentication
backend's ``get_user_id`` (``StaffAuth``) and hands it out as ``get_current_user_id``.
"""

from __future__ import annotations

from sqladmin.authentication import get_current_user_id
from starlette.exceptions import HTTPException
from starlette.requests import Request

from referral_app.domain.audit import StaffActor
from referral_app.infra.client_ip import client_ip


def staff_actor(request: Request) -> StaffActor:
    """The staff account and client address of an authenticated admin request (403 if none)."""
    staff_id = get_current_user_id(request)
    if not isinstance(staff_id, int):
        raise HTTPException(status_code=403, detail="No staff account is signed in.")
    peer = request.client.host if request.client else None
    return StaffActor(staff_id, client_ip(peer, request.headers.get("x-forwarded-for")))
