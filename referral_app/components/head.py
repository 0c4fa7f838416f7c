"""What every page carries in its ``<head>``: the icon, and the script that prepares the
first paint (the language and the space of notices known from the address).

The pages are built once and prerendered in ``DEFAULT_LANGUAGE``; their texts come from
the state, in the person's language, when the page connects. So that nobody sees a flash
of another language, this script (run before the body is painted, like Reflex's own theme
script) guesses the language as the server will choose it: the cookie of the person's
choice, else the browser's languages. When that is not the prerendered language, the
page stays hidden until its texts arrive (the state's first answer removes
``i18n-pending``), or 3 s at most. It also notes the browser's time zone in a cookie, so
exact times are shown in the person's own. It also reserves the space of the invitation banner of
``/?ref=CODE`` and of the ended-session notice, so nothing moves when they appear (reached
without a page load, e.g. redirected from the profile, they show as soon as they have content).
"""

from __future__ import annotations

import json

import reflex as rx

from referral_app.i18n import LANGUAGE_COOKIE, TIMEZONE_COOKIE, available_languages
from referral_app.settings import settings

# Heights of the notices known from the address (their content fits in them at 320 px+).
REF_SLOT_HEIGHT = "96px"
NOTICE_SLOT_HEIGHT = "64px"

_FIRST_PAINT = """
(function () {
  var root = document.documentElement, built = %(built)s, known = %(known)s, lang = null;
  var match = document.cookie.match(/(?:^|;\\s*)%(cookie)s=([^;]*)/);
  if (match && known.indexOf(match[1]) >= 0) lang = match[1];
  var wanted = navigator.languages || [navigator.language || ""];
  for (var i = 0; !lang && i < wanted.length; i++) {
    var tag = String(wanted[i]).toLowerCase().split("-")[0];
    if (known.indexOf(tag) >= 0) lang = tag;
  }
  lang = lang || built;
  root.lang = lang;
  if (lang !== built) root.classList.add("i18n-pending");
  try {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) document.cookie = "%(tz_cookie)s=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
  } catch (e) {}
  // Reflex closes its socket as the page unloads; a countdown must not reopen it then.
  window.addEventListener("beforeunload", function () { window.__referralLeaving = true; });
  var query = new URLSearchParams(window.location.search);
  if (query.has("ref")) root.classList.add("has-ref");
  if (query.get("session") === "ended") root.classList.add("session-ended");
})();
"""

_STYLE = """
html.i18n-pending body { visibility: hidden; animation: i18n-reveal 0s 3s forwards; }
@keyframes i18n-reveal { to { visibility: visible; } }
.ref-slot, .notice-slot { display: none; }
html.has-ref .ref-slot { display: flex; min-height: %(ref)s; }
html.session-ended .notice-slot { display: flex; min-height: %(notice)s; }
.ref-slot:not(:empty), .notice-slot:not(:empty) { display: flex; }
.ref-slot > *, .notice-slot > * { flex: 1; }
"""

FAVICON_SVG = "/favicon.svg"


def head_components() -> list[rx.Component]:
    script = _FIRST_PAINT % {
        "built": json.dumps(settings.default_language),
        "known": json.dumps(available_languages()),
        "cookie": LANGUAGE_COOKIE,
        "tz_cookie": TIMEZONE_COOKIE,
    }
    return [
        rx.el.link(rel="icon", href=FAVICON_SVG, type="image/svg+xml"),
        # Inline, as written: React would escape the text of a child (quotes, ">").
        rx.el.script(custom_attrs={"dangerouslySetInnerHTML": {"__html": script}}),
        rx.el.style(
            custom_attrs={"dangerouslySetInnerHTML": {"__html": _STYLE % {"ref": REF_SLOT_HEIGHT, "notice": NOTICE_SLOT_HEIGHT}}}
        ),
    ]
