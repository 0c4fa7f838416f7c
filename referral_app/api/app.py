"""The FastAPI app that Reflex mounts in front of its own backend (``api_transformer``)."""

from __future__ import annotations

from fastapi import FastAPI

from referral_app.api import browser_session

api = FastAPI(
    title="Referral API",
    openapi_url="/api/openapi.json",
    docs_url=None,
    redoc_url=None,
)
api.include_router(browser_session.router)
