"""The shipped nginx configuration in a real chain: browser → TLS terminator → nginx → app.

Debian's nginx runs deploy/nginx/referral-http.conf, tls-front.conf and referral-proxy.conf
as shipped; the test writes only what a deployment must: ports, the upstream (the app,
started by scripts/run.sh as the other browser tests do), a certificate, and the
documented patch of tls-front.conf that names the terminator's address. The TLS
terminator in front is a second nginx with a throwaway self-signed certificate.

Loopback has many addresses, so each party has its own: the terminator connects to the
shipped nginx from 127.0.0.2 (the address tls-front.conf trusts), other clients come from
127.0.0.3 (nobody in particular), nginx reaches the app from 127.0.0.1 (the app's
TRUSTED_PROXIES, exactly that address) and monitoring reads /metrics from 127.0.0.5
(METRICS_ALLOWED_NETWORKS, which overlaps neither).

- Sign-in through the terminator, in Chromium: the session cookie is ``Secure`` with its
  ``__Host-`` name; nginx terminating TLS itself says https too; a client that claims
  https over plain HTTP does not make the app think so.
- /metrics however spelt stops at nginx, and the app refuses every spelling as well.
- A forged X-Forwarded-For does not escape the per-address send limit through nginx.
- A 12 kB cookie jar gets the app's 431 (through nginx too) with Clear-Site-Data over
  HTTPS and each cookie expired by name; a jar over nginx's buffer gets nginx's own 431
  page; Chromium, with a jar a sibling site tossed on the parent domain, recovers after
  one reload, over HTTPS and over plain HTTP.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT, create_test_database
from tests.e2e.conftest import CHROMIUM, RunningApp, _free_port, checking_engine
from tests.e2e.test_journey import new_phone, sign_in

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_DIR = ROOT / "deploy" / "nginx"
FRONT_ADDRESS = "127.0.0.2"  # the TLS terminator, as the shipped nginx sees it
STRANGER = "127.0.0.3"  # any other client
MONITORING = "127.0.0.5"  # METRICS_ALLOWED_NETWORKS
HOST = "app.example.test"  # Chromium maps *.example.test to 127.0.0.1 (tests/e2e/conftest.py)
SENDS_PER_IP = 30

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists() or shutil.which("openssl") is None or not Path(CHROMIUM).exists(),
    reason="needs nginx, openssl and Chromium (scripts/bootstrap.sh --dev installs them)",
)

METRICS_SPELLINGS = [
    "/metrics", "/metrics%0a", "/metrics%0A", "/metrics/", "//metrics", "/%6detrics", "/metrics;x",
    "/./metrics", "/api/../metrics", "/METRICS", "/Metrics%0d", "/metrics%20", "/metrics.", "/metrics?x=1",
    "/x/..%2fmetrics", "/%2fmetrics", "/metrics%09", "/api/%2e%2e/metrics",
]  # fmt: skip


def _temp_paths(directory: Path) -> str:
    return "\n".join(
        f"    {name}_temp_path {directory}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )


class NginxProcess:
    """Debian's nginx with a configuration written by the test, as a child process."""

    def __init__(self, directory: Path, http_block: str) -> None:
        self.dir = directory
        self.dir.chmod(0o755)  # nginx's workers run as nobody: their temporary files go here
        (self.dir / "nginx.conf").write_text(
            f"""worker_processes 1;
daemon off;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstreams '$realip_remote_addr $remote_addr "$request" $status "$upstream_addr"';
    access_log {self.dir}/access.log upstreams;
{_temp_paths(self.dir)}
{http_block}
}}
"""
        )
        self.process: subprocess.Popen | None = None

    def start(self, port: int) -> None:
        config = str(self.dir / "nginx.conf")
        check = subprocess.run(
            [NGINX, "-t", "-p", str(self.dir), "-c", config], capture_output=True, text=True, timeout=30
        )
        assert check.returncode == 0, check.stderr
        self.process = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", config], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                return
            except OSError:
                assert self.process.poll() is None, (self.dir / "error.log").read_text()
                assert time.monotonic() < deadline, "nginx did not listen"
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def tls_front_patched(address: str) -> str:
    """deploy/nginx/tls-front.conf with the two lines its comment says to uncomment for a
    terminator, naming ``address`` (the deployment's own edit, nothing else changed)."""
    text = (NGINX_DIR / "tls-front.conf").read_text()
    patched = text.replace("#   set_real_ip_from 192.0.2.10;", f"set_real_ip_from {address};").replace(
        "    # 192.0.2.10 1;", f"    {address} 1;"
    )
    assert patched.count(address) == 2, "tls-front.conf no longer has the documented example lines"
    return patched


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert),
         "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class Chain:
    """The app, the shipped nginx (plain HTTP and, as a second server, terminating TLS
    itself) and a TLS terminator in front of the plain one."""

    def __init__(self, app: RunningApp, work: Path) -> None:
        self.app = app
        self.plain_port, self.tls_port, self.front_port = _free_port(), _free_port(), _free_port()
        cert, key = self_signed_certificate(work)
        shipped_dir = work / "shipped"
        shipped_dir.mkdir()
        (shipped_dir / "tls-front.conf").write_text(tls_front_patched(FRONT_ADDRESS))
        self.shipped = NginxProcess(
            shipped_dir,
            f"""    include {NGINX_DIR / "referral-http.conf"};
    include {shipped_dir / "tls-front.conf"};
    upstream referral_app {{
        server 127.0.0.1:{app.port} max_fails=1 fail_timeout=10s;
    }}
    server {{
        listen 127.0.0.1:{self.plain_port};
        include {NGINX_DIR / "referral-proxy.conf"};
    }}
    server {{
        listen 127.0.0.1:{self.tls_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        include {NGINX_DIR / "referral-proxy.conf"};
    }}""",
        )
        front_dir = work / "front"
        front_dir.mkdir()
        # A TLS terminator as load balancers are: it adds the client to X-Forwarded-For and
        # says https; its header buffers are larger than nginx's default.
        self.front = NginxProcess(
            front_dir,
            f"""    map $http_upgrade $front_upgrade {{
        default upgrade;
        ""      close;
    }}
    server {{
        listen 127.0.0.1:{self.front_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        large_client_header_buffers 4 64k;
        location / {{
            proxy_pass http://127.0.0.1:{self.plain_port};
            proxy_bind {FRONT_ADDRESS};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $front_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_buffering off;
            proxy_read_timeout 1h;
        }}
    }}""",
        )

    def start(self) -> None:
        self.shipped.start(self.plain_port)
        self.front.start(self.front_port)

    def stop(self) -> None:
        self.front.stop()
        self.shipped.stop()


