"""The 404 page, in the person's language."""

from __future__ import annotations

import reflex as rx

from referral_app.components.layout import card, page_shell, t
from referral_app.state.base import SessionState


class NotFoundState(SessionState):
    @rx.event
    async def on_load(self):
        """Only the language: this page shows nobody's data."""
        return await self._resolve_language()


def not_found_page() -> rx.Component:
    return page_shell(
        card(
            rx.heading(t("not_found.heading"), size="7", as_="h1"),
            rx.text(t("not_found.text"), color_scheme="gray"),
            rx.link(rx.button(t("not_found.home"), size="3", width="100%"), href="/", width="100%"),
        )
    )
