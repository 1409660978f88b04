"""The words shown to users in French, Dutch and English (SPEC §12), and how numbers and dates
are written in each language.

The words live in one catalogue per language, etl/base/words/{fr,nl,en}.toml (flat keys, the
same in the three files), read by the dashboard and the report pack alike. Metric and rule
labels are not there: they live in the registry (sql/registry/). Numbers, amounts and dates are
formatted by Babel only, with the Belgian locales (fr_BE, nl_BE) and British English.
"""

from __future__ import annotations

import datetime as dt
import functools
import tomllib
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.dates import format_date, format_skeleton, format_time
from babel.numbers import format_currency, format_decimal, format_percent

LANGUAGES = ("fr", "nl", "en")
DEFAULT_LANGUAGE = "fr"
LOCALES = {"fr": "fr_BE", "nl": "nl_BE", "en": "en_GB"}
WORDS_DIR = Path(__file__).parent / "words"
EMPTY = "—"


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """Every word of `lang` (one of LANGUAGES), by key, as etl/base/words/<lang>.toml has it."""
    with open(WORDS_DIR / f"{lang}.toml", "rb") as fh:
        return tomllib.load(fh)


def t(key: str, lang: str, **values) -> str:
    """The word `key` in `lang` (French when the language is unknown), with its {values}."""
    text = catalogue(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)[key]
    return text.format(**values) if values else text


def locale(lang: str) -> str:
    """The Babel locale of a language code (French's for an unknown code)."""
    return LOCALES.get(lang, LOCALES[DEFAULT_LANGUAGE])


def fmt_int(value, lang: str) -> str:
    """A whole number with the reader's thousands separator; a suppressed "<5" unchanged."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        return value
    return format_decimal(int(value), locale=locale(lang))


def fmt_number(value, lang: str, decimals: int | None = 1) -> str:
    """A number with `decimals` decimals in the reader's locale (None: as many as it has)."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        return value
    if decimals is None:
        return format_decimal(value, locale=locale(lang), decimal_quantization=False)
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=locale(lang))


def fmt_eur(value, lang: str) -> str:
    """A euro amount with cents (€ 1.234,50 in Dutch, 1 234,50 € in French)."""
    if value is None:
        return EMPTY
    return format_currency(Decimal(str(value)), "EUR", locale=locale(lang))


def fmt_rate(value, lang: str, decimals: int = 1) -> str:
    """A fraction as a percentage (0.6234 -> 62,3 %)."""
    if value is None:
        return EMPTY
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "") + "%"
    return format_percent(float(value), format=pattern, locale=locale(lang))


def fmt_date(value: dt.date | None, lang: str) -> str:
    """A date in the reader's long form (14 mars 2025, 14 maart 2025, 14 March 2025)."""
    if value is None:
        return EMPTY
    return format_date(value, "long", locale=locale(lang))


def fmt_short_date(value: dt.date | None, lang: str) -> str:
    """A date in figures, the year in full (14/03/2025, 14/3/2025, 14/03/2025)."""
    if value is None:
        return EMPTY
    return format_skeleton("yMd", value, locale=locale(lang))


def fmt_datetime(value: dt.datetime | None, lang: str) -> str:
    """A moment to the minute: its date in figures and its time (14/03/2025 09:05)."""
    if value is None:
        return EMPTY
    time = format_time(value, "short", locale=locale(lang))
    glue = Locale.parse(locale(lang)).datetime_formats["short"]
    return glue.format(time, fmt_short_date(value, lang))


def fmt_month(month: str | dt.date | None, lang: str, short: bool = False) -> str:
    """A month ("2025-03" or a date) in words: mars 2025 / maart 2025 / March 2025."""
    if month is None:
        return EMPTY
    if isinstance(month, str):
        month = dt.date.fromisoformat(month + "-01")
    return format_date(month, "LLL yy" if short else "LLLL yyyy", locale=locale(lang))
