"""Who is acting: the signed-in staff account behind an admin action, for the audit log."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request

from referral_app.admin.auth import current_staff
from referral_app.domain.audit import StaffActor
from referral_app.infra.client_ip import request_client_ip


def staff_actor(request: Request) -> StaffActor:
    """The staff account (``current_staff``) and client address of an admin request; 403 if none."""
    identity = current_staff(request)
    if identity is None:
        raise HTTPException(status_code=403, detail="No staff account is signed in.")
    return StaffActor(identity.id, request_client_ip(request.scope))
