"""The message catalogue and the language rules: every text a person reads, in their language.

One gettext catalogue per language, read with Babel:
``locales/<language>/LC_MESSAGES/messages.po``. The ``msgid`` is the message id the
code uses (for errors also the API's stable error code), the ``msgstr`` the text.
Counted texts are real gettext plural entries (``msgid_plural``, ``msgstr[n]``) chosen
by the catalogue's ``Plural-Forms``, which follow CLDR (Russian: one/few/many).
English is the reference; another language is one more ``.po`` file with the same ids,
and nothing else changes.

Who reads which language (SPEC §8): the person's own choice, then the browser's
``Accept-Language`` (best match, q-values honoured), then ``DEFAULT_LANGUAGE``.
"""

from __future__ import annotations

import gettext
import io
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Iterator

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from referral_app.settings import settings

LOCALES_DIR = Path(__file__).parent / "locales"
REFERENCE_LANGUAGE = "en"
# The language of the request being served (set by the API's middleware); None: the default.
current_language: ContextVar[str | None] = ContextVar("current_language", default=None)


def catalogue_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"


def available_languages() -> list[str]:
    return list(_languages_in(LOCALES_DIR))


# Read once per folder: every request asks (its language, each message), and the catalogues
# are files of the package, read once too (``_catalog``).
@cache
def _languages_in(directory: Path) -> tuple[str, ...]:
    return tuple(sorted(path.parent.parent.name for path in directory.glob("*/LC_MESSAGES/messages.po")))


@cache
def _catalog(language: str) -> Catalog:
    with catalogue_path(language).open("rb") as fh:
        return read_po(fh, locale=language)


def _read(language: str) -> dict[str, str | tuple[str, ...]]:
    """The messages of one catalogue as written: plural entries as a tuple of forms."""
    found: dict[str, str | tuple[str, ...]] = {}
    for message in _catalog(language):
        if not message.id:
            continue
        key = message.id[0] if message.pluralizable else message.id
        if message.pluralizable and all(message.string):
            found[key] = tuple(message.string)
        elif not message.pluralizable and message.string:
            found[key] = message.string
    return found


@cache
def _translations(language: str) -> gettext.GNUTranslations:
    """The catalogue compiled to gettext's form in memory, English behind it for a missing id."""
    buffer = io.BytesIO()
    write_mo(buffer, _catalog(language))
    buffer.seek(0)
    translations = gettext.GNUTranslations(buffer)
    if language != REFERENCE_LANGUAGE:
        translations.add_fallback(_translations(REFERENCE_LANGUAGE))
    return translations


@cache
def catalogue(language: str) -> dict[str, str]:
    """All singular messages of ``language`` (English where the language lacks one)."""
    messages = {key: value for key, value in _read(REFERENCE_LANGUAGE).items() if isinstance(value, str)}
    if language != REFERENCE_LANGUAGE and catalogue_path(language).is_file():
        messages.update({key: value for key, value in _read(language).items() if isinstance(value, str)})
    return messages


def supported(language: str | None) -> str:
    """``language`` if there is a catalogue for it, else ``DEFAULT_LANGUAGE``."""
    return language if language in available_languages() else settings.default_language


def active_language(language: str | None = None) -> str:
    """The language to use: the one given, else the current request's, else the default."""
    return supported(language or current_language.get())


def translate(message_id: str, language: str | None = None, **params: Any) -> str:
    """The text of ``message_id`` in ``language`` (default: :func:`active_language`), ``params`` filled in."""
    template = catalogue(active_language(language))[message_id]
    return template.format(**params) if params else template


def translate_plural(message_id: str, count: int, language: str | None = None, **params: Any) -> str:
    """The form of the plural entry ``message_id`` for ``count`` (CLDR rules), filled with ``count`` and ``params``."""
    template = _translations(active_language(language)).ngettext(message_id, message_id, count)
    return template.format(count=count, **params)


