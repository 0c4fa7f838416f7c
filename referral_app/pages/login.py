"""Sign-in page: phone number, then the code."""

from __future__ import annotations

import reflex as rx

from referral_app.components.layout import card, error_text, field_label, page_shell
from referral_app.i18n import translate
from referral_app.settings import settings
from referral_app.state.login import LoginState


def _phone_step() -> rx.Component:
    return rx.form(
        rx.vstack(
            field_label(translate("login.phone_label"), "phone-input"),
            rx.input(
                id="phone-input",
                name="phone",
                type="tel",
                input_mode="tel",
                auto_complete="tel",
                placeholder=translate("login.phone_placeholder"),
                max_length=32,
                required=True,
                auto_focus=True,
                size="3",
                width="100%",
                color_scheme=rx.cond(LoginState.error_field == "phone_number", "red", "gray"),
            ),
            rx.button(
                translate("login.request_code"),
                id="request-code-button",
                type="submit",
                size="3",
                width="100%",
                loading=LoginState.requesting,
                disabled=LoginState.retry_after > 0,
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=LoginState.request_code,
        width="100%",
    )


def _demo_code() -> rx.Component:
    return rx.cond(
        LoginState.demo_code != "",
        rx.callout.root(
            rx.callout.icon(rx.icon("message_square")),
            rx.callout.text(
                translate("login.demo_notice"),
                " ",
                rx.code(LoginState.demo_code, id="demo-code", size="5", weight="bold"),
            ),
            color_scheme="blue",
            width="100%",
        ),
    )


def _code_step() -> rx.Component:
    return rx.vstack(
        rx.text(LoginState.code_sent_text, size="2", color_scheme="gray"),
        _demo_code(),
        rx.form(
            rx.vstack(
                field_label(translate("login.code_label"), "code-input"),
                rx.input(
                    id="code-input",
                    name="code",
                    input_mode="numeric",
                    auto_complete="one-time-code",
                    placeholder=translate("login.code_placeholder"),
                    max_length=settings.code_length,
                    required=True,
                    auto_focus=True,
                    size="3",
                    width="100%",
                    letter_spacing="0.3em",
                ),
                rx.button(
                    translate("login.confirm"),
                    id="confirm-code-button",
                    type="submit",
                    size="3",
                    width="100%",
                    loading=LoginState.confirming,
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=LoginState.confirm_code,
            reset_on_submit=False,
            width="100%",
        ),
        rx.hstack(
            rx.button(
                translate("login.change_phone"),
                variant="ghost",
                size="2",
                on_click=LoginState.change_phone,
                disabled=LoginState.confirming,
            ),
            rx.button(
                translate("login.resend"),
                id="resend-code-button",
                variant="ghost",
                size="2",
                on_click=LoginState.resend_code,
                loading=LoginState.requesting,
                disabled=LoginState.confirming | (LoginState.retry_after > 0),
            ),
            justify="between",
            width="100%",
        ),
        spacing="3",
        width="100%",
        align="start",
    )


def login_page() -> rx.Component:
    return page_shell(
        card(
            rx.heading(translate("login.heading"), size="7"),
            rx.text(translate("login.subheading"), color_scheme="gray"),
            rx.cond(
                LoginState.ref_code != "",
                rx.callout(LoginState.invited_text, icon="gift", color_scheme="green", width="100%"),
            ),
            rx.match(
                LoginState.step,
                ("code", _code_step()),
                ("done", rx.hstack(rx.spinner(), rx.text(translate("login.signing_in")), align="center")),
                _phone_step(),
            ),
            error_text(LoginState.error_text),
        ),
        rx.text(translate("app.tagline"), size="2", color_scheme="gray", align="center", width="100%"),
    )
