"""What only the dashboard needs about languages: the language in the URL, the browser's locale.

The words and the formatting of numbers and dates are in etl/base/i18n.py (one catalogue per
language, etl/base/words/); pages import them from there.
"""

from __future__ import annotations

import re

from babel import Locale

from etl.base.i18n import DEFAULT_LANGUAGE, LANGUAGES, locale

# The browser's name for each Babel locale (ag-grid formats numbers with toLocaleString).
BROWSER_LOCALES = {"fr": "fr-BE", "nl": "nl-BE", "en": "en-GB"}


def language(value: str | None) -> str:
    """A supported language code from a URL parameter."""
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


# CLDR date-pattern letters and the Moment.js tokens of Dash's date pickers.
_MOMENT_TOKENS = {"d": "D", "dd": "DD", "M": "M", "MM": "MM", "y": "YYYY", "yyyy": "YYYY"}


def picker_date_format(lang: str) -> str:
    """How a date picker shows a date to this reader: the locale's date in figures with the
    year in full (CLDR's yMd: 05/03/2025 in French and English, 5/3/2025 in Dutch), written in
    the Moment.js tokens Dash's pickers take ("DD/MM/YYYY")."""
    pattern = Locale.parse(locale(language(lang))).datetime_skeletons["yMd"].pattern
    return re.sub(r"([A-Za-z])\1*", lambda m: _MOMENT_TOKENS.get(m.group(0), m.group(0)), pattern)
