"""Wires the app: pages, the REST API and the database models."""

import reflex as rx

from referral_app import models  # noqa: F401  (registers the tables for Alembic)

app = rx.App()
