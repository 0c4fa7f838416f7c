"""The client's IP address, for the send limits; used by the Reflex states and the API alike."""

from __future__ import annotations

import ipaddress
from functools import cache, lru_cache

from referral_app.settings import settings

UNKNOWN = "unknown"


@cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


@lru_cache(maxsize=4096)  # runs for every request (the access log); parsing is not free
def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # A dual-stack socket shows an IPv4 peer as ::ffff:a.b.c.d; it must still match an
        # IPv4 TRUSTED_PROXIES entry and count as the same client as over IPv4.
        return address.ipv4_mapped
    return address


def client_ip(peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[str, ...] | None = None) -> str:
    """The address of the client.

    ``peer`` is the socket's remote address. ``X-Forwarded-For`` is believed only when the
    peer is a trusted proxy (``TRUSTED_PROXIES``: addresses or networks); then the
    rightmost address in it that is not itself a trusted proxy is the client.
    """
    networks = _trusted_networks(settings.trusted_proxies if trusted_proxies is None else trusted_proxies)
    address = _parse(peer or "")
    if address is None:
        return UNKNOWN
    if not forwarded_for:
        return str(address)
    hops = forwarded_for.split(",")
    while hops and any(address in network for network in networks):
        forwarded = _parse(hops.pop())
        if forwarded is None:
            break
        address = forwarded
    return str(address)


# A malformed TRUSTED_PROXIES stops the app at start, not at the first request.
_trusted_networks(settings.trusted_proxies)


def request_client_ip(scope) -> str:
    """The client address of an ASGI request (HTTP or websocket): every caller's one way in.

    Reads the socket's peer and every ``X-Forwarded-For`` header line, in order, joined with
    commas as RFC 9110 §5.3 combines repeated lines.
    """
    peer = scope.get("client")
    forwarded = ", ".join(
        value.decode("latin-1") for name, value in scope.get("headers", ()) if name.lower() == b"x-forwarded-for"
    )
    return client_ip(peer[0] if peer else None, forwarded or None)
