"""Several instances behind a real load balancer (SPEC §12).

Three instances, each started by scripts/run.sh from this one checkout with two workers,
share a private PostgreSQL cluster (``max_connections=100``, as the server's default)
and a private Redis; the third reaches PostgreSQL through PgBouncer in transaction mode.
Debian's nginx runs in front with the proxy configuration that compose.yaml uses
(deploy/nginx/referral-proxy.conf): round robin, passive health checks, websockets.

- In Chromium: a user signs in through nginx, the instance that holds the page's
  websocket is killed, and the user goes on without signing in again: activates a code
  and sees, live, an activation made by another user on another instance.
- Two instances from the same checkout, on different databases, each answer their own
  page: the page's websocket goes to its own instance and the sign-in lands in its own
  database, and the first one's files still load after the second has started.
- Under load through nginx, with the default pool settings (DB_POOL_SIZE=8,
  DB_MAX_OVERFLOW=4), no request fails and PostgreSQL never refuses a connection:
  3 instances x 2 workers x (8 + 4) = 72 connections at most (README "Connection budget").
- /metrics of an instance adds up the requests of both its workers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from referral_app.domain.phones import mask_phone
from tests.conftest import ROOT
from tests.e2e.conftest import RunningApp, _free_port, another_app, screenshot
from tests.e2e.test_journey import new_phone, sign_in
from tests.e2e.test_recovery import PG_BIN, PrivatePostgres, PrivateRedis, _as_postgres, api_sign_in

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PROXY_CONF = ROOT / "deploy" / "nginx" / "referral-proxy.conf"
HTTP_CONF = ROOT / "deploy" / "nginx" / "referral-http.conf"
TLS_FRONT_CONF = ROOT / "deploy" / "nginx" / "tls-front.conf"  # as shipped: no terminator trusted
PGBOUNCER_ENTRYPOINT = ROOT / "deploy" / "pgbouncer" / "entrypoint.sh"
MAX_CONNECTIONS = 100
# Clients at once under load: 80 per instance, 40 per worker, as many as the API's thread
# pool has threads, so every worker would open as many connections as it is allowed.
CLIENTS = 240

pytestmark = pytest.mark.skipif(
    PG_BIN is None or not Path(NGINX).exists() or not Path(PGBOUNCER).exists(),
    reason="needs PostgreSQL's initdb, nginx and pgbouncer (scripts/bootstrap.sh --dev installs them)",
)


def end(process: subprocess.Popen | None, stop_signal: int) -> None:
    """Stop a child process with ``stop_signal``; SIGKILL if it is still there after 10 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(stop_signal)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Nginx:
    """Debian's nginx as a child process, with deploy/nginx/'s referral-http.conf,
    tls-front.conf and referral-proxy.conf."""

    def __init__(self, upstreams: list[int]) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="referral-nginx-"))
        self.dir.chmod(0o755)  # nginx's workers run as nobody: its temporary files go here
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;" for port in upstreams)
        (self.dir / "nginx.conf").write_text(
            f"""worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format upstreams '$request_method $uri $status $upstream_addr';
    access_log {self.dir}/access.log upstreams;
    client_body_temp_path {self.dir}/client_body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    include {HTTP_CONF};
    include {TLS_FRONT_CONF};
    upstream referral_app {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{self.port};
        include {PROXY_CONF};
    }}
}}
"""
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        config = str(self.dir / "nginx.conf")
        check = subprocess.run([NGINX, "-t", "-p", str(self.dir), "-c", config], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", config], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=5):
                    return
            except OSError:
                assert self.process.poll() is None, (self.dir / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.2)

    def stop(self) -> None:
        end(self.process, signal.SIGQUIT)  # graceful: open requests finish
        shutil.rmtree(self.dir, ignore_errors=True)


class PgBouncer:
    """PgBouncer in transaction mode in front of ``postgres``, configured and started by
    deploy/pgbouncer/entrypoint.sh (what the compose and Kubernetes image runs), as the
    postgres user. Clients log in with SCRAM as in production."""

    PASSWORD = "pgbouncer-test-password"

    def __init__(self, postgres: PrivatePostgres) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="referral-pgbouncer-"))
        self.log = self.dir / "pgbouncer.log"
        self.env = {
            "PATH": f"/usr/sbin:/usr/bin:/bin:{os.path.dirname(PGBOUNCER)}",
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(postgres.port),
            "DB_USER": "postgres",
            "DB_PASSWORD": self.PASSWORD,
            "POOL_SIZE": "20",
            "LISTEN_ADDR": "127.0.0.1",
            "LISTEN_PORT": str(self.port),
            "PGBOUNCER_CONFIG_DIR": str(self.dir / "config"),
        }
        # A copy where the postgres user can read it (the checkout may be in root's home).
        self.entrypoint = self.dir / "entrypoint.sh"
        shutil.copy2(PGBOUNCER_ENTRYPOINT, self.entrypoint)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.entrypoint, "postgres", "postgres")
        self.process: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                _as_postgres([str(self.entrypoint)]), env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                engine = create_engine(self.url().replace("postgresql://", "postgresql+psycopg2://"))
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
                engine.dispose()
                return
            except Exception:  # noqa: BLE001 - not up yet
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "pgbouncer did not answer"
                time.sleep(0.2)

    def stop(self) -> None:
        end(self.process, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)


