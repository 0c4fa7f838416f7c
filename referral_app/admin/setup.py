"""Mounts the admin on the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from sqladmin import Admin

from referral_app.admin.auth import StaffAuth
from referral_app.admin.views import VIEWS
from referral_app.infra.db import engine


def mount_admin(app: FastAPI) -> Admin:
    admin = Admin(app, engine, base_url="/admin", title="Referral admin", authentication_backend=StaffAuth())
    for view in VIEWS:
        admin.add_view(view)

    @app.get("/admin", include_in_schema=False)
    def admin_without_slash(request: Request) -> RedirectResponse:
        """``/admin`` (as people type it) goes to the admin at ``/admin/``; without this the
        web app's catch-all would answer 404."""
        query = request.url.query
        return RedirectResponse("/admin/" + (f"?{query}" if query else ""), status_code=308)

    return admin
