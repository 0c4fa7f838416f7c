"""CPU per request through the app's assembled ASGI stack, in process (issue 19).

Two figures, process CPU time per request, for each of ``--rounds`` rounds and their median:

* ``profile/me``: signs one user in, then sends ``GET /api/v1/profile/me/`` ``--requests``
  times through the real backend app (``referral_app.referral_app.api``: the API, the admin
  and every ASGI layer; httpx's ``ASGITransport``, no server, no sockets), in ms;
* ``stack only``: the same request's scope through the app's own layers alone (its
  ``user_middleware``) around an endpoint that answers ``{}`` at once, called directly
  ``--requests`` times, in µs: what the layers cost, without the route, the database and httpx.

The database is a fresh SQLite file; the access log goes to stderr as in production (send it
to /dev/null).

For an A/B of two checkouts, run it from each in turn, alternating, several times, and
compare medians (the machine is shared: the ratio is what counts)::

    (cd ../other && python bench/asgi_cpu.py) 2>/dev/null
    python bench/asgi_cpu.py 2>/dev/null
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PHONE = "+79123456789"


def _environment(directory: str) -> None:
    os.environ.update(
        DATABASE_URL=f"sqlite:///{directory}/bench.db",
        SECRET_KEY="bench-secret-key-not-for-production",
        DEMO_MODE="true",
        DEFAULT_LANGUAGE="en",
        RATE_LIMITS_ENABLED="false",
        SMS_DELAY_SECONDS="0",
        REFLEX_TELEMETRY_ENABLED="false",
    )


def _migrate() -> None:
    # In a process of its own: alembic.ini's logging set-up would add a second log handler here.
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, check=True, capture_output=True)


async def _measure(requests: int, rounds: int) -> tuple[list[float], list[float]]:
    import httpx

    from referral_app.referral_app import api

    transport = httpx.ASGITransport(app=api, client=("198.51.100.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        sent = await client.post("/api/v1/auth/request_code/", json={"phone_number": PHONE})
        code = sent.json()["confirmation_code"]
        signed_in = await client.post(
            "/api/v1/auth/auth_code/", json={"phone_number": PHONE, "confirmation_code": code}
        )
        headers = {"Authorization": f"Bearer {signed_in.json()['token']}"}
        for _ in range(200):  # warm-up: caches, the pool, first-call imports
            assert (await client.get("/api/v1/profile/me/", headers=headers)).status_code == 200
        results = []
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(requests):
                response = await client.get("/api/v1/profile/me/", headers=headers)
                if response.status_code != 200:
                    raise RuntimeError(response.text)
            results.append((time.process_time() - started) * 1000 / requests)
    stack = [await _stack_only(api, headers["Authorization"].encode(), requests) for _ in range(rounds)]
    return results, stack


async def _endpoint(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


async def _stack_only(api, authorization: bytes, requests: int) -> float:
    """µs of CPU per request through ``api``'s own layers around :func:`_endpoint`."""
    app = _endpoint
    for cls, args, kwargs in reversed(api.user_middleware):
        app = cls(app, *args, **kwargs)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": "/api/v1/profile/me/", "raw_path": b"/api/v1/profile/me/", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"localhost"), (b"accept", b"*/*"), (b"accept-encoding", b"gzip, deflate"),
                    (b"connection", b"keep-alive"), (b"user-agent", b"python-httpx/0.28.1"),
                    (b"authorization", authorization)],
        "client": ("198.51.100.7", 50000), "server": ("localhost", 80),
    }

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    for _ in range(200):
        await app(dict(scope), receive, send)
    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.process_time() - started) * 1_000_000 / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="asgi-cpu-") as directory:
        _environment(directory)
        _migrate()
        results, stack = asyncio.run(_measure(args.requests, args.rounds))
    rounds = " ".join(f"{value:.3f}" for value in results)
    print(f"{ROOT.name}: profile/me CPU ms/request, rounds {rounds}; median {statistics.median(results):.3f}")
    rounds = " ".join(f"{value:.1f}" for value in stack)
    print(f"{ROOT.name}: stack only CPU µs/request, rounds {rounds}; median {statistics.median(stack):.1f}")


if __name__ == "__main__":
    main()
