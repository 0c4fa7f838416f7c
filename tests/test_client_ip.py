"""The client's IP for the send limits: the socket's peer, or X-Forwarded-For from trusted proxies only."""

from __future__ import annotations

import pytest

from referral_app.infra.client_ip import UNKNOWN, client_ip
from referral_app.settings import settings

CLIENT = "203.0.113.7"  # TEST-NET-3
SPOOFED = "192.0.2.66"
PROXY, PROXY_2 = "10.0.0.1", "10.0.0.2"
NO_PROXIES: tuple[str, ...] = ()


def test_without_a_header_the_peer_is_the_client():
    assert client_ip(CLIENT, None, NO_PROXIES) == CLIENT
    assert client_ip(CLIENT, "", NO_PROXIES) == CLIENT
    assert client_ip(PROXY, None, (PROXY,)) == PROXY  # a trusted proxy that forwards nothing


@pytest.mark.parametrize("trusted", [NO_PROXIES, (PROXY,), ("10.0.0.0/8",)], ids=["no proxies", "ip", "cidr"])
def test_the_header_from_an_untrusted_peer_is_ignored(trusted):
    """A client that sends X-Forwarded-For itself cannot choose its address (or a new one per request)."""
    assert client_ip(CLIENT, SPOOFED, trusted) == CLIENT
    assert client_ip(CLIENT, f"{SPOOFED}, 198.51.100.1", trusted) == CLIENT
    assert client_ip(CLIENT, PROXY, trusted) == CLIENT  # not even by naming a trusted proxy


@pytest.mark.parametrize("trusted", [(PROXY,), ("10.0.0.0/8",), ("10.0.0.0/30", "192.168.1.1")], ids=str)
def test_the_header_from_a_trusted_proxy_is_believed(trusted):
    assert client_ip(PROXY, CLIENT, trusted) == CLIENT
    assert client_ip(PROXY, f" {CLIENT} ", trusted) == CLIENT


def test_the_rightmost_untrusted_hop_is_the_client():
    """Everything left of it was written by the client (or its own proxies) and can be made up."""
    trusted = ("10.0.0.0/24",)
    header = f"{SPOOFED}, {CLIENT}, {PROXY_2}, 10.0.0.3"
    assert client_ip(PROXY, header, trusted) == CLIENT
    assert client_ip(PROXY, f"{SPOOFED},{CLIENT}", trusted) == CLIENT
    # Only the peer is a trusted proxy: the hop it reports is the client, trusted-looking or not.
    assert client_ip(PROXY, f"{SPOOFED}, {CLIENT}, {PROXY_2}", (PROXY,)) == PROXY_2


def test_a_header_of_trusted_proxies_only_gives_the_first_proxy():
    assert client_ip(PROXY, f"{PROXY_2}, 10.0.0.3", ("10.0.0.0/24",)) == PROXY_2


@pytest.mark.parametrize(
    "header",
    ["not-an-ip", "203.0.113.7:443", "999.1.1.1", "<script>", "unknown", ",", " ", "1.2.3.4\x00", "x" * 10_000],
)
def test_garbage_in_the_header_never_becomes_the_client(header):
    """A proxy passing junk: the address stays the proxy's, never the junk."""
    assert client_ip(PROXY, header, (PROXY,)) == PROXY
    assert client_ip(PROXY, f"{CLIENT}, {header}", (PROXY,)) == PROXY  # junk where the client should be
    assert client_ip(PROXY, f"{header}, {CLIENT}", (PROXY,)) == CLIENT  # junk left of it is not read


def test_ipv6():
    v6_client, v6_proxy = "2001:db8::7", "2001:db8:ffff::1"
    assert client_ip("2001:DB8:0:0::7", None, NO_PROXIES) == v6_client  # one spelling per address
    assert client_ip(v6_proxy, v6_client, ("2001:db8:ffff::/48",)) == v6_client
    assert client_ip(v6_client, CLIENT, ("2001:db8:ffff::/48",)) == v6_client  # untrusted v6 peer
    assert client_ip(v6_proxy, f"{CLIENT}, {v6_proxy}", (v6_proxy,)) == CLIENT  # mixed families
    assert client_ip(PROXY, v6_client, (PROXY, "2001:db8:ffff::/48")) == v6_client


def test_an_ipv4_peer_seen_through_a_dual_stack_socket_is_the_same_address():
    """A server listening on :: sees IPv4 peers as ::ffff:a.b.c.d."""
    assert client_ip(f"::ffff:{CLIENT}", None, NO_PROXIES) == CLIENT
    assert client_ip(f"::ffff:{PROXY}", CLIENT, (PROXY,)) == CLIENT  # the IPv4 proxy is recognised


