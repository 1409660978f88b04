"""The one CSV writer and the one Excel writer of every export, both formula-safe.

`csv_text` writes every CSV the monitor produces (the CLI's `report`, `cohorts`, `compliance`,
`loads`, `rejects`, `reports` and `audit`, and the dashboard's downloads); `workbook` and
`write_cell` write every Excel cell (the report pack's workbook and the dashboard's state-of-play
download, `xlsx_table`).

A spreadsheet opening a CSV file runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or
carriage return before one) as a formula: "CSV injection". Export files carry text that came
from billing exports (pseudonymised identifiers, file names, raw rejected values), so every CSV
cell passes through `spreadsheet_safe`: such text gets a leading apostrophe, the usual defence (spreadsheets show it as text and hide the
apostrophe). Numbers stay numbers: a number, or text that is a plain number such as "-1",
"+32" or "-12.50", is written unchanged.

Excel workbooks do not need the apostrophe: `write_cell` writes text with `write_string`
(never a formula), numbers with `write_number`, and `workbook` turns off xlsxwriter's guessing
of formulas, numbers and links in text. JSON and HTML are not read as formulas either; their
text is written exactly (HTML escaped).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence

import xlsxwriter

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


# --- CSV ----------------------------------------------------------------------------------


def csv_cell(value) -> str:
    """One CSV cell: None empty, any other value as its text, defused by `spreadsheet_safe`."""
    if value is None:
        return ""
    return spreadsheet_safe(str(value))


def csv_text(header: Sequence, rows: Iterable[Sequence], *, excel: bool = False) -> str:
    """A header and rows as CSV text, every cell through `csv_cell`.

    Plain (the command line): comma-separated, lines ending in a line feed. `excel` (the
    dashboard's downloads): what a spreadsheet in a Belgian locale opens as columns without an
    import dialog — semicolons, CRLF line ends and a byte-order mark so that it reads UTF-8.
    """
    out = io.StringIO()
    if excel:
        out.write("\ufeff")
    writer = csv.writer(
        out, delimiter=";" if excel else ",", lineterminator="\r\n" if excel else "\n"
    )
    writer.writerow([csv_cell(v) for v in header])
    writer.writerows([[csv_cell(v) for v in row] for row in rows])
    return out.getvalue()


# --- Excel --------------------------------------------------------------------------------


def workbook(out: io.BytesIO) -> xlsxwriter.Workbook:
    """A workbook written into `out` in which no text is ever read as a formula, a number or
    a link (cells are written with `write_cell`)."""
    return xlsxwriter.Workbook(
        out,
        {
            "in_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )


def write_cell(sheet, row: int, col: int, value, cell_format=None) -> None:
    """One cell: None left empty, text as text, a date or a date and time as a date, a flag as
    a boolean, any other value as a number."""
    if value is None:
        return
    if isinstance(value, str):
        sheet.write_string(row, col, value, cell_format)
    elif isinstance(value, dt.datetime):
        sheet.write_datetime(row, col, value, cell_format)
    elif isinstance(value, dt.date):
        sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), cell_format)
    elif isinstance(value, bool):
        sheet.write_boolean(row, col, value, cell_format)
    else:
        sheet.write_number(row, col, value, cell_format)


def xlsx_table(sheet_name: str, header: Sequence[str], rows: Iterable[Sequence]) -> bytes:
    """A table as a one-sheet workbook: a bold header, row labels in the first column (as
    text), values beside them; header and labels frozen."""
    out = io.BytesIO()
    book = workbook(out)
    sheet = book.add_worksheet(sheet_name)
    bold = book.add_format({"bold": True})
    for col, name in enumerate(header):
        write_cell(sheet, 0, col, str(name), bold)
    for r, row in enumerate(rows, start=1):
        write_cell(sheet, r, 0, str(row[0]))
        for c, value in enumerate(row[1:], start=1):
            write_cell(sheet, r, c, value)
    sheet.freeze_panes(1, 1)
    sheet.set_column(0, 0, 45)
    sheet.set_column(1, len(header), 14)
    book.close()
    return out.getvalue()
