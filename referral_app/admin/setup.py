"""Mounts the admin on the FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from sqladmin import Admin

from referral_app.admin.auth import StaffAuth
from referral_app.admin.views import VIEWS
from referral_app.infra.db import engine


def mount_admin(app: FastAPI) -> Admin:
    admin = Admin(app, engine, base_url="/admin", title="Referral admin", authentication_backend=StaffAuth())
    for view in VIEWS:
        admin.add_view(view)
    return admin
