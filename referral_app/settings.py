"""All configuration, read once from the environment with safe local defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LOCAL_SECRET_FILE = PROJECT_ROOT / ".secret_key"


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else int(raw)


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


def _float_range(name: str, default: str) -> tuple[float, float]:
    """``"1-2"`` → (1.0, 2.0); ``"1.5"`` → (1.5, 1.5)."""
    raw = (os.environ.get(name) or default).strip()
    low, _, high = raw.partition("-")
    return float(low), float(high or low)


def _list(name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{PROJECT_ROOT / 'referral.db'}"
    return normalize_database_url(url)


def normalize_database_url(url: str) -> str:
    """Pin PostgreSQL URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@dataclass
class Settings:
    """The application's settings; see README "Settings" for each variable.

    Read once at import; tests change single fields with ``monkeypatch.setattr``.
    """

    database_url: str
    secret_key: str
    demo_mode: bool
    default_region: str
    code_length: int
    code_ttl_seconds: int
    code_max_attempts: int
    session_ttl_days: int
    language: str
    referral_page_size: int
    rate_limits_enabled: bool
    send_cooldown_seconds: int
    sends_per_phone_10min: int
    sends_per_phone_day: int
    sends_per_ip_10min: int
    trusted_proxies: tuple[str, ...]
    sms_delay_seconds: tuple[float, float]
    sms_webhook_url: str
    sms_webhook_timeout_seconds: float
    sms_webhook_retries: int
    cleanup_interval_seconds: int
    bcrypt_rounds: int
    log_json: bool
    log_level: str
    redis_url: str

    @classmethod
    def from_env(cls) -> "Settings":
        return cls(
            database_url=_database_url(),
            secret_key=os.environ.get("SECRET_KEY") or _local_secret(),
            demo_mode=_bool("DEMO_MODE", True),
            default_region=os.environ.get("DEFAULT_REGION", "RU").upper(),
            code_length=_int("CODE_LENGTH", 4),
            code_ttl_seconds=_int("CODE_TTL_SECONDS", 300),
            code_max_attempts=_int("CODE_MAX_ATTEMPTS", 5),
            session_ttl_days=_int("SESSION_TTL_DAYS", 30),
            language=os.environ.get("LANGUAGE_CODE", "en"),
            referral_page_size=_int("REFERRAL_PAGE_SIZE", 20),
            rate_limits_enabled=_bool("RATE_LIMITS_ENABLED", True),
            send_cooldown_seconds=_int("SEND_COOLDOWN_SECONDS", 30),
            sends_per_phone_10min=_int("SENDS_PER_PHONE_10MIN", 5),
            sends_per_phone_day=_int("SENDS_PER_PHONE_DAY", 20),
            sends_per_ip_10min=_int("SENDS_PER_IP_10MIN", 30),
            trusted_proxies=_list("TRUSTED_PROXIES"),
            sms_delay_seconds=_float_range("SMS_DELAY_SECONDS", "1-2"),
            sms_webhook_url=os.environ.get("SMS_WEBHOOK_URL", ""),
            sms_webhook_timeout_seconds=float(os.environ.get("SMS_WEBHOOK_TIMEOUT_SECONDS") or 5),
            sms_webhook_retries=_int("SMS_WEBHOOK_RETRIES", 2),
            cleanup_interval_seconds=_int("CLEANUP_INTERVAL_SECONDS", 600),
            bcrypt_rounds=_int("BCRYPT_ROUNDS", 12),
            log_json=_bool("LOG_JSON", False),
            log_level=(os.environ.get("LOG_LEVEL") or "INFO").strip().upper(),
            # Reflex's own variable: with it, state and live updates go through Redis.
            redis_url=os.environ.get("REFLEX_REDIS_URL", ""),
        )


settings = Settings.from_env()
