#!/usr/bin/env python3
"""Benchmark: are the admin's list views and the dashboard fast with 100,000 users?

Creates a fresh PostgreSQL database, migrates it, seeds 100,000 users (half of them
referrals of 1,000 inviters; sign-ups spread over 58 days, activations over 29), as many
sessions and 5,000 codes sent today, signs in as staff through the login
form and times each admin page in-process (FastAPI's TestClient, no network), 20 times
each. Prints a markdown table. The database is dropped at the end.

    .venv/bin/python bench/admin_views.py [--users 100000]
"""

from __future__ import annotations

import asyncio

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ALPHABET, invite_code_sql, throwaway_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGES = [
    "/admin/dashboard",
    "/admin/user/list",
    "/admin/user/list?page=2000",
    "/admin/user/list?search=%2B79000012345",
    "/admin/user/list?search=AAAAAB",
    "/admin/user/list?has_referrals=yes",
    "/admin/user/list?activated=yes&sortBy=invited_count&sort=desc",
    "/admin/referral/list",
    "/admin/referral/list?search=AAAAAB",
    "/admin/session/list",
    "/admin/session/list?search=%2B79000012345",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    with throwaway_database("referral_bench_admin") as (_name, url):
        run(url, args.users)


def run(url: str, n_users: int) -> None:
    os.environ.update(DATABASE_URL=url, SECRET_KEY="bench", BCRYPT_ROUNDS="4")
    sys.path.insert(0, str(ROOT))
    from alembic import command
    from alembic.config import Config
    from fastapi.testclient import TestClient

    from referral_app.referral_app import api
    from referral_app.infra.db import engine
    from referral_app.services import staff

    command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
    started = time.perf_counter()
    with engine.begin() as conn:
        # Invite codes: the id written in base 32 with the app's alphabet (unique).
        conn.execute(text(
            f"INSERT INTO users (phone_number, invite_code, invited_count, created_at, is_active) "
            f"SELECT '+7900' || lpad(g::text, 7, '0'), {invite_code_sql()}, 0, now() - g * interval '50 seconds', true "
            f"FROM generate_series(1, :n) g"), {"n": n_users, "alphabet": ALPHABET})
        conn.execute(text(
            "UPDATE users SET invited_by_id = 1 + (id % 1000), activated_at = now() - id * interval '25 seconds' "
            "WHERE id > 1000 AND id % 2 = 0"))
        conn.execute(text(
            "UPDATE users u SET invited_count = c.n FROM "
            "(SELECT invited_by_id, count(*) n FROM users WHERE invited_by_id IS NOT NULL GROUP BY 1) c "
            "WHERE u.id = c.invited_by_id"))
        conn.execute(text(
            "INSERT INTO auth_sessions (user_id, token_hash, created_at, expires_at) "
            "SELECT id, md5(id::text) || md5((id + 1)::text), now(), now() + interval '30 days' FROM users"))
        conn.execute(text(
            "INSERT INTO code_sends (phone_number, client_ip, sent_at) "
            "SELECT '+7901' || lpad(g::text, 7, '0'), '192.0.2.1', now() - (g % 600) * interval '1 second' "
            "FROM generate_series(1, 5000) g"))
        conn.execute(text("ANALYZE"))
    seeded = time.perf_counter() - started
    asyncio.run(staff.create_staff("bench", "bench-password-123"))
    client = TestClient(api)
    # The login form as a browser sends it: the page's CSRF token, from the admin's own origin.
    token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', client.get("/admin/login").text).group(1)
    # ... and the staff binding its script makes (referral_app/admin/auth.py).
    form = {"username": "bench", "password": "bench-password-123", "csrf_token": token,
            "staff_binding": "bench-admin-pages-binding-0123456789"}
    login = client.post("/admin/login", data=form, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert login.status_code == 302, login.status_code
    print(f"seeded {n_users:,} users (half of them referrals) and {n_users:,} sessions in {seeded:.1f} s\n")
    print("| page | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|")
    for page in [*PAGES, f"/admin/user/details/{n_users // 2}"]:
        timings = []
        for _ in range(20):
            t0 = time.perf_counter()
            response = client.get(page)
            timings.append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, (page, response.status_code)
        timings.sort()
        print(f"| `{page}` | {statistics.median(timings):.1f} | {timings[18]:.1f} | {timings[-1]:.1f} |")
    engine.dispose()


if __name__ == "__main__":
    main()
