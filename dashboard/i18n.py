"""Interface words in French, Dutch and English (SPEC §12), and locale-aware formatting.

Shared words live here; each page registers its own words with `register` at import time (a
key used twice is an error, so two pages cannot silently disagree). Numbers, amounts and dates
are formatted by Babel with the Belgian locales (fr_BE, nl_BE) and British English.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

LANGUAGES = ("fr", "nl", "en")
DEFAULT_LANGUAGE = "fr"
LOCALES = {"fr": "fr_BE", "nl": "nl_BE", "en": "en_GB"}
# The browser's name for the same locale (ag-grid formats numbers with toLocaleString).
BROWSER_LOCALES = {"fr": "fr-BE", "nl": "nl-BE", "en": "en-GB"}
EMPTY = "—"

WORDS: dict[str, dict[str, str]] = {
    "app_title": {
        "fr": "Programme de sevrage aux benzodiazépines — monitoring",
        "nl": "Afbouwprogramma benzodiazepines — monitoring",
        "en": "Benzodiazepine withdrawal programme — monitoring",
    },
    "state_of_play": {
        "fr": "État des lieux mensuel",
        "nl": "Maandelijkse stand van zaken",
        "en": "Monthly state of play",
    },
    "data": {"fr": "Données", "nl": "Gegevens", "en": "Data"},
    "load_ledger": {"fr": "Registre des chargements", "nl": "Laadregister", "en": "Load ledger"},
    "rejects_by_reason": {
        "fr": "Lignes rejetées par motif",
        "nl": "Geweigerde lijnen per reden",
        "en": "Rejected rows by reason",
    },
    "data_as_of": {"fr": "Données au", "nl": "Gegevens op", "en": "Data as of"},
    "no_data": {
        "fr": "Aucune donnée chargée.",
        "nl": "Geen gegevens geladen.",
        "en": "No data loaded.",
    },
    "provisional": {"fr": "provisoire", "nl": "voorlopig", "en": "provisional"},
    "language": {"fr": "Langue", "nl": "Taal", "en": "Language"},
    "scheme_5": {"fr": "5 paliers", "nl": "5 stappen", "en": "5 steps"},
    "scheme_7": {"fr": "7 paliers", "nl": "7 stappen", "en": "7 steps"},
    "scheme_10": {"fr": "10 paliers", "nl": "10 stappen", "en": "10 steps"},
    "scheme_total": {"fr": "Total", "nl": "Totaal", "en": "Total"},
    "scheme": {"fr": "Schéma", "nl": "Schema", "en": "Scheme"},
    "month": {"fr": "Mois", "nl": "Maand", "en": "Month"},
    "as_of": {"fr": "Situation au", "nl": "Stand op", "en": "As of"},
    "as_of_default": {
        "fr": "dernière délivrance",
        "nl": "laatste aflevering",
        "en": "latest delivery",
    },
    "view_analyst": {"fr": "Vue analyste", "nl": "Analistenweergave", "en": "Analyst view"},
    "view_publication": {
        "fr": "Vue publication",
        "nl": "Publicatieweergave",
        "en": "Publication view",
    },
    "publication_note": {
        "fr": "Vue publication : les nombres de 1 à {n} sont affichés « <{t} », les taux sur "
        "moins de {t} programmes sont masqués.",
        "nl": "Publicatieweergave: aantallen van 1 tot {n} worden als '<{t}' getoond, "
        "percentages op minder dan {t} programma's worden verborgen.",
        "en": "Publication view: counts from 1 to {n} are shown as '<{t}', rates over fewer "
        "than {t} programmes are hidden.",
    },
    "download_csv": {"fr": "Télécharger (CSV)", "nl": "Downloaden (CSV)", "en": "Download (CSV)"},
    "download_xlsx": {
        "fr": "Télécharger (Excel)",
        "nl": "Downloaden (Excel)",
        "en": "Download (Excel)",
    },
    "pilot_phase": {"fr": "Phase pilote", "nl": "Pilootfase", "en": "Pilot phase"},
    "structural_phase": {
        "fr": "Phase structurelle",
        "nl": "Structurele fase",
        "en": "Structural phase",
    },
    "unassigned": {"fr": "Non attribués", "nl": "Niet toegewezen", "en": "Unassigned"},
}


def register(words: dict[str, dict[str, str]]) -> None:
    """Add a page's words (every key in fr, nl and en; a key may be registered once)."""
    for key, entry in words.items():
        if key in WORDS and WORDS[key] != entry:
            raise ValueError(f"interface word {key!r} is registered twice with different text")
        missing = [lang for lang in LANGUAGES if not entry.get(lang)]
        if missing:
            raise ValueError(f"interface word {key!r} has no text in {', '.join(missing)}")
        WORDS[key] = entry


def t(key: str, lang: str, **values) -> str:
    """The word for `key` in `lang` (French when the language is unknown), with {values}."""
    entry = WORDS[key]
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text


def language(value: str | None) -> str:
    """A supported language code from a URL parameter."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def locale(lang: str) -> str:
    """The Babel locale of a language code."""
    return LOCALES[language(lang)]


def fmt_int(value, lang: str) -> str:
    """A whole number with the reader's thousands separator; a suppressed "<5" unchanged."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        return value
    return format_decimal(int(value), locale=locale(lang))


def fmt_number(value, lang: str, decimals: int = 1) -> str:
    """A number with `decimals` decimals in the reader's locale."""
    if value is None:
        return EMPTY
    if isinstance(value, str):
        return value
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


def fmt_month(month: str | dt.date | None, lang: str, short: bool = False) -> str:
    """A month ("2025-03" or a date) in words: mars 2025 / maart 2025 / March 2025."""
    if month is None:
        return EMPTY
    if isinstance(month, str):
        month = dt.date.fromisoformat(month + "-01")
    return format_date(month, "LLL yy" if short else "LLLL yyyy", locale=locale(lang))
