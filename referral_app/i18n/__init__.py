"""The message catalogue: every text a user reads, keyed by message id.

English (``en.json``) is the reference; another language is one more JSON file with
the same keys, chosen by the ``LANGUAGE_CODE`` setting.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from referral_app.settings import settings

CATALOGUE_DIR = Path(__file__).parent
DEFAULT_LANGUAGE = "en"


@cache
def catalogue(language: str) -> dict[str, str]:
    """All messages of ``language`` (English where the language lacks a key)."""
    messages = json.loads((CATALOGUE_DIR / f"{DEFAULT_LANGUAGE}.json").read_text(encoding="utf-8"))
    path = CATALOGUE_DIR / f"{language}.json"
    if language != DEFAULT_LANGUAGE and path.exists():
        messages.update(json.loads(path.read_text(encoding="utf-8")))
    return messages


def translate(message_id: str, language: str | None = None, **params: Any) -> str:
    """The text of ``message_id`` with ``params`` filled in."""
    template = catalogue(language or settings.language)[message_id]
    return template.format(**params) if params else template


def available_languages() -> list[str]:
    return sorted(path.stem for path in CATALOGUE_DIR.glob("*.json"))
