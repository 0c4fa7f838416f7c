"""An oversized ``Cookie`` header gets 431 and a page from which the browser recovers.

Any site of the same registrable domain (a sibling subdomain) can set cookies on the
parent domain ("cookie tossing"); a jar of a dozen kB goes along with every request to
us, and a server that refuses it outright (nginx's 400 "Request Header Or Cookie Too
Large") leaves the app unusable until the cookies expire. So a request whose ``Cookie``
lines together exceed ``MAX_COOKIE_HEADER_BYTES`` is answered, before anything else
reads it (``infra/gate.py``), with ``431 Request Header Fields Too Large`` (RFC 6585 §5) and:

* over HTTPS, ``Clear-Site-Data: "cookies"`` (W3C Clear Site Data §3.1): the browser
  drops the cookies of this site's registrable domain, the tossed ones included. Not over
  plain HTTP: browsers honour it in secure contexts only, and Chromium then ignores the
  answer's Set-Cookie lines too ("Not supported for insecure origins"), the ones below;
* an expired ``Set-Cookie`` for each name in the header, largest cookie first, on this
  host and on each of its parent domains, as many as fit in :data:`EXPIRY_HEADER_BUDGET`,
  for browsers that ignore the header (plain HTTP): this reaches HttpOnly cookies too,
  as far as their path is ``/``;
* a short page in the visitor's language (``Accept-Language``, the catalogue's
  ``cookies_too_large.*``) whose script expires what it can see and reloads once; a
  link does the same by hand. Once that reload is spent (sessionStorage, a minute) the page
  says so and points to the browser's settings instead of promising to reopen by itself.

deploy/nginx/referral-proxy.conf answers the same way when nginx's own header buffer
overflows first (its internal 494).
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
from functools import lru_cache

from starlette.types import Scope, Send

from referral_app.i18n import choose_language, translate

# The expired Set-Cookie lines together stay under this many bytes: a proxy takes an
# answer's headers into one buffer (nginx's proxy_buffer_size: 4k or 8k) and answers 502
# to more. The largest cookies go first; the rest go with Clear-Site-Data or the next visit.
EXPIRY_HEADER_BUDGET = 2048
# RFC 6265 §4.1.1: a cookie name is an RFC 2616 token.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

_SCRIPT = """(function () {
  var host = location.hostname.split("."), names = document.cookie.split(";");
  for (var i = 0; i < names.length; i++) {
    var name = names[i].split("=")[0].trim();
    if (!name) continue;
    document.cookie = name + "=; Max-Age=0; Path=/";
    for (var j = 0; j < host.length - 1; j++) {
      document.cookie = name + "=; Max-Age=0; Path=/; Domain=" + host.slice(j).join(".");
    }
  }
  var reloading = false;
  try {
    var key = "referral-cookies-cleared", last = Number(sessionStorage.getItem(key) || 0);
    if (Date.now() - last > 60000) { sessionStorage.setItem(key, String(Date.now())); location.reload(); reloading = true; }
  } catch (error) {}
  if (!reloading) {  // the one reload has been spent: no more promise that the page reopens itself
    document.getElementById("clearing").hidden = true;
    document.getElementById("stuck").hidden = false;
  }
})();"""
# The page's look: inline, as the CSP's style-src 'unsafe-inline' allows (no file to fetch).
_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:32rem;margin:0 auto;"
    "padding:24px;line-height:1.5;color:#1c2024;background:#fff}"
    ".app{margin:0;font-size:.875rem;color:#60646c}h1{margin:.25rem 0 1rem;font-size:1.5rem;line-height:1.25}"
    "p{margin:0 0 1rem}a{color:#0d74ce}"
)
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (
        b"content-security-policy",
        f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'".encode(),
    ),
]


@lru_cache(maxsize=16)
def page(language: str) -> bytes:
    """The 431 page in ``language`` (a catalogue's code)."""
    app = html.escape(translate("app.title", language))
    title = html.escape(translate("cookies_too_large.title", language))
    text = html.escape(translate("cookies_too_large.text", language))
    stuck = html.escape(translate("cookies_too_large.stuck", language))
    link = html.escape(translate("cookies_too_large.reload", language))
    return (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>\n"
        f'<p class="app">{app}</p>\n<h1>{title}</h1>\n<p id="clearing">{text}</p>\n<p id="stuck" hidden>{stuck}</p>\n'
        f'<p><a href="/">{link}</a></p>\n<script>{_SCRIPT}</script>\n</body></html>\n'
    ).encode()


def _parent_domains(scope: Scope) -> list[str]:
    """``app.example.test`` → ``["app.example.test", "example.test"]``: the domains a cookie
    sent to this host can have been set on (a public suffix is refused by the browser anyway)."""
    host = next((value for name, value in scope.get("headers", ()) if name.lower() == b"host"), b"")
    host = host.decode("latin-1").strip().lower()
    if host.startswith("["):
        return []
    host = host.rsplit(":", 1)[0].rstrip(".")
    try:
        ipaddress.ip_address(host)
        return []
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) < 2 or not all(label and all(c.isalnum() or c == "-" for c in label) for label in labels):
        return []
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]


def expiring_cookies(scope: Scope) -> list[tuple[bytes, bytes]]:
    """``Set-Cookie`` headers that expire the cookies named in the request's header, the
    largest first, within :data:`EXPIRY_HEADER_BUDGET` bytes."""
    secure = scope.get("scheme") in ("https", "wss")
    sizes: dict[str, int] = {}
    for name, value in scope.get("headers", ()):
        if name.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            cookie_name = part.split("=", 1)[0].strip()
            if cookie_name and set(cookie_name) <= _TOKEN:
                sizes[cookie_name] = sizes.get(cookie_name, 0) + len(part)
    domains = _parent_domains(scope)
    tail = "; Max-Age=0; Path=/" + ("; Secure" if secure else "")
    headers: list[tuple[bytes, bytes]] = []
    spent = 0
    for name in sorted(sizes, key=sizes.__getitem__, reverse=True):
        # A __Host- cookie is host-only by definition (RFC 6265bis §4.1.3.2).
        lines = [f"{name}={tail}"]
        if not name.startswith("__Host-"):
            lines += [f"{name}={tail}; Domain={domain}" for domain in domains]
        cost = sum(len(line) + len("set-cookie: \r\n") for line in lines)
        if spent + cost > EXPIRY_HEADER_BUDGET:
            break
        spent += cost
        headers += [(b"set-cookie", line.encode("latin-1")) for line in lines]
    return headers


async def too_large(scope: Scope, send: Send) -> None:
    """Answer 431 with the recovering page (see the module's docstring)."""
    accept = next((value for name, value in scope.get("headers", ()) if name.lower() == b"accept-language"), b"")
    language = choose_language(None, accept.decode("latin-1"))
    body = page(language) if scope.get("method") != "HEAD" else b""
    headers = [
        *_HEADERS,
        *([(b"clear-site-data", b'"cookies"')] if scope.get("scheme") == "https" else []),
        (b"content-language", language.encode()),
        (b"content-length", str(len(page(language))).encode()),
        *expiring_cookies(scope),
    ]
    await send({"type": "http.response.start", "status": 431, "headers": headers})
    await send({"type": "http.response.body", "body": body})