@pytest.mark.parametrize("peer", [None, "", "testclient", "unix:/run/app.sock", "10.0.0.1:5000", "::ffff:zz"])
def test_an_unparseable_peer_is_unknown(peer):
    assert client_ip(peer, None, NO_PROXIES) == UNKNOWN
    assert client_ip(peer, CLIENT, (PROXY,)) == UNKNOWN  # and a header cannot replace it


def test_the_trusted_proxies_default_to_the_setting(monkeypatch):
    monkeypatch.setattr(settings, "trusted_proxies", ())
    assert client_ip(PROXY, CLIENT) == PROXY
    monkeypatch.setattr(settings, "trusted_proxies", ("10.0.0.0/8",))
    assert client_ip(PROXY, CLIENT) == CLIENT


# The middleware: every caller (API, Reflex's socket, admin, access log) reads what it resolved.

from referral_app.infra.client_ip import ProxyHeadersMiddleware, request_client_ip, resolve  # noqa: E402


def scope_with(peer: str, *headers: tuple[str, str], kind: str = "http", scheme: str = "http") -> dict:
    return {
        "type": kind, "scheme": scheme, "client": (peer, 5000),
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
    }


def test_every_x_forwarded_for_line_counts_in_order():
    """A proxy that adds its own header line: the client's line first, the proxy's last."""
    scope = scope_with(PROXY, ("X-Forwarded-For", SPOOFED), ("X-Forwarded-For", CLIENT))
    assert request_client_ip(resolve(scope, (PROXY,))) == CLIENT
    scope = scope_with(PROXY, ("X-Forwarded-For", f"{SPOOFED}, 192.0.2.67"), ("X-Forwarded-For", f"{CLIENT}, {PROXY_2}"))
    assert request_client_ip(resolve(scope, ("10.0.0.0/24",))) == CLIENT
    # From an untrusted peer no line counts.
    assert request_client_ip(resolve(scope_with(CLIENT, ("X-Forwarded-For", SPOOFED)), (PROXY,))) == CLIENT


@pytest.mark.parametrize(
    ("lines", "scheme"),
    [
        (["https"], "https"),
        (["HTTPS "], "https"),
        (["http"], "http"),
        (["https", "http"], "http"),  # the nearest proxy wrote the last line
        (["http, https"], "https"),
        (["ftp"], "http"),
        (["https, gopher"], "http"),
        ([], "http"),
    ],
)
def test_the_scheme_is_the_one_the_nearest_trusted_proxy_reports(lines, scheme):
    headers = [("X-Forwarded-Proto", line) for line in lines]
    assert resolve(scope_with(PROXY, *headers), (PROXY,))["scheme"] == scheme
    # With X-Forwarded-For or without it.
    assert resolve(scope_with(PROXY, ("X-Forwarded-For", CLIENT), *headers), (PROXY,))["scheme"] == scheme
    # A client talking to us directly cannot claim HTTPS.
    assert resolve(scope_with(CLIENT, *headers), (PROXY,))["scheme"] == "http"


def test_a_websocket_behind_a_tls_proxy_is_wss():
    scope = scope_with(PROXY, ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", CLIENT), kind="websocket", scheme="ws")
    resolved = resolve(scope, (PROXY,))
    assert resolved["scheme"] == "wss" and request_client_ip(resolved) == CLIENT


def test_the_middleware_rewrites_the_scope_for_everything_behind_it(monkeypatch):
    import asyncio

    monkeypatch.setattr(settings, "trusted_proxies", ("10.0.0.0/8",))
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["client"], scope["scheme"]))

    scope = scope_with(PROXY, ("X-Forwarded-For", SPOOFED), ("X-Forwarded-For", CLIENT), ("X-Forwarded-Proto", "https"))
    asyncio.run(ProxyHeadersMiddleware(app)(scope, None, None))
    assert seen == [((CLIENT, 0), "https")]
    assert scope["client"] == (PROXY, 5000)  # the caller's scope is not changed


def test_the_api_the_admin_and_the_log_read_one_client(monkeypatch, db, caplog):
    """Behind a trusted proxy that adds its own line: the send limit per IP, the staff login's
    per-IP lock and the access log all count the client the proxy saw."""
    import logging

    from fastapi.testclient import TestClient

    from referral_app.referral_app import api
    from tests.api.conftest import CLIENT_ADDRESS

    monkeypatch.setattr(settings, "trusted_proxies", (CLIENT_ADDRESS[0],))
    caplog.set_level(logging.INFO, logger="referral_app.requests")
    with TestClient(api, client=CLIENT_ADDRESS) as client:
        client.get("/api/health", headers=[("X-Forwarded-For", SPOOFED), ("X-Forwarded-For", CLIENT)])
    [record] = [r for r in caplog.records if r.name == "referral_app.requests"]
    assert record.client == CLIENT
