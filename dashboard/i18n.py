"""What only the dashboard needs about languages: the language in the URL, the browser's locale.

The words and the formatting of numbers and dates are in etl/base/i18n.py (one catalogue per
language, etl/base/words/); pages import them from there.
"""

from __future__ import annotations

from etl.base.i18n import DEFAULT_LANGUAGE, LANGUAGES

# The browser's name for each Babel locale (ag-grid formats numbers with toLocaleString).
BROWSER_LOCALES = {"fr": "fr-BE", "nl": "nl-BE", "en": "en-GB"}


def language(value: str | None) -> str:
    """A supported language code from a URL parameter."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE
