"""The message catalogue: every text a person reads, keyed by message id.

One gettext catalogue per language, read with Babel:
``locales/<language>/LC_MESSAGES/messages.po``. The ``msgid`` is the message id the
code uses (for errors also the API's stable error code), the ``msgstr`` the text.
English is the reference; another language is one more ``.po`` file with the same ids.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

from referral_app.settings import settings

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LANGUAGE = "en"


def catalogue_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"


@cache
def _read(language: str) -> dict[str, str]:
    with catalogue_path(language).open("rb") as fh:
        catalog = read_po(fh, locale=language)
    return {message.id: message.string for message in catalog if message.id and message.string}


@cache
def catalogue(language: str) -> dict[str, str]:
    """All messages of ``language`` (English where the language lacks one)."""
    messages = dict(_read(DEFAULT_LANGUAGE))
    if language != DEFAULT_LANGUAGE and catalogue_path(language).is_file():
        messages.update(_read(language))
    return messages


def translate(message_id: str, language: str | None = None, **params: Any) -> str:
    """The text of ``message_id`` with ``params`` filled in."""
    template = catalogue(language or settings.language)[message_id]
    return template.format(**params) if params else template


def available_languages() -> list[str]:
    return sorted(path.parent.parent.name for path in LOCALES_DIR.glob("*/LC_MESSAGES/messages.po"))
