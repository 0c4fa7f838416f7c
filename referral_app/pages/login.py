"""Sign-in page: phone number, then the code (it signs in by itself on the last digit)."""

from __future__ import annotations

import reflex as rx

from referral_app.components.layout import card, error_text, field_attrs, field_label, page_shell, t
from referral_app.settings import settings
from referral_app.state.login import LoginState


def _phone_step() -> rx.Component:
    invalid = LoginState.error_text != ""
    return rx.form(
        rx.vstack(
            field_label(t("login.phone_label"), "phone-input"),
            rx.input(
                id="phone-input",
                name="phone",
                type="tel",
                input_mode="tel",
                auto_complete="tel",
                placeholder=t("login.phone_placeholder"),
                max_length=32,
                required=True,
                auto_focus=True,
                size="3",
                width="100%",
                color_scheme=rx.cond(invalid, "red", "gray"),
                variant=rx.cond(invalid, "soft", "surface"),
                custom_attrs=field_attrs(invalid),
            ),
            error_text(LoginState.error_text),
            rx.button(
                t("login.request_code"),
                id="request-code-button",
                type="submit",
                size="3",
                width="100%",
                loading=LoginState.requesting,
                disabled=LoginState.requesting | (LoginState.retry_after > 0),
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=LoginState.request_code,
        width="100%",
    )


def _demo_callout(code: rx.Component, **props) -> rx.Component:
    return rx.callout.root(
        rx.callout.icon(rx.icon("message_square", aria_hidden="true")),
        rx.callout.text(t("login.demo_notice"), " ", code),
        color_scheme="blue",
        width="100%",
        **props,
    )


def _demo_code() -> rx.Component:
    shown = (LoginState.demo_code != "") & (LoginState.code_dead == "")  # a dead code is not shown
    if not settings.demo_mode:
        return rx.cond(shown, _demo_callout(rx.code(LoginState.demo_code, id="demo-code", size="5", weight="bold")))
    # While the gateway works, an invisible twin holds the box's place, so the code field and
    # the button below do not move when the code arrives (the person may be typing).
    placeholder = "0" * settings.code_length
    return rx.cond(
        shown,
        _demo_callout(rx.code(LoginState.demo_code, id="demo-code", size="5", weight="bold")),
        rx.cond(
            LoginState.sending,
            _demo_callout(rx.code(placeholder, size="5", weight="bold"), visibility="hidden", aria_hidden="true"),
        ),
    )


def _resend_button(primary: bool) -> rx.Component:
    return rx.button(
        LoginState.resend_text,
        id="resend-code-button",
        type="button",
        variant="solid" if primary else "ghost",
        size="3" if primary else "2",
        width="100%" if primary else "auto",
        on_click=LoginState.resend_code,
        loading=LoginState.requesting,
        disabled=LoginState.confirming
        | LoginState.requesting
        | LoginState.sending
        | (LoginState.resend_in > 0)
        | (LoginState.retry_after > 0),
    )


def _code_step() -> rx.Component:
    # A failed send leaves no code: the step offers a new one at once, as for a dead code.
    dead = (LoginState.code_dead != "") | LoginState.send_failed
    invalid = LoginState.error_text != ""
    return rx.vstack(
        _demo_code(),
        rx.form(
            rx.vstack(
                field_label(t("login.code_label"), "code-input"),
                rx.input(
                    id="code-input",
                    name="code",
                    input_mode="numeric",
                    auto_complete="one-time-code",
                    pattern="[0-9]*",
                    placeholder=t("login.code_placeholder"),
                    max_length=settings.code_length,
                    required=True,
                    auto_focus=True,
                    size="3",
                    width="100%",
                    letter_spacing="0.3em",
                    disabled=dead,
                    on_change=LoginState.code_typed,
                    color_scheme=rx.cond(invalid, "red", "gray"),
                    variant=rx.cond(invalid, "soft", "surface"),
                    custom_attrs={**field_attrs(invalid)},
                ),
                error_text(LoginState.error_text),
                rx.cond(
                    dead,
                    _resend_button(primary=True),
                    rx.fragment(
                        # The countdown starts when the gateway accepted the SMS (SPEC §3).
                        rx.cond(
                            LoginState.sending,
                            rx.hstack(
                                # Fixed size, level with the first line: a wrapping late text
                                # neither squeezes it nor moves the text's left edge.
                                rx.spinner(size="1", flex_shrink="0", margin_top="4px"),
                                rx.text(LoginState.sending_text, size="2", color_scheme=rx.cond(LoginState.sms_late, "amber", "gray")),
                                id="sms-status",
                                role="status",
                                align="start",
                            ),
                            rx.text(LoginState.code_expires_text, id="code-expires", size="2", color_scheme="gray"),
                        ),
                        rx.button(
                            t("login.confirm"),
                            id="confirm-code-button",
                            type="submit",
                            size="3",
                            width="100%",
                            loading=LoginState.confirming,
                            disabled=LoginState.confirming,
                        ),
                    ),
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
                t("login.change_phone"),
                type="button",
                variant="ghost",
                size="2",
                on_click=LoginState.change_phone,
                disabled=LoginState.confirming,
            ),
            rx.cond(dead, rx.fragment(), _resend_button(primary=False)),
            justify="between",
            width="100%",
            wrap="wrap",
            gap="2",
        ),
        spacing="3",
        width="100%",
        align="start",
    )


def _invitation(icon: str, color: str) -> rx.Component:
    return rx.callout.root(
        rx.callout.icon(rx.icon(icon, aria_hidden="true")),
        rx.callout.text(LoginState.invited_text),
        id="invited-notice",
        color_scheme=color,
        width="100%",
        align_items="center",
    )


def _notices() -> rx.Component:
    """The ended-session notice and the invitation of ``/?ref=``; their space is reserved
    before the first paint (components/head.py), so nothing moves when they appear."""
    return rx.fragment(
        rx.box(
            rx.cond(
                LoginState.session_ended,
                rx.callout(t("auth.required"), icon="clock", color_scheme="amber", width="100%", role="status"),
            ),
            class_name="notice-slot",
            width="100%",
        ),
        rx.box(
            rx.cond(
                LoginState.ref_status != "",
                # Two fixed icons, never an icon named by a var: that would bundle every icon.
                rx.cond(
                    LoginState.ref_status == "known",
                    _invitation("gift", "green"),
                    _invitation("circle_help", "amber"),
                ),
            ),
            class_name="ref-slot",
            width="100%",
        ),
    )


def login_page() -> rx.Component:
    in_code_step = LoginState.step == "code"
    return page_shell(
        card(
            rx.vstack(
                rx.heading(rx.cond(in_code_step, t("login.code_heading"), t("login.heading")), size="7", as_="h1"),
                rx.cond(
                    in_code_step,
                    rx.text(
                        LoginState.code_sent_text,
                        " ",
                        rx.text.strong(LoginState.phone_display, white_space="nowrap"),
                        id="code-sent-to",
                        color_scheme="gray",  # the red error below names the failure once
                    ),
                    rx.text(t("login.subheading"), color_scheme="gray"),
                ),
                spacing="2",
                width="100%",
            ),
            _notices(),
            rx.match(
                LoginState.step,
                ("code", _code_step()),
                ("done", rx.hstack(rx.spinner(), rx.text(t("login.signing_in")), align="center")),
                _phone_step(),
            ),
        ),
        rx.text(t("app.tagline"), size="2", color_scheme="gray", align="center", width="100%"),
    )
