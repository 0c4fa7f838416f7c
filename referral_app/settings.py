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
        )


settings = Settings.from_env()
