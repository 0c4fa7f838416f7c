"""Profile page: the share tools first, then the referral list, then the one-time
"were you invited?" card (SPEC §7)."""

from __future__ import annotations

import reflex as rx

from referral_app.components.layout import card, error_text, field_attrs, field_label, page_shell, t
from referral_app.state.profile import ProfileState

# navigator.share where the browser has it; otherwise (or if it fails) the link is copied.
# Resolves to "shared", "aborted", "copied" or "failed" (ProfileState.shared says which).
SHARE_SCRIPT = """(() => {
  const url = document.getElementById("share-link").href;
  const text = document.getElementById("share-button").dataset.text;
  const copy = () => navigator.clipboard
    ? navigator.clipboard.writeText(url).then(() => "copied", () => "failed")
    : Promise.resolve("failed");
  if (!navigator.share) return copy();
  return navigator.share({ title: document.title, text, url })
    .then(() => "shared", (error) => (error && error.name === "AbortError" ? "aborted" : copy()));
})()"""


def _header() -> rx.Component:
    return rx.hstack(
        rx.vstack(
            rx.heading(t("profile.heading"), size="7", as_="h1"),
            rx.text(t("profile.signed_in_as"), " ", rx.text.strong(ProfileState.phone_display, white_space="nowrap"), size="2"),
            spacing="1",
        ),
        rx.button(
            rx.icon("log_out", size=16, aria_hidden="true"),
            t("profile.logout"),
            id="logout-button",
            variant="outline",
            color_scheme="gray",
            on_click=ProfileState.logout,
            loading=ProfileState.logging_out,
            disabled=ProfileState.logging_out,
        ),
        justify="between",
        align="center",
        width="100%",
        wrap="wrap",
        gap="3",
    )


def _copy_button(icon: str, label: str, element_id: str, value: rx.Var, copied: str, **props) -> rx.Component:
    """Copies ``value`` to the clipboard and says so (in the page's language)."""
    return rx.button(
        rx.icon(icon, size=16, aria_hidden="true"),
        t(label),
        id=element_id,
        variant="soft",
        on_click=[rx.set_clipboard(value), rx.toast.success(t(copied), duration=2000)],
        **props,
    )


def _share() -> rx.Component:
    return card(
        rx.heading(t("profile.share_heading"), size="4", as_="h2"),
        rx.hstack(
            rx.vstack(
                rx.text(t("profile.your_code"), size="2", color_scheme="gray"),
                rx.code(ProfileState.invite_code, id="invite-code", size="8", weight="bold", variant="ghost"),
                spacing="1",
            ),
            _copy_button("copy", "profile.copy_code", "copy-invite-button", ProfileState.invite_code, "profile.code_copied"),
            justify="between",
            align="center",
            width="100%",
            wrap="wrap",
            gap="3",
        ),
        rx.text(t("profile.share_hint"), size="2", color_scheme="gray"),
        rx.link(ProfileState.share_link, href=ProfileState.share_link, id="share-link", size="2", word_break="break-all"),
        rx.hstack(
            rx.button(
                rx.icon("share_2", size=16, aria_hidden="true"),
                t("profile.share"),
                id="share-button",
                size="3",
                flex="1 0 auto",
                white_space="nowrap",
                custom_attrs={"data-text": ProfileState.share_text},
                on_click=rx.call_script(SHARE_SCRIPT, callback=ProfileState.shared),
            ),
            _copy_button(
                "link", "profile.copy_link", "copy-link-button", ProfileState.share_link, "profile.link_copied",
                size="3", flex="1 0 auto", white_space="nowrap",
            ),
            width="100%",
            wrap="wrap",
            gap="3",
        ),
        rx.hstack(
            rx.image(
                src=ProfileState.qr_code,
                id="qr-code",
                alt=t("profile.qr_label"),
                width="148px",
                height="148px",
                border_radius="8px",
                flex_shrink="0",
            ),
            rx.vstack(
                rx.text(t("profile.qr_label"), size="2", weight="medium"),
                rx.text(t("profile.qr_hint"), size="2", color_scheme="gray"),
                spacing="1",
            ),
            align="center",
            gap="4",
            width="100%",
        ),
    )


