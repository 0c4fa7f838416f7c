"""Mounts the admin on the FastAPI app."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from sqladmin import Admin
from sqladmin.authentication import login_required
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from referral_app.admin.auth import StaffAuth
from referral_app.admin.dashboard import DashboardView
from referral_app.admin.views import VIEWS
from referral_app.infra.db import engine

TEMPLATES = Path(__file__).resolve().parent / "templates"


class StaffAdmin(Admin):
    @login_required
    async def index(self, request: Request) -> Response:
        """Staff land on the dashboard (the login sends them here)."""
        return RedirectResponse(request.url_for("admin:view-dashboard"), status_code=303)


def mount_admin(app: FastAPI) -> Admin:
    admin = StaffAdmin(
        app, engine, base_url="/admin", title="Referral admin", authentication_backend=StaffAuth(),
        templates_dir=str(TEMPLATES),
    )
    admin.add_base_view(DashboardView)
    for view in VIEWS:
        admin.add_view(view)
    return admin
