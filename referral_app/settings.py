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
from urllib.parse import urlsplit

import phonenumbers
from pydantic import AliasChoices, Field, ValidationError, ValidationInfo, field_validator
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


def _comma_list(value: object) -> object:
    """``"a, b,,c"`` → ``("a", "b", "c")``; anything else is left to the field's type."""
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


NonNegative = Annotated[int, Field(ge=0)]


class Settings(BaseSettings):
    """The application's settings; README "Settings" describes each variable.

    Read once at import (:data:`settings`); tests change single fields with
    ``monkeypatch.setattr(settings, ...)``. An empty variable counts as unset.
    """

    model_config = SettingsConfigDict(case_sensitive=False, env_ignore_empty=True, extra="ignore")

    database_url: str = Field(default_factory=lambda: f"sqlite:///{PROJECT_ROOT / 'referral.db'}")
    secret_key: str = Field(default_factory=_local_secret, min_length=1)
    demo_mode: bool = False  # production's default; scripts/run.sh turns it on for a local run
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
    # Slow clients (infra/server.py): headers (and an idle keep-alive connection), then the body.
    http_header_timeout_seconds: float = Field(default=15.0, gt=0, le=3600)
    http_body_timeout_seconds: float = Field(default=20.0, gt=0, le=3600)
    # A worker that dies is replaced (infra/server.py); on stop, a worker still busy after
    # this many seconds is killed, so a stop always ends.
    worker_stop_timeout_seconds: int = Field(default=30, ge=1, le=3600)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        return normalize_database_url(value.strip())

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


# Their values may hold a credential: an error names them but never shows the value.
SECRET_FIELDS = frozenset(
    {"secret_key", "database_url", "redis_url", "sms_webhook_url", "webhook_url", "webhook_secret"}
)


def describe(error: ValidationError) -> str:
    """One line per bad variable: ``CODE_LENGTH='abc': Input should be a valid integer ...``."""
    lines = []
    for problem in error.errors(include_url=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
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
