"""The one CSV writer and the one Excel writer of every export, both formula-safe.

`csv_text` writes every CSV the monitor produces (the CLI's `report`, `cohorts`, `compliance`,
`loads`, `rejects`, `reports` and `audit`, and, through `download_csv`, the dashboard's
downloads); `workbook` and `write_cell` write every Excel cell (the report pack's workbook and
the dashboard's downloads, `xlsx_table` and `download_xlsx`).

The dashboard's downloads (`download_csv`, `download_xlsx`) start with a header block
(`DownloadHeader`: month, as-of date, provisional or final, disclosure control — SPEC §9 — in
the reader's language) and their CSV follows the reader's locale: French and Dutch semicolons
and a decimal comma (what a spreadsheet in fr-BE or nl-BE opens as numbers), English commas and
a decimal point. The command line's CSV (SPEC §10) stays as it is: commas, a decimal point, no
header block.

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
from dataclasses import dataclass
from decimal import Decimal

import xlsxwriter

from etl.base.i18n import fmt_date, fmt_month, t

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


def xlsx_table(
    sheet_name: str,
    header: Sequence[str],
    rows: Iterable[Sequence],
    *,
    preamble: Sequence[tuple[str, str]] = (),
) -> bytes:
    """A table as a one-sheet workbook: a bold header, row labels in the first column (as
    text), values beside them; header and labels frozen. `preamble`: (label, text) rows
    written above the table, then an empty row."""
    out = io.BytesIO()
    book = workbook(out)
    sheet = book.add_worksheet(sheet_name)
    bold = book.add_format({"bold": True})
    for r, (label, text) in enumerate(preamble):
        write_cell(sheet, r, 0, str(label), bold)
        write_cell(sheet, r, 1, str(text))
    top = len(preamble) + 1 if preamble else 0
    for col, name in enumerate(header):
        write_cell(sheet, top, col, str(name), bold)
    for r, row in enumerate(rows, start=top + 1):
        write_cell(sheet, r, 0, str(row[0]))
        for c, value in enumerate(row[1:], start=1):
            write_cell(sheet, r, c, value)
    sheet.freeze_panes(top + 1, 1)
    sheet.set_column(0, 0, 45)
    sheet.set_column(1, len(header), 14)
    book.close()
    return out.getvalue()


# --- the dashboard's downloads ------------------------------------------------------------


@dataclass(frozen=True)
class DownloadHeader:
    """What a dashboard download says above its table: its month (None: no month, e.g. the
    compliance findings), the as-of date, whether the month is provisional (None: not
    applicable), whether disclosure control (SPEC §9) was applied and its threshold, in `lang`."""

    lang: str
    as_of: dt.date
    suppressed: bool
    threshold: int
    month: str | None = None
    provisional: bool | None = None

    def rows(self) -> list[tuple[str, str]]:
        """The header block as (label, text) rows in the reader's language."""
        lang = self.lang
        rows = []
        if self.month:
            rows.append((t("month", lang), fmt_month(self.month, lang)))
        rows.append((t("as_of_date", lang), fmt_date(self.as_of, lang)))
        if self.provisional is not None:
            status = "status_provisional" if self.provisional else "status_final"
            rows.append((t("status", lang), t(status, lang)))
        m = self.threshold - 1
        disclosure = (
            t("suppressed_note", lang, m=m, t=self.threshold, mask=f"<{self.threshold}")
            if self.suppressed
            else t("exact_note", lang)
        )
        rows.append((t("disclosure", lang), disclosure))
        return rows


# The CSV delimiter and decimal separator of each language's spreadsheets.
CSV_LOCALES = {"fr": (";", ","), "nl": (";", ","), "en": (",", ".")}


def locale_number(value, decimal: str):
    """A number with the locale's decimal separator, as text (no thousands separator, which a
    spreadsheet would read as text); any other value unchanged."""
    if isinstance(value, bool) or not isinstance(value, float | Decimal):
        return value
    return str(value).replace(".", decimal)


def download_csv(header_block: DownloadHeader, header: Sequence, rows: Iterable[Sequence]) -> str:
    """A dashboard download as CSV: the header block, an empty line, then the table, in the
    reader's locale (`CSV_LOCALES`), with a byte-order mark and CRLF line ends so that a
    spreadsheet opens it as columns of UTF-8 text; every cell through `csv_cell`."""
    delimiter, decimal = CSV_LOCALES.get(header_block.lang, CSV_LOCALES["fr"])
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerows([[csv_cell(label), csv_cell(text)] for label, text in header_block.rows()])
    writer.writerow([])
    writer.writerow([csv_cell(v) for v in header])
    writer.writerows([[csv_cell(locale_number(v, decimal)) for v in row] for row in rows])
    return out.getvalue()


def download_xlsx(
    header_block: DownloadHeader, sheet_name: str, header: Sequence[str], rows: Iterable[Sequence]
) -> bytes:
    """A dashboard download as a one-sheet workbook (`xlsx_table`) with the header block in its
    first rows; the table's numbers stay numbers."""
    return xlsx_table(sheet_name, header, rows, preamble=header_block.rows())