def kill(app: RunningApp) -> None:
    """The instance dies: SIGKILL to the server and its workers, no goodbye."""
    assert app.process is not None
    os.killpg(app.process.pid, signal.SIGKILL)
    app.process.wait()
    app.process = None


def established_connections(port: int) -> int:
    """TCP connections accepted on ``port`` and still open (what nginx keeps: websockets)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def instance_holding_websockets(cluster: list[RunningApp], within: float = 15) -> RunningApp:
    """The one instance that has a connection from nginx open (the page's websocket)."""
    deadline = time.monotonic() + within
    while True:
        holders = [app for app in cluster if app.process is not None and established_connections(app.port) > 0]
        if len(holders) == 1:
            return holders[0]
        assert time.monotonic() < deadline, f"websockets on {[app.port for app in holders]}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """PostgreSQL (max_connections=100), Redis, PgBouncer, three instances of two workers
    from this checkout, and nginx in front."""
    started: list = []
    try:
        postgres = PrivatePostgres()
        started.append(postgres.destroy)
        # The server's default maximum, stated: the connection budget is measured against it.
        postgres.start_options = f"-c max_connections={MAX_CONNECTIONS}"
        postgres.start()
        redis_server = PrivateRedis()
        redis_server.start()
        started.append(redis_server.stop)
        bouncer = PgBouncer(postgres)
        bouncer.start()
        started.append(bouncer.stop)

        env = {
            "REFLEX_REDIS_URL": redis_server.url,
            "WORKERS": "2",
            "RATE_LIMITS_ENABLED": "false",
            "SMS_DELAY_SECONDS": "0",
            "TRUSTED_PROXIES": "127.0.0.1",
            "MAX_WEBSOCKETS_PER_CLIENT": "0",  # all 240 users come from 127.0.0.1
        }
        apps = []
        for number, database in enumerate([postgres.url, postgres.url, bouncer.url()]):
            app = RunningApp(database, tmp_path_factory.mktemp(f"instance{number}") / "app.log", env)
            app.start()  # one after the other: the first start migrates and builds
            started.append(app.stop)
            apps.append(app)
        proxy = Nginx([app.port for app in apps])
        proxy.start()
        started.append(proxy.stop)
        yield {"apps": apps, "proxy": proxy, "postgres": postgres, "bouncer": bouncer}
    finally:
        for stop in reversed(started):
            stop()


def test_nginx_round_robin_and_head(cluster):
    proxy = cluster["proxy"]
    for _ in range(6):
        request = urllib.request.Request(proxy.url + "/api/health", method="HEAD")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and response.read() == b""
    served_by = [
        line.split()[-1] for line in (proxy.dir / "access.log").read_text().splitlines() if line.startswith("HEAD /api/health 200")
    ]
    assert {f"127.0.0.1:{app.port}" for app in cluster["apps"]} == set(served_by[-6:]), served_by
    request = urllib.request.Request(proxy.url + "/", method="HEAD")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/html")
    # /metrics is not served through the proxy.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(proxy.url + "/metrics", timeout=10)
    assert refused.value.code == 404


def test_a_user_goes_on_when_the_instance_of_the_page_dies(cluster, new_context):
    apps, proxy = cluster["apps"], cluster["proxy"]
    carol_code = _invite_code(api_sign_in(proxy.url, new_phone()), proxy.url)

    alice = new_context().new_page()
    opened: list[tuple[float, str]] = []
    alice.on("websocket", lambda ws: opened.append((time.monotonic(), ws.url)))
    sign_in(alice, proxy.url, new_phone())
    alice_code = alice.locator("#invite-code").inner_text()
    first = instance_holding_websockets(apps)
    kill(first)
    killed_at = time.monotonic()

    # Without a new sign-in: the page reconnects through nginx to another instance (a
    # click made before it notices the loss would be lost with the connection).
    while not any(at > killed_at for at, _url in opened):
        assert time.monotonic() - killed_at < 30, f"the page did not reconnect: {opened}"
        alice.wait_for_timeout(100)
    print(f"reconnected {opened[-1][0] - killed_at:.1f} s after the kill")
    alice.fill("#activate-input", carol_code)
    alice.click("#activate-button")
    # Up to Reflex's state lock expiry (10 s): the dead instance may have held the
    # lock of Alice's page state in Redis (its live-update task takes it now and then).
    expect(alice.locator("#activated-code")).to_have_text(carol_code, timeout=15_000)
    assert "/profile" in alice.url
    second = instance_holding_websockets(apps)
    assert second is not first

    # Bob, on the third instance directly, enters Alice's code; her page shows it live.
    third = next(app for app in apps if app not in (first, second))
    bob = new_context(width=375, height=812).new_page()
    bob_phone = new_phone()
    sign_in(bob, third.url, bob_phone)
    bob.fill("#activate-input", alice_code)
    bob.click("#activate-button")
    expect(bob.locator("#activated-code")).to_have_text(alice_code)
    expect(alice.locator("#referral-count")).to_have_text("1", timeout=5_000)
    # Someone else's number is masked on the page (issue 11).
    expect(alice.locator("#referral-list [data-testid=referral-item]").first).to_contain_text(mask_phone(bob_phone))
    screenshot(alice, "scale-out-after-failover")

    first.start()  # back for the next tests (the same port: nginx takes it back)


def _invite_code(token: str, base_url: str) -> str:
    request = urllib.request.Request(base_url + "/api/v1/profile/me/", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["invite_code"]


def test_two_instances_from_one_checkout_each_answer_their_own_page(cluster, app_server, app_db, new_context, tmp_path_factory):
    """The session's app (the suite's database) and an instance started after it (the
    cluster's database), both from this checkout, at once."""
    from referral_app.models import User

    first = new_context().new_page()
    first_sockets: list[str] = []
    first.on("websocket", lambda ws: first_sockets.append(ws.url))
    first.goto(app_server.url + "/")
    assets = sorted(set(re.findall(r'(?:src|href)="(/assets/[^"]+)"', first.content())))
    assert assets

    with another_app(app_server, tmp_path_factory, database=cluster["postgres"].url) as second_app:
        # The first page's files are still there, and its websocket is still its own.
        for asset in assets:
            with urllib.request.urlopen(app_server.url + asset, timeout=10) as response:
                assert response.status == 200, asset
        first_phone = new_phone()
        sign_in(first, app_server.url, first_phone)

        second = new_context().new_page()
        second_sockets: list[str] = []
        second.on("websocket", lambda ws: second_sockets.append(ws.url))
        second_phone = new_phone()
        sign_in(second, second_app.url, second_phone)

    assert first_sockets and all(url.startswith(f"ws://127.0.0.1:{app_server.port}/") for url in first_sockets)
    assert second_sockets and all(url.startswith(f"ws://127.0.0.1:{second_app.port}/") for url in second_sockets)
    app_db.expire_all()
    try:
        assert app_db.query(User).filter(User.phone_number == first_phone).count() == 1
        assert app_db.query(User).filter(User.phone_number == second_phone).count() == 0
    finally:
        app_db.rollback()  # on SQLite an open transaction holds the one write lock
    engine = create_engine(cluster["postgres"].url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        found = conn.execute(text("SELECT phone_number FROM users WHERE phone_number IN (:a, :b)"), {"a": first_phone, "b": second_phone})
        assert [row[0] for row in found] == [second_phone]
    engine.dispose()


def test_under_load_no_connection_runs_out(cluster):
    """Sign-ins, profiles and activations through nginx, 240 clients at once, on all three
    instances (the third through PgBouncer): every answer a 200, and PostgreSQL's
    connections stay within the budget."""
    import httpx

    proxy, postgres = cluster["proxy"], cluster["postgres"]
    for app in cluster["apps"]:
        if app.process is None:
            app.start()
    admin = create_engine(postgres.url.replace("postgresql://", "postgresql+psycopg2://"), pool_size=1)
    peak = 0
    statuses: dict[int, int] = {}
    failures: list[str] = []
    sign_in_phones = iter(range(10**6))

    async def user(client: httpx.AsyncClient, deadline: float, owner_codes: list[str], number: int) -> None:
        while time.monotonic() < deadline:
            phone = f"+7913{next(sign_in_phones):07d}"
            try:
                code = (await client.post("/api/auth/request_code", json={"phone_number": phone})).json()["confirmation_code"]
                answer = await client.post("/api/auth/auth_code", json={"phone_number": phone, "confirmation_code": code})
                headers = {"Authorization": f"Bearer {answer.json()['token']}"}
                for _ in range(3):
                    response = await client.get("/api/profile/me", headers=headers)
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                invite = {"invite_code": owner_codes[number % len(owner_codes)]}
                response = await client.post("/api/profile/activate_invite", json=invite, headers=headers)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            except Exception as error:  # noqa: BLE001 - every failure is reported below
                failures.append(f"{type(error).__name__}: {error}")

    async def owner_code(client: httpx.AsyncClient, phone: str) -> str:
        code = (await client.post("/api/auth/request_code", json={"phone_number": phone})).json()["confirmation_code"]
        token = (await client.post("/api/auth/auth_code", json={"phone_number": phone, "confirmation_code": code})).json()["token"]
        return (await client.get("/api/profile/me", headers={"Authorization": f"Bearer {token}"})).json()["invite_code"]

    async def load(seconds: float) -> None:
        nonlocal peak
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=proxy.url, timeout=60, limits=limits) as client:
            # Invite codes of 24 people in separate referral trees: activations spread over them.
            owner_codes = [await owner_code(client, f"+791499{number:05d}") for number in range(24)]
            deadline = time.monotonic() + seconds
            users = [asyncio.create_task(user(client, deadline, owner_codes, number)) for number in range(CLIENTS)]
            while not all(task.done() for task in users):
                with admin.connect() as conn:
                    peak = max(peak, conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")).scalar())
                await asyncio.sleep(0.5)

    # In a thread of its own: Playwright's event loop runs in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, load(15)).result()
    admin.dispose()
    print(f"load: {sum(statuses.values())} answers {statuses}, peak {peak} PostgreSQL client connections, {len(failures)} failures")
    assert not failures, failures[:5]
    assert set(statuses) == {200} and sum(statuses.values()) > 200, statuses
    # 2 instances x 2 workers x (8 + 4) direct, PgBouncer's pool of 20, this test's one.
    assert peak <= 2 * 2 * 12 + 20 + 1 < MAX_CONNECTIONS, peak
    for app in cluster["apps"]:
        log = app.log.read_text(errors="replace")
        for sign in ("too many clients", "remaining connection slots", "QueuePool limit", "Traceback"):
            assert sign not in log, f"{app.url}: {sign}"


def test_metrics_add_up_over_the_workers_of_an_instance(cluster):
    """Requests answered by either worker of an instance count once each in /metrics."""
    from prometheus_client.mmap_dict import MmapedDict

    app = next(app for app in cluster["apps"] if app.process is not None)
    metrics_dir = ROOT / ".run" / str(app.process.pid) / "metrics"
    health = ("referral_http_requests_total", {"method": "GET", "route": "/api/v1/health/", "status": "200"})

    def scraped() -> float:
        with urllib.request.urlopen(app.url + "/metrics", timeout=10) as response:
            body = response.read().decode()
        match = re.search(r'^referral_http_requests_total\{method="GET",route="/api/v1/health/",status="200"\} (\S+)$', body, re.M)
        return float(match.group(1)) if match else 0.0

    def per_worker() -> dict[str, float]:
        """Each worker's own count, from its own file (counter_<pid>.db)."""
        counts = {}
        for path in metrics_dir.glob("counter_*.db"):
            for key, value, _timestamp, _position in MmapedDict.read_all_values_from_file(str(path)):
                _metric, name, labels, _help = json.loads(key)
                if (name, labels) == health:
                    counts[path.stem] = value
        return counts

    before, sent = scraped(), 0
    # New connections each time; the workers take turns as they accept them.
    while sum(value > 0 for value in per_worker().values()) < 2 and sent < 400:
        with urllib.request.urlopen(app.url + "/api/health", timeout=10):
            sent += 1
    assert sum(value > 0 for value in per_worker().values()) >= 2, per_worker()
    assert scraped() - before == sent


def test_a_start_says_what_it_does_in_a_few_lines_of_its_own(cluster):
    """scripts/run.sh prints its own short lines, not Reflex's "Run `uv run reflex run`"
    nor Alembic's INFO lines (they appear only when a step fails)."""
    app = cluster["apps"][1]  # started after the first: the build was there already
    lines = [line for line in app.log.read_text().splitlines() if not line.startswith("20")]  # not request logs
    assert lines[0] == f"run: serving http://127.0.0.1:{app.port} (staff pages: http://127.0.0.1:{app.port}/admin/); Ctrl-C stops"
    text = cluster["apps"][0].log.read_text()
    assert "uv run reflex run" not in text and "alembic" not in text.lower() and "Node.js" not in text
