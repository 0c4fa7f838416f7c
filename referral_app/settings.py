"""All configuration: one typed class read once from the environment (pydantic-settings).

Every variable has a type, a range where one makes sense, and a default that is safe
for a local run. A wrong value stops the app at start with the variable's name and
what is wrong with it, never at the first request. README "Settings" lists every
variable; ``tests/test_settings.py`` keeps that table and this class in step.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import phonenumbers
from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LOCAL_SECRET_FILE = PROJECT_ROOT / ".secret_key"
# The message catalogues (referral_app.i18n reads them; the setting only checks one exists).
_LOCALES_DIR = PROJECT_ROOT / "referral_app" / "i18n" / "locales"


def _local_secret() -> str:
    """Return the secret kept in a git-ignored file, creating it on first use."""
    try:
        return _LOCAL_SECRET_FILE.read_text().strip()
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(48)
    fd = os.open(_LOCAL_SECRET_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def normalize_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(value: str, allow_path: bool = False) -> str | None:
    """An http(s) origin in its normal form (RFC 6454 §4): ``HTTP://App.Example:443`` with
    https → ``https://app.example``; ``None`` for anything that is not one (``null``, a
    path or query unless ``allow_path``, credentials, a bad port)."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except (ValueError, AttributeError):
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None or parts.password is not None:
        return None
    if not allow_path and (parts.path not in ("", "/") or parts.query or parts.fragment):
        return None
    if not all(char.isalnum() or char in ".-:[]_" for char in host) or not host.isascii():
        return None
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}")


def _is_host_name(value: str) -> bool:
    """A DNS name (RFC 1123 labels) or an IP address, without port or brackets."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    labels = value.split(".")
    return bool(value) and len(value) <= 253 and all(
        0 < len(label) <= 63 and label.isascii() and all(c.isalnum() or c in "-_" for c in label)
        and not label.startswith("-") and not label.endswith("-")
        for label in labels
    )


def _comma_list(value: object) -> object:
    """``"a, b,,c"`` → ``("a", "b", "c")``; anything else is left to the field's type."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


NonNegative = Annotated[int, Field(ge=0)]
# The widest network TRUSTED_PROXIES may name outside the demo, by IP version (prefix length).
_WIDEST_TRUSTED_PREFIX = {4: 24, 6: 64}

# Their values may hold a credential: an error names them but never shows the value, and
# outside demo mode none of them may be (or, for a URL, have as its password) a placeholder.
SECRET_FIELDS = ("secret_key", "database_url", "redis_url", "sms_webhook_url", "webhook_url", "webhook_secret")

# Every placeholder secret the shipped files hold (.env.example, compose.yaml,
# deploy/kubernetes/secret.yaml): whoever copies a file and forgets one must not start a
# production app with a secret the whole world knows. tests/test_settings.py reads those
# files and fails when one holds a placeholder that is not here.
SHIPPED_PLACEHOLDERS = frozenset(
    {
        "change-me",
        "change-me-to-a-long-random-string",
        "change-me-to-a-random-hex-string",
        "PASSWORD",
        "whsec_...",
    }
)


def is_placeholder(value: str) -> bool:
    """Whether ``value``, or the password of ``value`` as a URL, is a shipped placeholder."""
    value = value.strip()
    if value in SHIPPED_PLACEHOLDERS:
        return True
    if "://" in value:
        try:
            password = urlsplit(value).password
        except ValueError:
            return False
        return password is not None and unquote(password) in SHIPPED_PLACEHOLDERS
    return False