@pytest.fixture(scope="module")
def chain_database() -> str:
    """A database of the chain's own: its per-address send limit (SENDS_PER_IP_10MIN) counts
    the sends of 127.0.0.1, which the other browser tests would otherwise have used up."""
    return create_test_database("chain")


@pytest.fixture(scope="module")
def chain_db(chain_database):
    """A session on the chain app's database, for checks."""
    from sqlmodel import Session

    engine = checking_engine(chain_database)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


@pytest.fixture(scope="module")
def chain(chain_database, tmp_path_factory):
    work = Path(tempfile.mkdtemp(prefix="referral-chain-"))
    app = RunningApp(
        chain_database,
        tmp_path_factory.mktemp("chain-app") / "app.log",
        {
            "TRUSTED_PROXIES": "127.0.0.1",
            "METRICS_ALLOWED_NETWORKS": f"{MONITORING}/32",
            "SENDS_PER_IP_10MIN": str(SENDS_PER_IP),
            "SMS_DELAY_SECONDS": "0",
        },
    )
    chain = Chain(app, work)
    try:
        app.start()
        chain.start()
        yield chain
    finally:
        chain.stop()
        app.stop()
        shutil.rmtree(work, ignore_errors=True)


def raw(port: int, target: str, method: str = "GET", headers: list[tuple[str, str]] = (), source: str = STRANGER,
        tls: bool = False, body: bytes = b"") -> tuple[int, http.client.HTTPMessage, bytes]:  # fmt: skip
    """One request written byte for byte (clients normalise paths; this does not), from
    ``source``; (status, headers, body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=HOST)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    with sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.headers, response.read()


def scheme_the_app_sees(
    port: int, scheme: str, headers: list[tuple[str, str]] = (), tls: bool = False, source: str = STRANGER
):
    """Sign out (DELETE the browser session) from a page of ``scheme``://host: the answer
    names the cookie it removes, ``__Host-referral_session`` (``Secure``) only over HTTPS,
    and the origin check passes only if the app sees the same scheme as the page."""
    origin = f"{scheme}://{HOST}:{port}"
    headers = [("Origin", origin), *headers]
    status, answer, body = raw(port, "/api/v1/auth/browser_session/", "DELETE", headers, source, tls)
    return status, answer.get_all("Set-Cookie") or [], body


# --- The scheme ------------------------------------------------------------------------


def test_sign_in_through_a_tls_terminator_gets_the_host_cookie(chain, browser):
    """The README's set-up: TLS ends in front of nginx. With PUBLIC_URL unset the page's
    own origin is https://…; the app must see https too, or the sign-in is refused."""
    status, cookies, body = scheme_the_app_sees(chain.front_port, "https", tls=True, source="127.0.0.1")
    assert status == 204, body
    assert cookies and cookies[0].startswith("__Host-referral_session=") and "Secure" in cookies[0], cookies

    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        sign_in(page, f"https://{HOST}:{chain.front_port}", new_phone())
        session = [cookie for cookie in context.cookies() if "referral_session" in cookie["name"]]
        assert [(cookie["name"], cookie["secure"], cookie["httpOnly"]) for cookie in session] == [
            ("__Host-referral_session", True, True)
        ]
        # The chain of addresses: the terminator, then the browser, as nginx logged them.
        log = (chain.shipped.dir / "access.log").read_text()
        assert f"{FRONT_ADDRESS} 127.0.0.1 " in log
    finally:
        context.close()


