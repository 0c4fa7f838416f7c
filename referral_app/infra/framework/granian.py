"""Granian, the server Reflex starts: our defaults for it, and its proxy-header rule.

Two reaches:

* :func:`default_server_arguments` (for ``infra/server.py``, which owns the values: HTTP/1
  only, the header timeout, dead workers replaced): Reflex starts Granian without them
  (``reflex.utils.exec`` imports ``granian.server.Server`` when it starts the server), so
  replacing that name with a subclass that fills in missing arguments reaches every server
  started in this process; the caller's arguments win. Granian's own behaviour behind the
  arguments (``respawn_failed_workers`` in its main loop) is relied on too.
* :func:`proxy_headers_resolver` (for ``infra/client_ip.py``): Granian's
  ``granian.utils.proxies.wrap_asgi_with_proxy_headers``, whose ``X-Forwarded-For`` rule (the
  rightmost address that is not itself a trusted proxy, every header line in order) the
  client address depends on; used on a scope alone, not as middleware.

Guard tests: ``tests/framework/test_granian.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_MARK = "referral_app_timeouts"


def default_server_arguments(defaults: Callable[[], dict[str, Any]]) -> None:
    """Make every ``granian.server.Server`` made in this process take ``defaults()`` for each
    argument its caller leaves out (or passes as None); once."""
    import granian.server

    if getattr(granian.server.Server, _MARK, False):
        return

    class Server(granian.server.Server):
        referral_app_timeouts = True

        def __init__(self, *args, **kwargs) -> None:
            for name, value in defaults().items():
                if kwargs.get(name) is None:
                    kwargs[name] = value
            super().__init__(*args, **kwargs)

    Server.__name__ = Server.__qualname__ = granian.server.Server.__name__
    granian.server.Server = Server


def proxy_headers_resolver(trusted_hosts: list[str]) -> Callable[[dict], dict]:
    """A function ``scope -> scope`` that applies Granian's ``X-Forwarded-For`` rule for
    ``trusted_hosts`` (networks as text) to an ASGI scope: the returned scope's ``client``
    is the client the trusted proxies report."""
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    def resolved(scope, _receive, _send):  # Granian's wrapper returns what the app returns
        return scope

    wrapped = wrap_asgi_with_proxy_headers(resolved, trusted_hosts=trusted_hosts)
    return lambda scope: wrapped(scope, None, None)
