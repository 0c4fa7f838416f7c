"""The message catalogue and the language rules (SPEC §8): every message id the code uses
exists in every language, plurals follow CLDR, dates and relative times come from Babel,
and a person's language is their choice, then Accept-Language, then DEFAULT_LANGUAGE."""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from referral_app.domain import errors
from referral_app.i18n import (
    REFERENCE_LANGUAGE,
    _read,
    available_languages,
    catalogue,
    choose_language,
    format_moment,
    format_relative,
    language_name,
    negotiate,
    parse_accept_language,
    translate,
    translate_plural,
    use_language,
)
from referral_app.settings import settings

ROOT_PACKAGE = Path(__file__).resolve().parent.parent / "referral_app"


def _error_classes():
    return [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.DomainError)]


def _ids_used_in_code() -> set[str]:
    pattern = re.compile(r"""(?:translate(?:_plural)?\(|\bt\(|messages\[)\s*["']([a-z_]+\.[a-z_.]+)["']""")
    found = set()
    for path in Path(ROOT_PACKAGE).rglob("*.py"):
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def _placeholders(template: str | tuple[str, ...]) -> set[str]:
    forms = template if isinstance(template, tuple) else (template,)
    return {name for form in forms for _, name, _, _ in string.Formatter().parse(form) if name}


def test_english_and_russian_are_available():
    assert {"en", "ru"} <= set(available_languages())


@pytest.mark.parametrize("language", available_languages())
def test_every_language_has_every_key_with_the_same_placeholders(language):
    english = _read(REFERENCE_LANGUAGE)
    own = _read(language)
    assert set(own) == set(english)
    for key, template in own.items():
        assert isinstance(template, tuple) == isinstance(english[key], tuple), key
        assert _placeholders(template) == _placeholders(english[key]), key


def test_every_domain_error_and_every_id_in_the_code_has_a_message():
    ids = {cls.code for cls in _error_classes()} | _ids_used_in_code()
    assert len(ids) > 40  # the scan finds the pages' t("...") too
    assert ids - set(_read(REFERENCE_LANGUAGE)) == set()


def test_translate_fills_parameters_and_switches_language():
    assert translate("code.format", length=4) == "The code is 4 digits."
    assert translate("code.format", language="ru", length=4) == "Код состоит из 4 цифр."


def test_the_current_language_is_the_default_of_translate():
    with use_language("ru"):
        assert translate("phone.required") == "Введите номер телефона."
    assert translate("phone.required") == "Enter your phone number."


def test_an_unknown_language_falls_back_to_the_default():
    assert translate("phone.required", "xx") == translate("phone.required", settings.default_language)


# CLDR: Russian one (1, 21), few (2), many (5, 11); English one (1), other.
@pytest.mark.parametrize(
    ("count", "russian", "english"),
    [
        (1, "1 друг пришёл по вашему коду", "1 friend joined with your code"),
        (2, "2 друга пришли по вашему коду", "2 friends joined with your code"),
        (5, "5 друзей пришли по вашему коду", "5 friends joined with your code"),
        (11, "11 друзей пришли по вашему коду", "11 friends joined with your code"),
        (21, "21 друг пришёл по вашему коду", "21 friends joined with your code"),
        (0, "0 друзей пришли по вашему коду", "0 friends joined with your code"),
    ],
)
def test_plural_forms_follow_cldr(count, russian, english):
    assert translate_plural("profile.referral_summary", count, "ru") == russian
    assert translate_plural("profile.referral_summary", count, "en") == english


def test_the_sms_text_is_a_plural_in_the_language_asked_for():
    assert translate_plural("sms.code", 1, "ru", code="1234", minutes=1).endswith("1 минуту.")
    assert translate_plural("sms.code", 3, "ru", code="1234", minutes=3).endswith("3 минуты.")
    assert translate_plural("sms.code", 5, "ru", code="1234", minutes=5).endswith("5 минут.")
    assert translate_plural("sms.code", 5, "en", code="1234", minutes=5) == "Your sign-in code: 1234. It is valid for 5 minutes."


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", ["ru-RU", "ru", "en-US", "en"]),
        ("en;q=0.5, ru;q=0.8", ["ru", "en"]),
        ("de, ru;q=0, en;q=0.1", ["de", "en"]),
        ("*, fr;q=abc, ;;, en", ["en"]),
        ("", []),
        (None, []),
    ],
)
def test_accept_language_is_ordered_by_q_values(header, tags):
    assert parse_accept_language(header) == tags


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru"),
        ("en-US,en;q=0.9,ru;q=0.8", "en"),
        ("de-DE,ru;q=0.8,en;q=0.9", "en"),  # q-values, not the order of the header
        ("uk-UA, ru;q=0.5", "ru"),  # the best match we have
        ("fr-FR, de;q=0.5", None),
        ("ru;q=0", None),
        ("x" * 100_000, None),
    ],
)
def test_negotiation_finds_the_best_catalogue(header, language):
    assert negotiate(header) == language