def test_nginx_terminating_tls_itself_says_https(chain):
    status, cookies, body = scheme_the_app_sees(chain.tls_port, "https", tls=True)
    assert status == 204, body
    assert cookies[0].startswith("__Host-referral_session=") and "Secure" in cookies[0], cookies


def test_a_client_cannot_claim_https_over_plain_http(chain):
    """Straight to nginx over plain HTTP, with its own X-Forwarded-Proto: https (and an
    X-Forwarded-For naming the trusted terminator): the app still sees http."""
    forged = [("X-Forwarded-Proto", "https"), ("X-Forwarded-For", FRONT_ADDRESS)]
    status, cookies, body = scheme_the_app_sees(chain.plain_port, "http", forged)
    assert status == 204, body
    assert cookies[0].startswith("referral_session=") and "Secure" not in cookies[0], cookies
    status, _cookies, body = scheme_the_app_sees(chain.plain_port, "https", forged)
    assert status == 403 and json.loads(body)["code"] == "request.origin_not_allowed"


# --- Internal paths --------------------------------------------------------------------


@pytest.mark.parametrize("path", METRICS_SPELLINGS)
def test_no_spelling_of_metrics_gets_past_nginx(chain, path):
    """nginx answers (the app's answers carry X-Request-ID), 404, without the metrics."""
    status, headers, body = raw(chain.plain_port, path, source=MONITORING)
    assert status in (400, 404), (status, body[:200])
    assert "X-Request-ID" not in headers, f"{path} reached the app"
    assert b"referral_http_requests_total" not in body


def test_the_app_refuses_every_spelling_of_metrics_to_others(chain):
    """Straight to the app: a stranger gets the app's own 404 for every spelling (the same
    answer as for /metrics itself), monitoring gets the metrics."""
    for path in METRICS_SPELLINGS:
        status, headers, body = raw(chain.app.port, path)
        assert status == 404, (path, status, body[:200])
        assert json.loads(body)["code"] == "request.not_found", (path, body[:200])
    status, _headers, body = raw(chain.app.port, "/metrics", source=MONITORING)
    assert status == 200 and b"referral_http_requests_total" in body
    # The proxy's own address is not monitoring: through nginx from anywhere, never.
    status, _headers, body = raw(chain.app.port, "/metrics", source="127.0.0.1")
    assert status == 404


# --- Trust -----------------------------------------------------------------------------


def test_forged_forwarded_for_does_not_escape_the_send_limit(chain):
    """35 code requests from one address through nginx, each with a new forged
    X-Forwarded-For: after SENDS_PER_IP_10MIN (30) they are refused."""
    source = "127.0.0.7"
    statuses = []
    for number in range(35):
        payload = json.dumps({"phone_number": f"+7915{number + 3_000_000:07d}"}).encode()
        headers = [("Content-Type", "application/json"), ("X-Forwarded-For", f"203.0.113.{number + 1}")]
        path = "/api/v1/auth/request_code/"
        status, _headers, _body = raw(chain.plain_port, path, "POST", headers, source, body=payload)
        statuses.append(status)
    assert statuses == [200] * SENDS_PER_IP + [429] * 5, statuses