@contextmanager
def use_language(language: str | None) -> Iterator[None]:
    """Make ``language`` the default of :func:`translate` within the block (one request or event)."""
    token = current_language.set(language)
    try:
        yield
    finally:
        current_language.reset(token)


# --- Choosing the language --------------------------------------------------------------

MAX_ACCEPT_LANGUAGE_LENGTH = 1024


def parse_accept_language(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header (RFC 9110 §12.5.4), best first.

    Tags with ``q=0`` are left out; equal weights keep their order. A malformed part is
    skipped, never an error.
    """
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "")[:MAX_ACCEPT_LANGUAGE_LENGTH].split(",")):
        tag, _, rest = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for parameter in rest.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = -1.0
        if 0 < quality <= 1:
            ranked.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(accept_language: str | None) -> str | None:
    """The best catalogue for an ``Accept-Language`` header, or None if none fits.

    ``ru-RU`` matches ``ru`` (Babel's negotiation, by primary language when the region
    has no catalogue of its own).
    """
    preferred = parse_accept_language(accept_language)
    available = available_languages()
    for tag in preferred:  # best first: one tag at a time, so the q-order wins over Babel's aliases
        found = Locale.negotiate([tag], available, sep="-") or Locale.negotiate([tag.split("-")[0]], available)
        if found is not None:
            return str(found)
    return None


def choose_language(choice: str | None, accept_language: str | None) -> str:
    """The person's own choice, else the browser's best match, else ``DEFAULT_LANGUAGE``."""
    if choice in available_languages():
        return choice  # type: ignore[return-value]
    return negotiate(accept_language) or settings.default_language


# --- Dates ---------------------------------------------------------------------------

def _locale(language: str | None) -> Locale:
    try:
        return Locale.parse(active_language(language))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(REFERENCE_LANGUAGE)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_moment(moment: datetime, language: str | None = None, timezone: str = "UTC") -> str:
    """A date and time for people, e.g. ``29 Nov 2026, 17:15 UTC`` / ``29 нояб. 2026 г., 17:15 UTC``."""
    locale = _locale(language)
    # Seconds say nothing here; the medium pattern without them, and the zone named.
    pattern = locale.datetime_formats["medium"].format(
        locale.time_formats["short"].pattern, locale.date_formats["medium"].pattern
    )
    text = babel_dates.format_datetime(_aware(moment), pattern, tzinfo=babel_dates.get_timezone(timezone), locale=locale)
    return f"{text} {timezone}" if timezone == "UTC" else text


def format_relative(moment: datetime, now: datetime, language: str | None = None) -> str:
    """How long ago ``moment`` was, e.g. ``5 minutes ago`` / ``5 минут назад`` (CLDR, via Babel)."""
    delta: timedelta = _aware(moment) - _aware(now)
    if abs(delta) < timedelta(seconds=45):
        return translate("time.just_now", language)
    return babel_dates.format_timedelta(delta, add_direction=True, threshold=1.0, locale=_locale(language))


def language_name(language: str) -> str:
    """The language's own name, as its speakers write it (``English``, ``Русский``)."""
    try:
        name = Locale.parse(language).get_display_name(language) or language
    except (ValueError, UnknownLocaleError):
        return language
    return name[:1].upper() + name[1:]


# The cookie that remembers a person's choice in the browser (read by the pages' state
# and by the server that sends the page, so the first paint is in that language).
LANGUAGE_COOKIE = "referral_lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
# The browser's IANA time zone (set by the page's head script), for exact times.
TIMEZONE_COOKIE = "referral_tz"
MAX_TIMEZONE_LENGTH = 64


def known_timezone(name: str | None) -> str:
    """``name`` if it is an IANA time zone (``Europe/Moscow``), else ``UTC``."""
    if not name or len(name) > MAX_TIMEZONE_LENGTH:
        return "UTC"
    try:
        babel_dates.get_timezone(name)
    except (LookupError, ValueError):
        return "UTC"
    return name
