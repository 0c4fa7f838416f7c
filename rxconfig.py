"""Reflex configuration; the values come from referral_app.settings (one place for settings)."""

import os

import reflex as rx

from referral_app.infra.frontend import SameOriginPlugin
from referral_app.infra.origins import cors_origins
from referral_app.infra.server import use_http_timeouts
from referral_app.settings import settings

# Granian, which Reflex starts, waits HTTP_HEADER_TIMEOUT_SECONDS for headers (infra/server.py).
use_http_timeouts()
# Reflex reads its Redis pool cap from the environment when it makes its clients (every
# worker imports this file first): an event waits for a free connection instead of
# opening one more, so a worker's Redis connections do not grow with its tabs.
os.environ["REFLEX_REDIS_MAX_CONNECTIONS"] = str(settings.redis_max_connections)
os.environ["REFLEX_REDIS_POOL_TIMEOUT"] = f"{settings.redis_pool_timeout_seconds:g}"

config = rx.Config(
    app_name="referral_app",
    db_url=settings.database_url,
    backend_host="127.0.0.1",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # Brotli beside gzip: the stylesheet and scripts a phone must load before the first paint.
    frontend_compression_formats=["brotli", "gzip"],
    # CORS with credentials only for ALLOWED_ORIGINS and PUBLIC_URL: never "*", which Reflex's
    # CORS middleware answers by echoing any Origin (infra/origins.py).
    cors_allowed_origins=cors_origins(),
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.TailwindV4Plugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="large")),
        # The built frontend talks to the backend at the page's own origin (docs/deployment.md).
        SameOriginPlugin(),
    ],
)
