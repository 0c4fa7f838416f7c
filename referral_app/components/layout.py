"""The page shell and small shared pieces. Every text comes from the state's catalogue
(``t``), in the person's language."""

from __future__ import annotations

import reflex as rx

from referral_app.state.base import SessionState

ERROR_ID = "error-message"


def t(message_id: str) -> rx.Var:
    """The text of ``message_id`` in the page's language (from the state, not the build)."""
    return SessionState.messages[message_id]


def language_switch() -> rx.Component:
    """A native select (``language-switch``): every catalogue, each named in its own language."""
    return rx.el.select(
        rx.foreach(
            SessionState.language_options,
            lambda option: rx.el.option(option[1], value=option[0], lang=option[0]),
        ),
        id="language-switch",
        value=SessionState.language,
        on_change=SessionState.switch_language,
        aria_label=t("language.label"),
        title=t("language.label"),
        style={
            "font": "inherit",
            "font_size": "14px",
            "padding": "6px 28px 6px 10px",
            "min_height": "36px",
            "border_radius": "8px",
            "border": f"1px solid {rx.color('gray', 7)}",
            "background_color": rx.color("gray", 1),
            "color": rx.color("gray", 12),
            "cursor": "pointer",
        },
    )


def page_shell(*children: rx.Component) -> rx.Component:
    """A centred column that fills a phone screen and stays readable on a desktop."""
    return rx.box(
        rx.el.main(
            rx.vstack(
                rx.hstack(
                    rx.hstack(
                        rx.icon("gift", size=22, color=rx.color("accent", 11), aria_hidden="true"),
                        rx.text(t("app.title"), size="5", weight="bold", as_="span"),
                        align="center",
                        spacing="2",
                    ),
                    language_switch(),
                    justify="between",
                    align="center",
                    width="100%",
                ),
                *children,
                spacing="5",
                width="100%",
                max_width="480px",
                margin_x="auto",
                padding_x="16px",
                padding_y=["20px", "48px"],
            ),
        ),
        min_height="100vh",
        width="100%",
        background=rx.color("gray", 2),
    )


def card(*children: rx.Component, **props) -> rx.Component:
    return rx.card(rx.vstack(*children, spacing="4", width="100%"), width="100%", size="3", **props)


def error_text(message: rx.Var) -> rx.Component:
    """What went wrong, right under the field it is about (id ``error-message``), announced."""
    return rx.cond(
        message != "",
        rx.text(
            rx.icon("triangle_alert", size=14, aria_hidden="true", flex_shrink="0", margin_top="3px"),
            rx.el.span(message),
            id=ERROR_ID,
            role="alert",
            size="2",
            color=rx.color("red", 11),
            display="flex",
            gap="6px",
            width="100%",
        ),
    )


def field_attrs(invalid: rx.Var) -> dict:
    """ARIA of a field that may have an error: tied to the message and marked invalid."""
    return {
        "aria-invalid": rx.cond(invalid, "true", "false"),
        "aria-describedby": rx.cond(invalid, ERROR_ID, ""),
    }


def field_label(text: rx.Var | str, html_for: str) -> rx.Component:
    return rx.el.label(text, html_for=html_for, class_name="text-sm font-medium")