def is_loopback_host(host: str, subdomains: bool = False) -> bool:
    """Whether ``host`` (a URL's host name; an IPv6 address with or without its brackets)
    names this machine: ``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``), any
    case. ``subdomains``: ``*.localhost`` too, as browsers take it (RFC 6761 §6.3); not for
    a server the app connects to, since a resolver may send such a name anywhere."""
    host = host.lower()
    if host == "localhost" or (subdomains and host.endswith(".localhost")):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """The application's settings; README "Settings" describes each variable.

    Read once at import (:data:`settings`); tests change single fields with
    ``monkeypatch.setattr(settings, ...)``. An empty variable counts as unset.
    """

    model_config = SettingsConfigDict(case_sensitive=False, env_ignore_empty=True, extra="ignore")

    # First, so that the validators below see it: outside demo mode placeholder secrets and a
    # remote Redis without a password stop the start. Production's default; scripts/run.sh
    # turns it on for a local run.
    demo_mode: bool = False
    database_url: str = Field(default_factory=lambda: f"sqlite:///{PROJECT_ROOT / 'referral.db'}")
    secret_key: str = Field(default_factory=_local_secret, min_length=1)
    default_region: str = "RU"
    code_length: int = Field(default=4, ge=4, le=10)
    code_ttl_seconds: int = Field(default=300, ge=30, le=86_400)
    code_max_attempts: int = Field(default=5, ge=1, le=100)
    session_ttl_days: int = Field(default=30, ge=1, le=3650)
    # The language of a visitor who chose none and whose browser asks for none we have (SPEC §8).
    default_language: str = Field(default="en", pattern=r"^[a-z]{2,3}$")
    referral_page_size: int = Field(default=20, ge=1, le=100)
    rate_limits_enabled: bool = True
    send_cooldown_seconds: NonNegative = 30
    sends_per_phone_10min: NonNegative = 5
    sends_per_phone_day: NonNegative = 20
    sends_per_ip_10min: NonNegative = 30
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    sms_delay_seconds: Annotated[tuple[float, float], NoDecode] = (1.0, 2.0)
    sms_webhook_url: str = ""
    sms_webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    sms_webhook_retries: int = Field(default=2, ge=0, le=10)
    # The deadline of one send, retries included; below the shortest code lifetime (30 s), so
    # a code waiting for its gateway is never purged as expired (SPEC §16).
    sms_send_timeout_seconds: float = Field(default=10.0, gt=0, le=25)
    # After this long without the gateway's acceptance the sign-in page says the SMS is late.
    sms_late_notice_seconds: float = Field(default=5.0, gt=0, le=60)
    cleanup_interval_seconds: NonNegative = 600
    bcrypt_rounds: int = Field(default=12, ge=4, le=31)
    log_json: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Reflex's own variable: with it, page state and live updates go through Redis.
    redis_url: str = Field(default="", validation_alias=AliasChoices("REFLEX_REDIS_URL"))
    # Reflex's own variables too (rxconfig.py hands ours on): the cap of each of its Redis
    # clients' pools per worker (page state, tab sockets), and how long an event waits for a
    # free connection at the cap (under Reflex's 10 s state lock). Uncapped, Reflex's pools
    # grow with the events in flight: hundreds of connections while many tabs connect at
    # once; Reflex's 2 s wait fails connects while a busy worker catches up.
    redis_max_connections: int = Field(
        default=64, ge=3, le=10_000, validation_alias=AliasChoices("REFLEX_REDIS_MAX_CONNECTIONS")
    )
    redis_pool_timeout_seconds: float = Field(
        default=8.0, gt=0, lt=10, validation_alias=AliasChoices("REFLEX_REDIS_POOL_TIMEOUT")
    )
    # Webhooks (README "Webhooks"): off while WEBHOOK_URL is empty.
    webhook_url: str = ""
    webhook_secret: str = Field(default="", validate_default=True)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_retry_hours: float = Field(default=24.0, ge=24, le=720)
    webhook_retry_base_seconds: float = Field(default=10.0, gt=0, le=3600)
    webhook_retry_max_seconds: float = Field(default=3600.0, ge=1, le=86_400)
    webhook_poll_seconds: float = Field(default=5.0, ge=0.05, le=3600)
    webhook_retention_days: int = Field(default=7, ge=1, le=3650)

    # --- Scale-out: the connection budget and the metrics endpoint (docs/deployment.md).
    # PostgreSQL connections each worker process keeps (pool) and may open beyond them at
    # peaks (overflow): instances x workers x (pool + overflow) must stay within the
    # server's max_connections minus what others need (README "Connection budget").
    db_pool_size: int = Field(default=8, ge=1, le=200)
    db_max_overflow: int = Field(default=4, ge=0, le=200)
    # Seconds a new PostgreSQL connection may take before the request gets 503 (a server that
    # drops packets would otherwise hang it), and that a request waits for a free pooled one.
    database_connect_timeout_seconds: int = Field(default=3, ge=1, le=60)
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Who may read /metrics: addresses or CIDR networks, comma-separated.
    metrics_allowed_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        default_factory=lambda: ("127.0.0.0/8", "::1/128")
    )
    # --- Security (issue 10): origins, ... ---
    # The address browsers open, e.g. https://referral.example.com; empty: each request's own.
    public_url: str = ""
    # Other origins trusted with the user's and staff's credentials (CORS, websocket, forms).
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # Host names answered (Host header; *.example.com wildcards, * any); empty: PUBLIC_URL's
    # host, else any in demo mode and loopback only in production (infra/hosts.py).
    allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    # Slow clients (infra/server.py): headers (and an idle keep-alive connection), then the body.
    http_header_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    http_body_timeout_seconds: float = Field(default=20.0, gt=0, le=3600)
    # Page websockets one client address (an IPv6 /64) may hold open at once, per worker;
    # 0: no limit. Offices and mobile carriers put many people behind one address.
    max_websockets_per_client: NonNegative = 20
    # Warnings and errors one client address may cause per minute; more are counted, not written.
    log_records_per_client_minute: int = Field(default=10, ge=1, le=100_000)
    # A Cookie header longer than this (bytes, all lines together) gets 431 and a page that
    # clears the cookies (infra/cookie_limit.py); nginx's own limit is 8k per header line.
    max_cookie_header_bytes: int = Field(default=8192, ge=1024, le=1_048_576)
    # A worker that dies is replaced (infra/server.py); on stop, a worker still busy after
    # this many seconds is killed, so a stop always ends.
    worker_stop_timeout_seconds: int = Field(default=30, ge=1, le=3600)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value.strip())

    @field_validator(*SECRET_FIELDS)
    @classmethod
    def _not_a_placeholder(cls, value: str, info: ValidationInfo) -> str:
        """Outside demo mode, no secret (nor a URL's password) may be a shipped placeholder."""
        if isinstance(value, str) and not info.data.get("demo_mode") and is_placeholder(value):
            raise ValueError(
                "is the placeholder shipped in .env.example, compose.yaml or deploy/kubernetes/secret.yaml "
                "(or holds it as its password): set a value of your own (DEMO_MODE=true accepts it)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str, info: ValidationInfo) -> str:
        """Outside demo mode, a Redis that is not on this machine must ask for a password: the
        app's page state lives there and whoever can write it can meddle with every page."""
        value = value.strip()
        if not value or info.data.get("demo_mode"):
            return value
        parts = urlsplit(value)
        if parts.scheme.lower() == "unix":
            return value  # a socket file on this machine
        try:
            host = parts.hostname or ""
        except ValueError:
            host = ""
        if not (parts.password or "password=" in parts.query) and not is_loopback_host(host):
            raise ValueError(
                f"Redis at {host or 'an unknown host'} without a password: outside DEMO_MODE a Redis that is "
                "not on this machine must require one (redis://:PASSWORD@host:6379/0, or user:PASSWORD@ "
                "with Redis ACLs; see README \"Security\")"
            )
        return value

    @field_validator("default_region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().upper()
            if value not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"{value!r} is not a region code of libphonenumber (e.g. RU, KZ, US)")
        return value

    @field_validator("default_language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not (_LOCALES_DIR / value / "LC_MESSAGES" / "messages.po").is_file():
            known = sorted(path.parent.parent.name for path in _LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))
            raise ValueError(f"there is no catalogue for {value!r} (available: {', '.join(known)})")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("trusted_proxies", "metrics_allowed_networks", mode="before")
    @classmethod
    def _proxies(cls, value: object) -> object:
        value = _comma_list(value)
        for item in value if isinstance(value, tuple) else ():
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @model_validator(mode="after")
    def _trust_exactly_the_proxy(self) -> Settings:
        """Outside the demo: TRUSTED_PROXIES names proxies, not networks (no entry wider than
        /24 for IPv4, /64 for IPv6), and METRICS_ALLOWED_NETWORKS shares no address with it
        (requests come *through* a proxy from anywhere; an address that is both could read
        /metrics for any client, e.g. behind a TLS terminator on the proxy's host)."""
        if self.demo_mode:
            return self
        for item in self.trusted_proxies:
            network = ipaddress.ip_network(item, strict=False)
            if network.prefixlen < _WIDEST_TRUSTED_PREFIX[network.version]:
                raise ValueError(
                    f"TRUSTED_PROXIES: {item} is a whole network; name the proxy's own address(es) "
                    f"(at most a /{_WIDEST_TRUSTED_PREFIX[network.version]}): anyone in it could "
                    "claim any client address"
                )
        for item in self.metrics_allowed_networks:
            network = ipaddress.ip_network(item, strict=False)
            for proxy in self.trusted_proxies:
                if network.overlaps(ipaddress.ip_network(proxy, strict=False)):
                    raise ValueError(
                        f"METRICS_ALLOWED_NETWORKS: {item} overlaps TRUSTED_PROXIES {proxy}: requests "
                        "through the proxy could read /metrics; scrape from an address that is not a "
                        "proxy's (e.g. METRICS_ALLOWED_NETWORKS=::1/128, or nginx's proxy_bind 127.0.0.2 "
                        "with TRUSTED_PROXIES=127.0.0.2)"
                    )
        return self

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str) -> str:
        value = value.strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("expected an http:// or https:// URL, or nothing (webhooks off)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: str, info: ValidationInfo) -> str:
        """Standard Webhooks: ``whsec_`` + base64 of 24 to 64 random bytes; required with a URL."""
        value = value.strip()
        if not value:
            if info.data.get("webhook_url"):
                raise ValueError("required when WEBHOOK_URL is set (whsec_ + base64 of 24-64 random bytes)")
            return value
        key = value.removeprefix("whsec_")
        try:
            raw = base64.b64decode(key, validate=True)
        except binascii.Error:
            raw = b""
        if not value.startswith("whsec_") or not 24 <= len(raw) <= 64:
            raise ValueError("expected whsec_ followed by the base64 of 24 to 64 random bytes")
        return value

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: object) -> object:
        """An absolute http(s) URL (a path is allowed, a query or credentials are not)."""
        if not isinstance(value, str) or not value.strip():
            return value
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError("expected an absolute http(s) URL such as https://referral.example.com")
        if parts.username or parts.password:
            raise ValueError("a URL with credentials cannot be a public address")
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        """Each an origin, ``scheme://host[:port]``, kept in its normal form (RFC 6454)."""
        value = _comma_list(value)
        if not isinstance(value, tuple):
            return value
        origins = []
        for item in value:
            origin = normalize_origin(item)
            if origin is None:
                raise ValueError(f"{item!r} is not an origin such as https://app.example.com (scheme, host, port)")
            origins.append(origin)
        return tuple(origins)

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        """Each a host name or IP address (no scheme, no port), ``*.`` + a host name, or ``*``; lower-cased."""
        value = _comma_list(value)
        if not isinstance(value, tuple):
            return value
        hosts = []
        for item in value:
            host = item.lower().rstrip(".")
            name = host[2:] if host.startswith("*.") else host
            if host != "*" and not _is_host_name(name):
                raise ValueError(f"{item!r} is not a host name such as app.example.com or *.example.com (no scheme, no port)")
            hosts.append(host)
        return tuple(hosts)

    @field_validator("sms_delay_seconds", mode="before")
    @classmethod
    def _delay(cls, value: object) -> object:
        """``"1-2"`` → (1.0, 2.0), a random wait in that range; ``"1.5"`` → (1.5, 1.5)."""
        if not isinstance(value, str):
            return value
        low, _, high = value.strip().partition("-")
        try:
            bounds = float(low), float(high or low)
        except ValueError:
            raise ValueError("expected seconds as a number or a range such as 1-2") from None
        if not 0 <= bounds[0] <= bounds[1] <= 60:
            raise ValueError("expected 0 <= low <= high <= 60 seconds")
        return bounds


def environment_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    alias = Settings.model_fields[field].validation_alias
    return alias.choices[0] if isinstance(alias, AliasChoices) else field.upper()


def describe(error: ValidationError) -> str:
    """One line per bad variable: ``CODE_LENGTH='abc': Input should be a valid integer ...``."""
    lines = []
    for problem in error.errors(include_url=False):
        if not problem["loc"]:  # a rule over several variables: its message names them (never the input)
            lines.append(f"  {problem['msg'].removeprefix('Value error, ')}")
            continue
        field = str(problem["loc"][0])
        # A field read through an alias (REFLEX_REDIS_URL) is named by the alias.
        field = next((f for f in Settings.model_fields if environment_name(f) == field), field)
        name = environment_name(field) if field in Settings.model_fields else field.upper()
        shown = "" if field in SECRET_FIELDS else f"={problem.get('input')!r}"
        lines.append(f"  {name}{shown}: {problem['msg']}")
    return "\n".join(lines)


def load_settings() -> Settings:
    """Read the settings; a bad value ends the process with a message naming the variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise SystemExit(f"referral_app: invalid settings in the environment:\n{describe(error)}") from None


settings = load_settings()
