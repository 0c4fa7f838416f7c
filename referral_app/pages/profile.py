"""Profile page: own code and share link, activation, referral list."""

from __future__ import annotations

import reflex as rx

from referral_app.components.layout import card, error_text, field_label, page_shell
from referral_app.i18n import translate
from referral_app.state.profile import ProfileState


def _own_code() -> rx.Component:
    return card(
        rx.text(translate("profile.your_code"), size="2", color_scheme="gray"),
        rx.hstack(
            rx.code(ProfileState.invite_code, id="invite-code", size="8", weight="bold", variant="ghost"),
            rx.button(
                rx.icon("copy", size=16),
                translate("profile.copy"),
                id="copy-invite-button",
                variant="soft",
                on_click=[
                    rx.set_clipboard(ProfileState.invite_code),
                    rx.toast.success(translate("profile.copied"), duration=1500),
                ],
            ),
            justify="between",
            align="center",
            width="100%",
        ),
        rx.text(translate("profile.share_hint"), size="2", color_scheme="gray"),
        rx.link(
            ProfileState.share_link,
            href=ProfileState.share_link,
            id="share-link",
            size="2",
            word_break="break-all",
        ),
    )


def _activation_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.heading(translate("profile.activate_heading"), size="4"),
            rx.text(translate("profile.activate_hint"), size="2", color_scheme="gray"),
            field_label(translate("profile.activate_label"), "activate-input"),
            rx.hstack(
                rx.input(
                    id="activate-input",
                    name="invite_code",
                    placeholder=translate("profile.activate_placeholder"),
                    default_value=ProfileState.prefill_code,
                    key=ProfileState.prefill_code,
                    max_length=32,
                    required=True,
                    auto_complete="off",
                    text_transform="uppercase",
                    size="3",
                    flex="1",
                ),
                rx.button(
                    translate("profile.activate"),
                    id="activate-button",
                    type="submit",
                    size="3",
                    loading=ProfileState.activating,
                ),
                width="100%",
            ),
            error_text(ProfileState.error),
            spacing="3",
            width="100%",
        ),
        on_submit=ProfileState.activate,
        width="100%",
    )


def _activated() -> rx.Component:
    return rx.vstack(
        rx.heading(translate("profile.activated_heading"), size="4"),
        rx.data_list.root(
            rx.data_list.item(
                rx.data_list.label(translate("profile.invited_by_label")),
                rx.data_list.value(rx.text(ProfileState.invited_by, id="invited-by")),
            ),
            rx.data_list.item(
                rx.data_list.label(translate("profile.activated_code")),
                rx.data_list.value(rx.code(ProfileState.activated_code, id="activated-code")),
            ),
        ),
        spacing="3",
        width="100%",
    )


def _referral_item(referral: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(referral["phone_number"], weight="medium"),
        rx.text(referral["activated_at"], size="2", color_scheme="gray"),
        class_name="referral-item",
        custom_attrs={"data-testid": "referral-item"},
        justify="between",
        wrap="wrap",
        width="100%",
        padding_y="8px",
        border_bottom=f"1px solid {rx.color('gray', 4)}",
    )


def _referrals() -> rx.Component:
    return card(
        rx.hstack(
            rx.heading(translate("profile.referrals_heading"), size="4"),
            rx.badge(ProfileState.invited_count, id="referral-count", size="3", radius="full"),
            justify="between",
            align="center",
            width="100%",
        ),
        rx.cond(
            ProfileState.invited_count == 0,
            rx.text(translate("profile.referrals_empty"), size="2", color_scheme="gray"),
        ),
        rx.vstack(rx.foreach(ProfileState.referrals, _referral_item), id="referral-list", spacing="0", width="100%"),
        rx.cond(
            ProfileState.next_cursor != "",
            rx.button(
                translate("profile.load_more"),
                id="load-more-button",
                variant="soft",
                width="100%",
                on_click=ProfileState.load_more,
                loading=ProfileState.loading_more,
            ),
        ),
    )


def _loaded() -> rx.Component:
    return rx.fragment(
        rx.hstack(
            rx.vstack(
                rx.heading(translate("profile.heading"), size="7"),
                rx.text(translate("profile.signed_in_as"), " ", rx.text.strong(ProfileState.phone_number), size="2"),
                spacing="1",
            ),
            rx.button(
                rx.icon("log_out", size=16),
                translate("profile.logout"),
                id="logout-button",
                variant="outline",
                color_scheme="gray",
                on_click=ProfileState.logout,
                loading=ProfileState.logging_out,
            ),
            justify="between",
            align="center",
            width="100%",
            wrap="wrap",
            gap="3",
        ),
        _own_code(),
        card(rx.cond(ProfileState.activated_code != "", _activated(), _activation_form())),
        _referrals(),
    )


def profile_page() -> rx.Component:
    return page_shell(
        rx.cond(
            ProfileState.loaded,
            _loaded(),
            rx.center(rx.spinner(size="3"), rx.text(translate("profile.loading")), spacing="3", padding="48px", width="100%"),
        )
    )
