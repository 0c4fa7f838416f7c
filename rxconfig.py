"""Reflex configuration; the values come from referral_app.settings (one place for settings)."""

import reflex as rx

from referral_app.settings import settings

config = rx.Config(
    app_name="referral_app",
    db_url=settings.database_url,
    backend_host="127.0.0.1",
    telemetry_enabled=False,
    show_built_with_reflex=False,
    # Brotli beside gzip: the stylesheet and scripts a phone must load before the first paint.
    frontend_compression_formats=["brotli", "gzip"],
    plugins=[
        rx.plugins.SitemapPlugin(),
        rx.plugins.TailwindV4Plugin(),
        rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="violet", radius="large")),
    ],
)
