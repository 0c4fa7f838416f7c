"""The benchmark's profile (bench/profiling.py) sorts py-spy's samples into layers: the app's
ASGI middleware must be named there as the app has it, or its time is reported as the app's
own (as it was when the filter still named ``referral_app/logs.py`` after that file moved)."""

from __future__ import annotations

from bench.profiling import MIDDLEWARE_CLASSES, MIDDLEWARE_MODULES, summarise_gil
from tests.conftest import ROOT


def test_the_middleware_layer_names_every_middleware_of_the_app_and_files_that_exist():
    from referral_app.referral_app import api  # the stack is assembled by the app's wiring

    stack = {entry.cls.__name__ for entry in api.user_middleware if entry.cls.__module__.startswith("referral_app.")}
    assert stack == MIDDLEWARE_CLASSES
    assert [module for module in MIDDLEWARE_MODULES if not (ROOT / module).is_file()] == []


def test_middleware_samples_are_not_counted_as_app_code():
    raw = "\n".join([
        # A middleware's own work, in a module that also holds other code.
        "main (granian/server.py:1);MetricsMiddleware.__call__.<locals>.send_and_note "
        "(referral_app/infra/metrics.py:90) 30",
        # The request id middleware's access log.
        "main (granian/server.py:1);RequestIdMiddleware.__call__ (referral_app/infra/logs.py:470);"
        "_log_request (referral_app/infra/logs.py:440) 20",
        # A route under the middleware: the app's.
        "main (granian/server.py:1);RequestIdMiddleware.__call__ (referral_app/infra/logs.py:470);"
        "me (referral_app/api/routes.py:50) 50",
    ])
    layers = dict(summarise_gil(raw, seconds=1)["layers"])
    assert layers["app's ASGI middleware (the layers of `infra/stack.py`, `logs.py`)"] == 50
    assert layers["app code: routes, dependencies, domain"] == 50