def _activation_form() -> rx.Component:
    invalid = ProfileState.error_text != ""
    return rx.form(
        rx.vstack(
            rx.heading(t("profile.activate_heading"), size="4", as_="h2"),
            rx.text(t("profile.activate_hint"), size="2", color_scheme="gray"),
            field_label(t("profile.activate_label"), "activate-input"),
            rx.hstack(
                rx.input(
                    id="activate-input",
                    name="invite_code",
                    placeholder=t("profile.activate_placeholder"),
                    default_value=ProfileState.prefill_code,
                    key=ProfileState.prefill_code,
                    max_length=32,
                    required=True,
                    auto_complete="off",
                    text_transform="uppercase",
                    size="3",
                    flex="1",
                    min_width="0",
                    color_scheme=rx.cond(invalid, "red", "gray"),
                    variant=rx.cond(invalid, "soft", "surface"),
                    custom_attrs=field_attrs(invalid),
                ),
                rx.button(
                    t("profile.activate"),
                    id="activate-button",
                    type="submit",
                    size="3",
                    loading=ProfileState.activating,
                    disabled=ProfileState.activating,
                ),
                width="100%",
            ),
            error_text(ProfileState.error_text),
            spacing="3",
            width="100%",
        ),
        on_submit=ProfileState.activate,
        reset_on_submit=False,
        width="100%",
    )


def _activated() -> rx.Component:
    return rx.vstack(
        rx.heading(t("profile.activated_heading"), size="4", as_="h2"),
        rx.data_list.root(
            rx.data_list.item(
                rx.data_list.label(t("profile.invited_by_label")),
                rx.data_list.value(rx.text(ProfileState.invited_by, id="invited-by")),
            ),
            rx.data_list.item(
                rx.data_list.label(t("profile.activated_code")),
                rx.data_list.value(rx.code(ProfileState.activated_code, id="activated-code")),
            ),
        ),
        spacing="3",
        width="100%",
    )


def _referral_item(referral: rx.Var) -> rx.Component:
    return rx.hstack(
        rx.text(referral["phone_number"], weight="medium", white_space="nowrap"),
        rx.el.time(
            referral["activated_at"],
            date_time=referral["iso"],
            title=referral["exact"],
            class_name="text-sm",
            style={"color": rx.color("gray", 11)},
        ),
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
            rx.heading(t("profile.referrals_heading"), size="4", as_="h2"),
            rx.badge(ProfileState.invited_count, id="referral-count", size="3", radius="full"),
            justify="between",
            align="center",
            width="100%",
        ),
        rx.cond(
            ProfileState.invited_count == 0,
            rx.text(t("profile.referrals_empty"), size="2", color_scheme="gray"),
            rx.text(ProfileState.referral_summary, id="referral-summary", size="2", color_scheme="gray"),
        ),
        rx.vstack(rx.foreach(ProfileState.referrals, _referral_item), id="referral-list", spacing="0", width="100%"),
        rx.cond(
            ProfileState.next_cursor != "",
            rx.button(
                t("profile.load_more"),
                id="load-more-button",
                variant="soft",
                width="100%",
                on_click=ProfileState.load_more,
                loading=ProfileState.loading_more,
                disabled=ProfileState.loading_more,
            ),
        ),
    )


def _loaded() -> rx.Component:
    return rx.fragment(
        _header(),
        _share(),
        _referrals(),
        card(rx.cond(ProfileState.activated_code != "", _activated(), _activation_form())),
    )


def profile_page() -> rx.Component:
    return page_shell(
        rx.cond(
            ProfileState.loaded,
            _loaded(),
            rx.center(rx.spinner(size="3"), rx.text(t("profile.loading")), spacing="3", padding="48px", width="100%"),
        )
    )
