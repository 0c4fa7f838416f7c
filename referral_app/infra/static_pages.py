"""How the prebuilt pages are served (Reflex mounts ``.web/build/client`` on the backend in
production): cache lifetimes, and pages without a detour through a redirect.

- ``/assets/*`` are Vite's content-hashed files: a new build gives new names, so they are
  cached for a year, ``immutable`` (RFC 8246). Pages themselves are revalidated each
  time (``no-cache``), so a new build reaches everyone at once.
- ``/profile`` is served as ``/profile/`` is; Starlette's static files would first
  answer ``307`` to add the slash, a round trip on every sign-in.
"""

from __future__ import annotations

from functools import lru_cache

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from referral_app.infra.framework.reflex_frontend import static_dir

HASHED_ASSETS_PREFIX = "/assets/"
IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"
# Files of our own in assets/ (not hashed): a day.
ONE_DAY = b"public, max-age=86400"
UNHASHED_FILES = ("/favicon.svg", "/favicon.ico")


@lru_cache(maxsize=512)
def _is_page_directory(path: str) -> bool:
    relative = path.strip("/")
    if not relative or "." in relative.rsplit("/", 1)[-1] or ".." in relative.split("/"):
        return False
    try:
        return (static_dir() / relative / "index.html").is_file()
    except OSError:  # a name too long for the file system, say: no page
        return False


def cache_control_for(path: str, content_type: bytes) -> bytes | None:
    if path.startswith(HASHED_ASSETS_PREFIX):
        return IMMUTABLE
    if path in UNHASHED_FILES:
        return ONE_DAY
    if content_type.startswith(b"text/html"):
        return REVALIDATE
    return None


class FrontendServing:
    """Pure ASGI: rewrites ``/page`` to ``/page/`` for prebuilt pages and sets ``Cache-Control``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if not path.endswith("/") and _is_page_directory(path):
            scope = {**scope, "path": path + "/", "raw_path": (path + "/").encode()}

        async def send_with_cache_control(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                content_type = next((value for name, value in headers if name.lower() == b"content-type"), b"")
                value = cache_control_for(path, content_type)
                if value is not None and b"cache-control" not in names:
                    message = {**message, "headers": [*headers, (b"cache-control", value)]}
            await send(message)

        await self.app(scope, receive, send_with_cache_control)
