"""Who a client is, for the limits that count per client."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

UNKNOWN = "unknown"


@lru_cache(maxsize=4096)
def client_key(address: str) -> str:
    """The unit per-client limits count in: an IPv4 address as it is (``::ffff:a.b.c.d`` as
    ``a.b.c.d``), an IPv6 address's /64 network (``2001:db8:1:2::/64``), ``unknown`` for
    anything else. At most 43 characters (``ffff:ffff:ffff:ffff::/64`` is the longest form).

    One IPv6 subscriber is normally given a whole /64 (RFC 6177, RFC 7421), so counting
    single IPv6 addresses would let one client be 2**64 clients.
    """
    try:
        parsed = ipaddress.ip_address(address.strip())
    except (ValueError, AttributeError):
        return UNKNOWN
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(parsed) >> 64 << 64, 64)))
    return str(parsed)
