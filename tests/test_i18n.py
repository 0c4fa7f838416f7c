"""The message catalogue: every message id the code uses exists in every language."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from referral_app.domain import errors
from referral_app.i18n import DEFAULT_LANGUAGE, _read, available_languages, catalogue, translate

ROOT_PACKAGE = Path(__file__).resolve().parent.parent / "referral_app"


def _error_classes():
    return [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.DomainError)]


def _ids_used_in_code() -> set[str]:
    pattern = re.compile(r"""translate\(\s*["']([a-z_.]+)["']""")
    found = set()
    for path in Path(ROOT_PACKAGE).rglob("*.py"):
        found |= set(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_english_and_russian_are_available():
    assert {"en", "ru"} <= set(available_languages())


@pytest.mark.parametrize("language", available_languages())
def test_every_language_has_every_key_with_the_same_placeholders(language):
    english = catalogue(DEFAULT_LANGUAGE)
    own = _read(language)
    assert set(own) == set(english)
    for key, template in own.items():
        assert _placeholders(template) == _placeholders(english[key]), key


def test_every_domain_error_and_every_id_in_the_code_has_a_message():
    ids = {cls.code for cls in _error_classes()} | _ids_used_in_code()
    assert ids - set(catalogue(DEFAULT_LANGUAGE)) == set()


def test_translate_fills_parameters_and_switches_language():
    assert translate("code.format", length=4) == "The code is 4 digits."
    assert translate("code.format", language="ru", length=4) == "Код состоит из 4 цифр."
