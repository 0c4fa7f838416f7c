"""Mounts the admin on the FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from sqladmin import Admin
from sqladmin.authentication import login_required
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from referral_app.admin.auth import StaffAuth, csrf_input, csrf_token, staff_binding
from referral_app.admin.dashboard import DashboardView
from referral_app.admin.views import VIEWS
from referral_app.infra.db import engine
from referral_app.infra.framework.sqladmin import PostOnlyAdmin

TEMPLATES = Path(__file__).resolve().parent / "templates"


class StaffAdmin(PostOnlyAdmin):
    """sqladmin's Admin, with the routes that change something answering POST only.

    sqladmin runs ``@action`` routes and logout on GET, which a link or a redirect from
    any site can trigger with the staff's cookie; here they take POST
    (``infra/framework/sqladmin.py``), and ``admin/auth.py``'s guard wants the CSRF token
    with every POST.
    """

    def __init__(self, app, engine, **kwargs) -> None:
        kwargs.setdefault("templates_dir", str(TEMPLATES))
        super().__init__(app, engine, **kwargs)
        self.templates.env.globals.update(csrf_token=csrf_token, csrf_input=csrf_input, staff_binding=staff_binding)

    @login_required
    async def index(self, request: Request) -> Response:
        """Staff land on the dashboard (the login sends them here)."""
        return RedirectResponse(request.url_for("admin:view-dashboard"), status_code=303)


def mount_admin(app: FastAPI) -> Admin:
    admin = StaffAdmin(app, engine, base_url="/admin", title="Referral admin", authentication_backend=StaffAuth())
    admin.add_base_view(DashboardView)
    for view in VIEWS:
        admin.add_view(view)

    @app.get("/admin", include_in_schema=False)
    def admin_without_slash(request: Request) -> RedirectResponse:
        """``/admin`` (as people type it) goes to the admin at ``/admin/``; without this the
        web app's catch-all would answer 404."""
        query = request.url.query
        return RedirectResponse("/admin/" + (f"?{query}" if query else ""), status_code=308)

    return admin
