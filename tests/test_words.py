"""The word catalogue (etl/base/words/{fr,nl,en}.toml): the same keys and {placeholders} in the
three languages, every key the code asks for is there, every key there is used."""

from __future__ import annotations

import ast
import datetime as dt
import string
import tomllib
from pathlib import Path

import pytest

from etl.base import i18n
from etl.base.config import setting_comments

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = [p for folder in ("etl", "dashboard") for p in sorted((ROOT / folder).rglob("*.py"))]
WORD_FUNCTIONS = ("t", "word")


def _catalogue(lang: str) -> dict[str, str]:
    with open(i18n.WORDS_DIR / f"{lang}.toml", "rb") as fh:
        return tomllib.load(fh)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _trees() -> list[ast.AST]:
    return [ast.parse(path.read_text(encoding="utf-8"), str(path)) for path in PRODUCT]


def _word_calls(trees) -> list[ast.Call]:
    """Calls t(...) / word(...) / i18n.t(...) whose first argument is the key."""
    calls = []
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
                if name in WORD_FUNCTIONS:
                    calls.append(node)
    return calls


def _strings_and_prefixes(trees) -> tuple[set[str], set[str]]:
    """Every string constant of the code (and each part of "a|b"), and the constant start of
    every f-string that goes on with a value (f"scheme_{s}" -> "scheme_")."""
    strings, prefixes = set(), set()
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                first = node.values[0] if node.values else None
                if isinstance(first, ast.Constant) and len(node.values) > 1:
                    prefixes.add(first.value)
                for piece in node.values:
                    if isinstance(piece, ast.Constant):
                        strings |= set(piece.value.split("|"))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                strings |= set(node.value.split("|"))
    return strings, prefixes


def test_the_three_languages_have_the_same_keys_and_placeholders():
    french = _catalogue("fr")
    for lang in ("nl", "en"):
        other = _catalogue(lang)
        assert sorted(set(french) - set(other)) == [], f"missing in {lang}.toml"
        assert sorted(set(other) - set(french)) == [], f"missing in fr.toml (or extra in {lang})"
        wrong = [k for k in french if _placeholders(french[k]) != _placeholders(other[k])]
        assert wrong == [], f"{{placeholders}} differ between fr.toml and {lang}.toml"
    assert all(text.strip() for lang in i18n.LANGUAGES for text in _catalogue(lang).values())


def test_every_key_the_code_asks_for_is_in_the_catalogue():
    trees = _trees()
    known = set(_catalogue("fr"))
    missing, families = [], []
    for call in _word_calls(trees):
        key = call.args[0]
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            if key.value not in known:
                missing.append(key.value)
        elif isinstance(key, ast.JoinedStr) and isinstance(key.values[0], ast.Constant):
            prefix = key.values[0].value
            if not any(k.startswith(prefix) for k in known):
                families.append(prefix)
    assert missing == [] and families == []


def test_every_key_in_the_catalogue_is_used():
    strings, prefixes = _strings_and_prefixes(_trees())
    unused = [
        key
        for key in _catalogue("fr")
        if key not in strings and not any(key.startswith(p) for p in prefixes)
    ]
    assert unused == []


def test_the_english_meaning_of_a_setting_is_its_comment_in_config_toml():
    english = _catalogue("en")
    comments = setting_comments()
    prefix = "setting_meaning_"
    settings = [k.removeprefix(prefix) for k in english if k.startswith(prefix)]
    assert settings
    for setting in settings:
        if setting != "key_letter_values":  # a table of rows in config.toml, no comment
            assert english[prefix + setting] == " ".join(comments[setting].split()), setting


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_a_word_in_each_language_with_its_values(lang):
    expected = {"fr": "Palier 3", "nl": "Afbouwstap 3", "en": "Step 3"}
    assert i18n.t("outcomes_step", lang, k=3) == expected[lang]
    assert i18n.t("outcomes_step", "xx", k=3) == expected["fr"]  # unknown language: French


def test_numbers_and_dates_are_written_the_belgian_way():
    day = dt.date(2026, 3, 5)
    assert [i18n.fmt_int(1234567, lang) for lang in i18n.LANGUAGES] == [
        "1\u202f234\u202f567",
        "1.234.567",
        "1,234,567",
    ]
    assert [i18n.fmt_eur(1234.5, lang) for lang in i18n.LANGUAGES] == [
        "1\u202f234,50\u00a0€",
        "€\u00a01.234,50",
        "€1,234.50",
    ]
    assert [i18n.fmt_rate(0.554, lang) for lang in i18n.LANGUAGES] == ["55,4%", "55,4%", "55.4%"]
    assert [i18n.fmt_number(2.2193, lang, None) for lang in i18n.LANGUAGES] == [
        "2,2193",
        "2,2193",
        "2.2193",
    ]
    assert [i18n.fmt_date(day, lang) for lang in i18n.LANGUAGES] == [
        "5 mars 2026",
        "5 maart 2026",
        "5 March 2026",
    ]
    assert [i18n.fmt_short_date(day, lang) for lang in i18n.LANGUAGES] == [
        "05/03/2026",
        "5/3/2026",
        "05/03/2026",
    ]
    moment = dt.datetime(2026, 3, 5, 9, 7)
    assert [i18n.fmt_datetime(moment, lang) for lang in i18n.LANGUAGES] == [
        "05/03/2026 09:07",
        "5/3/2026, 09:07",
        "05/03/2026, 09:07",
    ]
    assert [i18n.fmt_month("2026-10", lang) for lang in i18n.LANGUAGES] == [
        "octobre 2026",
        "oktober 2026",
        "October 2026",
    ]
    assert i18n.fmt_int(None, "fr") == i18n.EMPTY and i18n.fmt_int("<5", "fr") == "<5"
