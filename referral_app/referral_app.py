"""Wires the app: pages, the REST API and the database models."""

import reflex as rx

from referral_app import models  # noqa: F401  (registers the tables for Alembic)
from referral_app.api.app import api
from referral_app.i18n import translate
from referral_app.infra.logs import configure_logging, frontend_exception_handler
from referral_app.infra.origins import guard_event_socket
from referral_app.pages.login import login_page
from referral_app.pages.profile import profile_page
from referral_app.state.base import HydrateSessionCheck
from referral_app.state.login import PROFILE_ROUTE, LoginState
from referral_app.state.profile import LOGIN_ROUTE, ProfileState
from referral_app.infra.tasks import periodic_cleanup
from referral_app.infra.webhooks import webhook_delivery

configure_logging()  # LOG_JSON, LOG_LEVEL; idempotent, so a second import does no harm
app = rx.App(api_transformer=api, frontend_exception_handler=frontend_exception_handler)
configure_logging()  # again: creating the app lets Reflex give its logger a handler of its own
app.add_middleware(HydrateSessionCheck())  # no page state without a valid session (state/base.py)
guard_event_socket(app.sio)  # the websocket answers only pages of the app's own origin (infra/origins.py)
app.add_page(login_page, route=LOGIN_ROUTE, title=translate("login.heading"), on_load=LoginState.on_load)
app.add_page(profile_page, route=PROFILE_ROUTE, title=translate("profile.heading"), on_load=ProfileState.on_load)
app.register_lifespan_task(periodic_cleanup)
app.register_lifespan_task(webhook_delivery)
