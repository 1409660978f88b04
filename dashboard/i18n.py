"""What only the dashboard needs about languages: the language in the URL, the browser's locale.

The words and the formatting of numbers and dates are in etl/base/i18n.py (one catalogue per
language, etl/base/words/); pages import them from there.
"""

from __future__ import annotations

from etl.base import i18n
from etl.base.i18n import DEFAULT_LANGUAGE, LANGUAGES

# The browser's name for each Babel locale (ag-grid formats numbers with toLocaleString).
BROWSER_LOCALES = {"fr": "fr-BE", "nl": "nl-BE", "en": "en-GB"}

# Words a module still registers itself (dashboard/auth.py) until they move into the catalogue.
REGISTERED: dict[str, dict[str, str]] = {}


def language(value: str | None) -> str:
    """A supported language code from a URL parameter."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def register(words: dict[str, dict[str, str]]) -> None:
    """Add a module's words (every key in fr, nl and en; a key may not be in the catalogue)."""
    for key, entry in words.items():
        if key in i18n.catalogue(DEFAULT_LANGUAGE):
            raise ValueError(f"interface word {key!r} is already in the catalogue")
        if REGISTERED.get(key, entry) != entry:
            raise ValueError(f"interface word {key!r} is registered twice with different text")
        missing = [lang for lang in LANGUAGES if not entry.get(lang)]
        if missing:
            raise ValueError(f"interface word {key!r} has no text in {', '.join(missing)}")
        REGISTERED[key] = entry


def t(key: str, lang: str, **values) -> str:
    """The word `key` in `lang`: a registered word, else the catalogue's (etl.base.i18n.t)."""
    entry = REGISTERED.get(key)
    if entry is None:
        return i18n.t(key, lang, **values)
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**values) if values else text