def test_the_send_log_names_the_client_behind_the_terminator(chain, chain_db):
    """Through the TLS terminator with a forged X-Forwarded-For: the address the app
    records (and limits) is the one that connected to the terminator."""
    from sqlmodel import select

    from referral_app.models import CodeSend

    phone = new_phone()
    payload = json.dumps({"phone_number": phone}).encode()
    headers = [("Content-Type", "application/json"), ("X-Forwarded-For", "203.0.113.99, 127.0.0.5")]
    path = "/api/v1/auth/request_code/"
    status, _headers, body = raw(chain.front_port, path, "POST", headers, "127.0.0.8", tls=True, body=payload)
    assert status == 200, body
    chain_db.expire_all()
    try:
        assert chain_db.exec(select(CodeSend.client_ip).where(CodeSend.phone_number == phone)).all() == ["127.0.0.8"]
    finally:
        chain_db.rollback()  # on SQLite an open transaction holds the one write lock


# --- The oversized cookie jar ----------------------------------------------------------


def jar(total: int, prefix: str = "tossed") -> str:
    """``total`` bytes or so of cookies, as a sibling site sets them (4 kB each at most)."""
    count = total // 3000 + 1
    return "; ".join(f"{prefix}{number}={'x' * 2990}" for number in range(count))


def test_a_12_kb_cookie_jar_gets_431_with_clear_site_data_and_the_page_then_loads(chain):
    """Through the TLS terminator and nginx: the app's 431, with Clear-Site-Data (the
    visitor is on HTTPS) and each cookie expired by name; without the jar the page loads."""
    cookie = jar(12_000)
    status, headers, body = raw(chain.front_port, "/", headers=[("Cookie", cookie)], source="127.0.0.1", tls=True)
    assert status == 431, body[:300]
    assert "X-Request-ID" in headers  # the app's answer
    assert headers["Clear-Site-Data"] == '"cookies"' and headers["Cache-Control"] == "no-store"
    assert "tossed0=; Max-Age=0; Path=/; Secure; Domain=example.test" in headers.get_all("Set-Cookie")
    assert "Too many cookies" in body.decode() and 'href="/"' in body.decode()
    status, _headers, body = raw(chain.front_port, "/", source="127.0.0.1", tls=True)
    assert status == 200 and b"<html" in body.lower()
    # Over plain HTTP (nginx, or the app on its own): the cookies expired by name, no
    # Clear-Site-Data (browsers ignore it there, and Chromium the Set-Cookie lines with it).
    for port in (chain.plain_port, chain.app.port):
        status, headers, body = raw(port, "/", headers=[("Cookie", cookie)])
        assert status == 431 and "X-Request-ID" in headers and "Clear-Site-Data" not in headers
        assert "tossed0=; Max-Age=0; Path=/; Domain=example.test" in headers.get_all("Set-Cookie")
        assert raw(port, "/")[0] == 200


def test_a_jar_over_nginxs_buffer_gets_nginxs_own_431(chain):
    """A Cookie line over 32k never reaches the app: nginx answers 431 (not its 400
    "Request Header Or Cookie Too Large") with a bilingual page and Clear-Site-Data."""
    for port, tls in ((chain.plain_port, False), (chain.front_port, True)):
        status, headers, body = raw(port, "/", headers=[("Cookie", jar(40_000))], source="127.0.0.1", tls=tls)
        assert status == 431, body[:300]
        assert "X-Request-ID" not in headers  # nginx's answer
        assert headers["Clear-Site-Data"] == '"cookies"' and headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY" and headers["Content-Type"] == "text/html; charset=utf-8"
        text = body.decode()
        assert "Too many cookies" in text and "Слишком много cookie" in text and 'href="/"' in text
        assert raw(port, "/", source="127.0.0.1", tls=tls)[0] == 200


