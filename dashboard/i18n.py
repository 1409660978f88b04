"""Interface words in French, Dutch and English (SPEC §12), and locale-aware formatting."""

from __future__ import annotations

LANGUAGES = ("fr", "nl", "en")
DEFAULT_LANGUAGE = "fr"

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
}


def t(key: str, lang: str) -> str:
    """The word for `key` in `lang` (French when the language is unknown)."""
    entry = WORDS[key]
    return entry.get(lang) or entry[DEFAULT_LANGUAGE]


def language(value: str | None) -> str:
    """A supported language code from a URL parameter."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def fmt_int(value, lang: str) -> str:
    """A whole number with the reader's thousands separator (narrow space / point / comma)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    text = f"{int(value):,}"
    return text.replace(",", {"fr": "\u202f", "nl": ".", "en": ","}[language(lang)])
