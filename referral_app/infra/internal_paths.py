"""Paths for the inside only (``/metrics``), recognised however a client spells them.

A proxy and the app each decode a path their own way, so a spelling one of them reads as
another path slips past a check made on the raw text: ``/metrics%0a`` is not nginx's
``/metrics``, yet Starlette's route pattern ``^/metrics$`` matches ``/metrics\\n`` (in
Python's regular expressions ``$`` also matches before a final newline). So the check
here is made on a normalised path, the way deploy/nginx/referral-proxy.conf matches it:
percent-decoded (once more than the server did), ``\\`` read as ``/``, ``;parameters``
dropped from every segment (RFC 3986 §3.3), ``//`` merged, ``.`` and ``..`` resolved
(RFC 3986 §5.2.4), trailing ``/``, dots, spaces and control characters dropped, and
compared without case. The stack's request gate (``infra/gate.py``) answers such a request 404 (the
app's answer to any unknown path) unless the client, as the proxy-header middleware
resolved it, is in ``METRICS_ALLOWED_NETWORKS``; from there it goes on to the router.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import unquote


INTERNAL_PATHS = frozenset({"/metrics"})
# What a normalised path loses at its end: nothing a route could tell apart.
_TRAILING = "/. \t\r\n\x0b\x0c\x00" + "".join(map(chr, range(0x20)))


@lru_cache(maxsize=1024)
def normalised_path(path: str) -> str:
    """``path`` (an ASGI ``scope["path"]``, already percent-decoded once) in the form that
    decides whether it is internal: ``/api/../METRICS;x%0a`` → ``/metrics``."""
    path = unquote(path, errors="replace").replace("\\", "/")
    segments: list[str] = []
    for segment in path.split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    return ("/" + "/".join(segments)).rstrip(_TRAILING).lower() or "/"


def is_internal(path: str) -> bool:
    """Whether ``path`` names one of :data:`INTERNAL_PATHS`, however spelt."""
    # Every spelling still holds the letters (the server decoded one layer of %xx; a second
    # layer keeps a "%"): most requests are decided without normalising.
    lowered = path.lower()
    if "%" not in path and not any(name[1:] in lowered for name in INTERNAL_PATHS):
        return False
    return normalised_path(path) in INTERNAL_PATHS