def test_a_jar_in_several_lines_gets_the_apps_431_in_the_visitors_language(chain):
    """Each Cookie line under the limit, together over MAX_COOKIE_HEADER_BYTES: the app
    answers (through nginx) with the same recovery, in Russian for a Russian browser."""
    lines = [("Cookie", jar(5_000, "first")), ("Cookie", jar(5_000, "second")), ("Accept-Language", "ru-RU,ru;q=0.9")]
    status, headers, body = raw(chain.front_port, "/", headers=lines, source="127.0.0.1", tls=True)
    assert status == 431, body[:300]
    assert "X-Request-ID" in headers  # the app's answer
    assert headers["Clear-Site-Data"] == '"cookies"' and headers["Content-Language"] == "ru"
    assert "Слишком много cookie" in body.decode()
    expired = headers.get_all("Set-Cookie")
    assert "first0=; Max-Age=0; Path=/; Secure; Domain=example.test" in expired
    assert "second0=; Max-Age=0; Path=/; Secure; Domain=example.test" in expired
    status, _headers, body = raw(chain.plain_port, "/", headers=[("Cookie", jar(5_000, "first"))])
    assert status == 200


def test_a_jar_of_many_small_cookies_gets_the_431_through_nginx(chain):
    """A hundred small cookies: the app's answer expires as many as fit in the headers
    nginx takes from it (a 502 "upstream sent too big header" would strand the visitor),
    the largest first."""
    cookie = "; ".join(f"c{number}={'v' * (40 + number)}" for number in range(100))
    status, headers, body = raw(chain.plain_port, "/", headers=[("Cookie", cookie)])
    assert status == 431, (status, body[:300])
    expired = headers.get_all("Set-Cookie")
    assert expired and sum(len(value) for value in expired) <= 4096
    assert any(value.startswith("c99=") for value in expired)  # the largest


class SiblingSite:
    """``http://evil.example.test:<port>/`` answers with Set-Cookie lines on the parent
    domain (``Domain=example.test``): the cookie tossing of a sibling subdomain."""

    def __init__(self, count: int, http_only: bool) -> None:
        attributes = "; Domain=example.test; Path=/" + ("; HttpOnly" if http_only else "")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                self.send_response(200)
                for number in range(count):
                    self.send_header("Set-Cookie", f"tossed{number}={'x' * 3500}{attributes}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://evil.example.test:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def recovers(context, url: str) -> None:
    """The app's page opens at ``url`` after one 431 and one reload, and no tossed cookie is left."""
    page = context.new_page()
    documents: list[int] = []
    page.on(
        "response", lambda response: response.request.resource_type == "document" and documents.append(response.status)
    )
    page.goto(url)
    expect(page.locator("#phone-input")).to_be_visible(timeout=20_000)
    assert documents[0] == 431 and documents[1:] == [200], documents
    assert not [cookie for cookie in context.cookies() if cookie["name"].startswith("tossed")]


@pytest.mark.parametrize(
    ("count", "answers"),
    [(4, "the app"), (12, "nginx")],  # 14 kB: the app's 431; 42 kB: over nginx's buffer
)
def test_chromium_recovers_from_a_tossed_cookie_jar_over_https(chain, browser, count, answers):
    """A sibling has set a jar on the parent domain (HttpOnly: no script can see it):
    through the TLS terminator, Clear-Site-Data clears it, whoever answers the 431."""
    sibling = SiblingSite(count, http_only=True)
    context = browser.new_context(ignore_https_errors=True)
    try:
        context.new_page().goto(sibling.url)
        assert len([cookie for cookie in context.cookies() if cookie["domain"] == ".example.test"]) == count
        recovers(context, f"https://{HOST}:{chain.front_port}/")
    finally:
        context.close()
        sibling.close()


@pytest.mark.parametrize(
    ("through", "count", "http_only"),
    [("app", 4, True), ("nginx", 4, True), ("nginx", 12, False)],
)
def test_chromium_recovers_over_plain_http_too(chain, browser, through, count, http_only):
    """Over plain HTTP Chromium ignores Clear-Site-Data: the app's answer (on its own or
    through nginx) expires the tossed cookies by name, HttpOnly ones too; nginx's own page,
    for a jar over its buffer, by script (the cookies a script can see)."""
    port = chain.app.port if through == "app" else chain.plain_port
    sibling = SiblingSite(count, http_only=http_only)
    context = browser.new_context()
    try:
        context.new_page().goto(sibling.url)
        assert len([cookie for cookie in context.cookies() if cookie["domain"] == ".example.test"]) == count
        recovers(context, f"http://{HOST}:{port}/")
    finally:
        context.close()
        sibling.close()
