"""The page shell and small shared pieces."""

from __future__ import annotations

import reflex as rx

from referral_app.i18n import translate


def page_shell(*children: rx.Component) -> rx.Component:
    """A centred column that fills a phone screen and stays readable on a desktop."""
    return rx.box(
        rx.vstack(
            rx.hstack(
                rx.icon("gift", size=22, color=rx.color("accent", 10)),
                rx.heading(translate("app.title"), size="5", weight="bold"),
                align="center",
                spacing="2",
            ),
            *children,
            spacing="5",
            width="100%",
            max_width="480px",
            margin_x="auto",
            padding_x="16px",
            padding_y=["24px", "48px"],
        ),
        min_height="100vh",
        width="100%",
        background=rx.color("gray", 2),
    )


def card(*children: rx.Component, **props) -> rx.Component:
    return rx.card(rx.vstack(*children, spacing="4", width="100%"), width="100%", size="3", **props)


def error_text(message: rx.Var) -> rx.Component:
    """The one place a page shows what went wrong (id ``error-message``)."""
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle_alert", color_scheme="red", role="alert", id="error-message", width="100%"),
    )


def field_label(text: str, html_for: str) -> rx.Component:
    return rx.el.label(text, html_for=html_for, class_name="text-sm font-medium")