def test_the_choice_comes_first_then_the_browser_then_the_default(monkeypatch):
    assert choose_language("ru", "en-US,en") == "ru"
    assert choose_language(None, "ru-RU") == "ru"
    assert choose_language("klingon", "ru-RU") == "ru"  # not a catalogue: no choice
    assert choose_language(None, "fr-FR") == "en"
    monkeypatch.setattr(settings, "default_language", "ru")
    assert choose_language(None, "fr-FR") == "ru"
    assert choose_language(None, None) == "ru"


def test_dates_and_relative_times_are_formatted_for_the_language():
    moment = datetime(2026, 11, 29, 17, 15, tzinfo=UTC)
    assert format_moment(moment, "en") == "Nov 29, 2026, 5:15\u202fPM UTC"  # CLDR: a narrow no-break space
    assert format_moment(moment, "ru") == "29 нояб. 2026\u202fг., 17:15 UTC"
    assert format_relative(moment, moment + timedelta(minutes=5), "en") == "5 minutes ago"
    assert format_relative(moment, moment + timedelta(minutes=5), "ru") == "5 минут назад"
    assert format_relative(moment, moment + timedelta(minutes=21), "ru") == "21 минуту назад"
    assert format_relative(moment, moment + timedelta(seconds=10), "ru") == "только что"
    assert format_relative(moment.replace(tzinfo=None), moment + timedelta(days=2), "en") == "2 days ago"


def test_languages_are_named_in_their_own_language():
    assert language_name("ru") == "Русский" and language_name("en") == "English"


def test_another_language_is_one_more_catalogue(tmp_path, monkeypatch):
    """A new .po file is a new language: found, negotiated and used with no code change."""
    import referral_app.i18n as i18n

    for language in available_languages():
        target = tmp_path / language / "LC_MESSAGES"
        target.mkdir(parents=True)
        (target / "messages.po").write_bytes(i18n.catalogue_path(language).read_bytes())
    german = tmp_path / "de" / "LC_MESSAGES"
    german.mkdir(parents=True)
    (german / "messages.po").write_text(
        'msgid ""\nmsgstr ""\n"Language: de\\n"\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"\n'
        '"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "phone.required"\nmsgstr "Geben Sie Ihre Telefonnummer ein."\n\n'
        'msgid "profile.referral_summary"\nmsgid_plural "profile.referral_summary"\n'
        'msgstr[0] "{count} Freund"\nmsgstr[1] "{count} Freunde"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "LOCALES_DIR", tmp_path)
    for cached in (i18n._catalog, i18n._translations, i18n.catalogue):
        cached.cache_clear()
    try:
        assert "de" in available_languages()
        assert negotiate("de-AT, en;q=0.5") == "de"
        assert translate("phone.required", "de") == "Geben Sie Ihre Telefonnummer ein."
        assert translate("code.required", "de") == translate("code.required", "en")  # English behind it
        assert translate_plural("profile.referral_summary", 2, "de") == "2 Freunde"
        assert language_name("de") == "Deutsch"
    finally:
        for cached in (i18n._catalog, i18n._translations, i18n.catalogue):
            cached.cache_clear()


def test_exact_times_are_in_the_persons_time_zone():
    from referral_app.i18n import known_timezone

    moment = datetime(2026, 11, 29, 17, 15, tzinfo=UTC)
    assert format_moment(moment, "ru", "Europe/Moscow") == "29 нояб. 2026\u202fг., 20:15"
    assert format_moment(moment, "en", "America/New_York") == "Nov 29, 2026, 12:15\u202fPM"
    for bad in (None, "", "Mars/Base", "../../etc/passwd", "Europe/" + "x" * 100):
        assert known_timezone(bad) == "UTC"
