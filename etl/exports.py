"""What every CSV export shares: cells a spreadsheet will never run as a formula.

A spreadsheet opening a CSV file runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or
carriage return before one) as a formula: "CSV injection". Export files carry text that came
from billing exports (pseudonymised identifiers, file names, raw rejected values), so every CSV
the monitor writes (the CLI's `report`, `cohorts`, `compliance`, `loads`, `rejects` and
`reports`, and the dashboard's downloads) passes its cells through `spreadsheet_safe`: such
text gets a leading apostrophe, the usual defence (spreadsheets show it as text and hide the
apostrophe). Numbers stay numbers: a number, or text that is a plain number such as "-1",
"+32" or "-12.50", is written unchanged.

Excel workbooks do not need this: xlsxwriter writes text with `write_string` (never a
formula) and numbers with `write_number`. JSON and HTML are not read as formulas either; their
text is written exactly (HTML escaped).
"""

from __future__ import annotations

import re

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
# A plain number, with a decimal point or comma and an exponent: not a formula.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet will not run: text whose first character (after any spaces) is
    =, +, -, @, a tab or a line break gets a leading apostrophe, unless the text is a plain
    number. Numbers, None and other text are returned unchanged."""
    if not isinstance(value, str):
        return value
    start = value.lstrip(" ")
    if start.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(start):
        return "'" + value
    return value
