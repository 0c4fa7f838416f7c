"""Wires the app: pages, the REST API and the database models."""

import reflex as rx

from referral_app import models  # noqa: F401  (registers the tables for Alembic)
from referral_app.api.app import api
from referral_app.components.head import head_components
from referral_app.i18n import translate
from referral_app.infra.hosts import warn_at_start
from referral_app.infra.live import referral_feed
from referral_app.infra.logs import configure_logging, detach_reflex_worker_tasks, frontend_exception_handler
from referral_app.infra.framework.reflex_socket import bound_event_socket, guard_socket_origins, on_socket_closed
from referral_app.infra.framework.reflex_state import before_hydrate
from referral_app.infra.origins import socket_origin_allowed
from referral_app.infra.state_mac import install as authenticate_stored_state
from referral_app.pages.login import login_page
from referral_app.pages.not_found import NotFoundState, not_found_page
from referral_app.pages.profile import profile_page
from referral_app.state.base import SessionState, backend_exception_handler, check_session_on_hydrate
from referral_app.state.login import PROFILE_ROUTE, LoginState
from referral_app.state.profile import LOGIN_ROUTE, ProfileState
from referral_app.infra.tasks import periodic_cleanup
from referral_app.infra.webhooks import webhook_delivery
from referral_app.settings import settings

configure_logging()  # LOG_JSON, LOG_LEVEL; idempotent, so a second import does no harm
detach_reflex_worker_tasks()  # Reflex's worker-wide tasks log as the server, not as the client that started them
# Page state read back from Redis or disk is unpickled only with our MAC (infra/state_mac.py);
# before the app exists, so before any state is read. Refuses to start if Reflex changed.
authenticate_stored_state()
app = rx.App(
    api_transformer=api,
    frontend_exception_handler=frontend_exception_handler,
    # The database down: a message on the page and no stuck button (state/base.py).
    backend_exception_handler=backend_exception_handler,
    # The prerendered pages are in DEFAULT_LANGUAGE; the head script and then the state
    # put each visitor's language on <html lang> (components/head.py).
    html_lang=settings.default_language,
    head_components=head_components(),
    # At the top: on a phone the referral list is below the fold's top, never covered.
    toaster=rx.toast.provider(position="top-center", close_button=True),
)
configure_logging()  # again: creating the app lets Reflex give its logger a handler of its own
# Reaches into Reflex's internals (infra/framework/); each refuses to start if Reflex changed.
before_hydrate(app, SessionState, check_session_on_hydrate)  # no page state without a valid session (state/base.py)
guard_socket_origins(app, socket_origin_allowed)  # the websocket answers only the app's own origin (infra/origins.py)
on_socket_closed(app, referral_feed.close_session)  # a closed page's live updates end at once (infra/live.py)
bound_event_socket(app)  # unknown events refused in a line; frontend reports limited per client (infra/logs.py)
# Titles follow the page's language (a state var); the description is what the prerendered
# page carries for search engines, in DEFAULT_LANGUAGE.
_description = translate("app.description", settings.default_language)
for page, route, title, on_load in (
    (login_page, LOGIN_ROUTE, "title.login", LoginState.on_load),
    (profile_page, PROFILE_ROUTE, "title.profile", ProfileState.on_load),
    (not_found_page, "404", "title.not_found", NotFoundState.on_load),
):
    app.add_page(
        page,
        route=route,
        title=SessionState.messages[title],
        description=_description,
        image="/favicon.svg",
        on_load=on_load,
    )
app.register_lifespan_task(warn_at_start)  # plain-HTTP PUBLIC_URL, no configured host
app.register_lifespan_task(periodic_cleanup)
app.register_lifespan_task(webhook_delivery)
