"""A worker that dies is replaced; the instance keeps serving (SPEC §16).

The app is started as users start it (scripts/run.sh) with two workers on a private Redis;
one worker is killed with SIGKILL. Before: Granian shut the whole instance down
("Unexpected exit from worker-1") and ``make run`` exited 1.
"""

from __future__ import annotations

import json
import os
import signal
import time

from tests.conftest import create_test_database
from tests.faults.conftest import api_sign_in, bearer, http, needs_redis, server_workers, started_app, wait_until

PHONE = "+79120000201"


@needs_redis
def test_a_killed_worker_is_replaced_and_nobody_is_signed_out(private_redis, tmp_path):
    extra = {"REFLEX_REDIS_URL": private_redis.url, "WORKERS": "2"}
    with started_app(tmp_path / "app.log", create_test_database("dead_worker"), extra) as app:
        def two_workers(without: int | None = None) -> list[int] | None:
            pids = server_workers(app)
            return pids if len(pids) == 2 and without not in pids else None

        workers = wait_until(two_workers, 120, "two workers")
        token = api_sign_in(app.url, PHONE)

        def profile() -> tuple[int, str]:
            status, _, text, _ = http(app.url + "/api/v1/profile/me/", headers=bearer(token), timeout=10)
            return status, text

        assert profile()[0] == 200
        victim = workers[0]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()

        # The other worker answers at once (a request that the dead one had accepted may fail).
        wait_until(lambda: profile()[0] == 200, 15, "a request answered after the kill")
        # A new worker takes the dead one's place.
        replaced = wait_until(lambda: two_workers(without=victim), 90, "a new worker in place of the killed one")
        assert app.process.poll() is None, "the server process ended"
        assert set(replaced) != set(workers)

        # Every request now answers, on both workers, with the session from before: nobody was signed out.
        answers = [profile() for _ in range(30)]
        assert [status for status, _ in answers] == [200] * 30, answers[:3]
        assert all(json.loads(text)["phone_number"] == PHONE for _, text in answers)
        status, _, _, _ = http(app.url + "/")
        assert status == 200
        assert time.monotonic() - killed_at < 120
        assert app.process.poll() is None
    assert "Unexpected exit from worker" in (tmp_path / "app.log").read_text(errors="replace")  # Granian saw it
