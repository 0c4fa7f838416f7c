"""Who a client is, for the limits that count per client."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

UNKNOWN = "unknown"


@lru_cache(maxsize=4096)  # runs for every request (the access log); parsing is not free
def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address, ``::ffff:a.b.c.d`` as IPv4; None for anything else.

    A dual-stack socket shows an IPv4 peer as ``::ffff:a.b.c.d``; it must still match an IPv4
    ``TRUSTED_PROXIES`` entry and count as the same client as over IPv4.
    """
    try:
        address = ipaddress.ip_address(value.strip())
    except (ValueError, AttributeError):
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """The unit per-client limits count in: an IPv4 address as it is (``::ffff:a.b.c.d`` as
    ``a.b.c.d``), an IPv6 address's /64 network (``2001:db8:1:2::/64``), ``unknown`` for
    anything else. At most 43 characters (``ffff:ffff:ffff:ffff::/64`` is the longest form).

    One IPv6 subscriber is normally given a whole /64 (RFC 6177, RFC 7421), so counting
    single IPv6 addresses would let one client be 2**64 clients.
    """
    parsed = parse_address(address)
    if parsed is None:
        return UNKNOWN
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(parsed) >> 64 << 64, 64)))
    return str(parsed)
