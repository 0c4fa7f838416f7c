"""Guards of granian.py (referral_app/infra/framework/): the defaults every Granian server of
the process gets (HTTP/1 only, the header timeout, dead workers replaced: infra/server.py), and
Granian's proxy-header rule that the client's address depends on (infra/client_ip.py).

Each fails if Granian, or how Reflex starts it, changes what the module relies on.
"""

from __future__ import annotations

import inspect

from referral_app.infra.framework.granian import proxy_headers_resolver
from referral_app.infra.server import granian_http1_settings, use_http_timeouts
from referral_app.settings import settings


def test_granian_gets_the_header_timeout(monkeypatch):
    import granian.server

    import rxconfig  # noqa: F401  (installs the timeouts, as for every start)

    monkeypatch.setattr(settings, "http_header_timeout_seconds", 7.5)
    server = granian.server.Server(target="referral_app.referral_app:app", factory=True)
    assert server.http1_settings.header_read_timeout == 7500
    assert granian_http1_settings().keep_alive is True
    use_http_timeouts()  # a second call changes nothing
    assert granian.server.Server.__mro__[1].__name__ in ("MPServer", "MTServer")


def test_granian_speaks_http1_only_and_replaces_dead_workers(monkeypatch):
    """Silent connections are closed only in HTTP/1 mode; a dead worker is replaced, and a
    stop ends within WORKER_STOP_TIMEOUT_SECONDS (infra/server.py; tests/faults/ shows both)."""
    import granian.server
    from granian.constants import HTTPModes

    import rxconfig  # noqa: F401

    monkeypatch.setattr(settings, "worker_stop_timeout_seconds", 12)
    server = granian.server.Server(target="referral_app.referral_app:app", factory=True)
    assert server.http == HTTPModes.http1
    assert server.respawn_failed_workers is True
    assert server.workers_kill_timeout == 12
    # What the caller gives wins.
    assert granian.server.Server(target="x:y", http=HTTPModes.auto).http == HTTPModes.auto


def test_granian_still_respawns_failed_workers_the_way_we_rely_on():
    """Granian's main loop replaces an unexpected exit only with ``respawn_failed_workers``
    (else it shuts down); an upgrade that changes this must be looked at again."""
    from granian.server.common import AbstractServer

    loop = inspect.getsource(AbstractServer._serve_loop)
    assert "if not self.respawn_failed_workers:" in loop and "self._respawn_workers(workers" in loop


def test_reflex_still_starts_granian_through_granian_server():
    """If a Reflex upgrade starts Granian another way, the header timeout would silently be lost."""
    from reflex.utils import exec as reflex_exec

    for launcher in (reflex_exec.run_granian_backend_prod, reflex_exec.run_granian_backend):
        assert "from granian.server import Server as Granian" in inspect.getsource(launcher)


def test_granians_proxy_rule_takes_the_rightmost_untrusted_hop_of_every_line():
    """What infra/client_ip.py builds on: ``wrap_asgi_with_proxy_headers`` returns what the app
    returns, reads every X-Forwarded-For line in order, and skips trusted hops from the right."""
    resolve = proxy_headers_resolver(["10.0.0.0/8"])
    scope = {
        "type": "http",
        "client": ("10.0.0.1", 5000),
        "headers": [(b"x-forwarded-for", b"198.51.100.7, 203.0.113.5"), (b"x-forwarded-for", b"10.0.0.2")],
    }
    assert resolve(scope)["client"][0] == "203.0.113.5"
    untrusted = {**scope, "client": ("192.0.2.1", 5000)}
    assert resolve(untrusted)["client"][0] == "192.0.2.1"
