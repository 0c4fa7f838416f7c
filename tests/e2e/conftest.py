"""Browser tests: the app is started by scripts/run.sh (what `make run` runs) on a free
port with a database of its own, and driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlmodel import Session

from tests.conftest import ROOT, create_test_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Made-up host names on loopback, for pages of other origins (tests/e2e/test_cross_origin.py):
    # http://app.example.test:<port> is the app, http://evil.example.test:<port> a sibling site.
    "--host-resolver-rules=MAP *.example.test 127.0.0.1",
]
SCREENSHOTS = ROOT / "screenshots"
# A cold start installs the frontend packages and builds the production bundle.
START_TIMEOUT_S = 600


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"the app did not answer within {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def app_database() -> str:
    return create_test_database("e2e")


class RunningApp:
    """The app started by scripts/run.sh on a free port; stopped with SIGINT, as Ctrl-C would."""

    def __init__(self, database: str, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.env = {
            **os.environ,
            "PORT": str(self.port),
            "DATABASE_URL": database,
            "DEMO_MODE": "true",
            # Limits as in production, but every test browser comes from 127.0.0.1.
            "RATE_LIMITS_ENABLED": "true",
            "SENDS_PER_IP_10MIN": "100000",
            "SMS_DELAY_SECONDS": "0.2",
            **(extra_env or {}),
        }
        self.env.pop("PYTEST_CURRENT_TEST", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                ["scripts/run.sh"], cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait_until_serving(self.url + "/", self.process, self.log)

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def app_server(app_database, tmp_path_factory):
    """The app (one worker, no Redis), running for the whole session."""
    app = RunningApp(app_database, tmp_path_factory.mktemp("app") / "app.log")
    app.start()
    yield app
    app.stop()


@pytest.fixture(scope="session")
def base_url(app_server) -> str:
    return app_server.url


@contextmanager
def another_app(app_server: RunningApp, tmp_path_factory, database: str | None = None, extra_env=None):
    """Run a differently configured app beside the session's one (on the same database
    unless ``database`` is given), from the same checkout; each serves a copy of its own
    of the one frontend build (scripts/run.sh), so the two never cross-wire."""
    app = RunningApp(database or app_server.env["DATABASE_URL"], tmp_path_factory.mktemp("app") / "app.log", extra_env)
    try:
        app.start()
        yield app
    finally:
        app.stop()


def checking_engine(database_url: str):
    """An engine on a started app's database for the tests' own seeding and checks.

    The app's guard against SQL on an event loop's thread does not apply to them: this
    process is not the app, and Playwright's sync API runs its event loop in its main thread.
    """
    from referral_app.infra.db import make_engine, refuse_on_event_loop

    engine = make_engine(database_url)
    event.remove(engine, "checkout", refuse_on_event_loop)
    return engine


@pytest.fixture(scope="session")
def app_db(app_database):
    """A session on the running app's database, for seeding and checks."""
    engine = checking_engine(app_database)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        item.failed_in_call = True
    return report


@pytest.fixture
def new_context(browser, request):
    """Make browser contexts (separate cookie jars: separate people); closed after the test.

    When the test fails, every page still open is saved to screenshots/FAILED-*.png.
    """
    contexts = []

    network_problems: list[str] = []

    def make(width: int = 1440, height: int = 900, locale: str | None = None, color_scheme: str | None = None):
        context = browser.new_context(
            viewport={"width": width, "height": height}, locale=locale, color_scheme=color_scheme
        )
        context.set_default_timeout(15_000)
        context.on(
            "response",
            lambda response: response.status >= 400
            and network_problems.append(f"{response.status} {response.request.method} {response.url}"),
        )
        context.on("requestfailed", lambda req: network_problems.append(f"failed {req.method} {req.url} {req.failure}"))
        contexts.append(context)
        return context

    yield make
    if getattr(request.node, "failed_in_call", False) and network_problems:
        print("network problems:", *network_problems, sep="\n  ")
    for number, context in enumerate(contexts):
        if getattr(request.node, "failed_in_call", False):
            for index, page in enumerate(context.pages):
                screenshot(page, f"FAILED-{request.node.name}-{number}-{index}")
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
