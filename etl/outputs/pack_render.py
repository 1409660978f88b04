"""Writing a monthly report pack (etl.outputs.pack.Pack) as an Excel workbook, HTML or PDF.

- xlsx (xlsxwriter): one sheet per table, numbers as numbers, frozen header row, fixed
  document dates (the same data give the same file). No text ever becomes a formula: the
  workbook and its cells are written by etl.exports (`workbook`, `write_cell`: text with
  write_string), so an export value such as "=1+1", "+32", "-x" or "@SUM" (a file name, say)
  stays text.
- html: one self-contained file (inline CSS, no external resource) that prints on A4, each
  section on a new page, table headers repeated and rows never split.
- pdf: that HTML printed by headless Chromium.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from etl.base.codes import BY_CNK
from etl.base.errors import UserError
from etl.base.i18n import (
    fmt_date,
    fmt_datetime,
    fmt_eur,
    fmt_int,
    fmt_month,
    fmt_number,
    fmt_rate,
    fmt_short_date,
    t,
)
from etl.base.registry import load_registry
from etl.exports import workbook, write_cell

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SECTIONS = (
    "state_of_play",
    "trend",
    "revisions",
    "billing_delay",
    "cohorts",
    "bzra_free",
    "fees",
    "compliance",
)
NUMERIC_KINDS = ("count", "revision", "number", "amount", "rate")
# A section's heading is the word whose key is its table id, but for these: "fees" and
# "compliance" are the dashboard's (shorter) page names, and two headings are the
# methodology page's words.
HEADINGS = {
    "fees": "fees_per_cnk",
    "compliance": "compliance_with_decree",
    "cohorts": "methodology_group_cohorts",
    "bzra_free": "outcomes_bzra_title",
    "configuration": "methodology_config",
}
# The methodology summary, one paragraph a word key.
SUMMARY = (
    "summary_events",
    "summary_programmes",
    "summary_months",
    "summary_fees",
    "summary_disclosure",
)


# --- cells: what a value is and how it reads in a language --------------------------------


def _title(key: str, lang: str) -> str:
    """A column title: a registry metric's label, or a word of the catalogue (etl.base.i18n)."""
    if "|" in key:
        group, sub = key.split("|")
        return f"{_title(group, lang)} — {_title(sub, lang)}"
    registry = load_registry()
    try:
        return registry.metric(key).label(lang)
    except KeyError:
        return t(key, lang)


def _heading(key: str, lang: str) -> str:
    return t(HEADINGS.get(key, key), lang)


def _label(entry_id: str, lang: str) -> str:
    registry = load_registry()
    try:
        return registry.metric(entry_id).label(lang)
    except KeyError:
        return registry.rule(entry_id).label(lang)


def cell_kind(column, row: list) -> str:
    """The kind of one cell: a state-of-play cell is a count or an amount by its row."""
    if column.kind == "metric":
        metric = load_registry().metric(row[0])
        return "amount" if metric.disclosure == "amount" else "count"
    return column.kind


def _setting_text(value, lang: str) -> str:
    if isinstance(value, dt.date):
        return fmt_short_date(value, lang)
    if isinstance(value, int):
        return fmt_int(value, lang)
    return fmt_number(value, lang, decimals=None)


def display(value, kind: str, lang: str) -> str:
    """How a cell reads in `lang` (HTML, and the text cells of the workbook)."""
    if value is None:
        return ""
    if isinstance(value, str) and kind in NUMERIC_KINDS:
        return value  # a suppressed count: "<5"
    if kind in ("count", "number"):
        return fmt_int(value, lang)
    if kind == "revision":
        return ("+" if value > 0 else "") + fmt_int(value, lang)
    if kind == "amount":
        return fmt_eur(value, lang)
    if kind == "rate":
        return fmt_rate(value, lang)
    if kind == "month":
        return fmt_month(value, lang)
    if kind == "date":
        return fmt_short_date(value, lang)
    if kind == "datetime":
        return fmt_datetime(value, lang)
    if kind == "flag":
        return t("provisional" if value else "final", lang)
    if kind == "label":
        return _label(value, lang)
    if kind == "fee_code":
        if value == "total":
            return t("scheme_total", lang)
        return getattr(BY_CNK[value], f"label_{lang}")
    if kind == "severity":
        return t(f"compliance_severity_{value}", lang)
    if kind == "bzra_group":
        return t(f"outcomes_bzra_group_{value}", lang)
    if kind == "source":
        source, source_id = value
        return t(f"source_{source}", lang, id=source_id)
    if kind == "setting_value":
        return _setting_text(value, lang)
    return str(value)


def _visible(table, fmt: str) -> list[int]:
    """Indexes of the columns shown: `hidden` never; the metric id (`code`) in the workbook."""
    shown = []
    for i, column in enumerate(table.columns):
        if column.kind == "hidden" or (fmt == "html" and column.title == "code"):
            continue
        shown.append(i)
    return shown


def _cover_fields(pack, lang: str) -> list[tuple[str, str]]:
    threshold = pack.threshold
    disclosure = (
        t("suppressed_note", lang, m=threshold - 1, t=threshold, mask=f"<{threshold}")
        if pack.suppressed
        else t("exact_note", lang)
    )
    months = [fmt_month(m, lang) for m in pack.provisional_months]
    fields = [
        (t("period", lang), fmt_month(pack.month, lang)),
        (t("as_of_date", lang), fmt_date(pack.as_of, lang)),
        (
            t("status", lang),
            t("status_provisional" if pack.is_provisional else "status_final", lang),
        ),
        (
            t("provisional_months", lang),
            ", ".join(months) if months else t("none", lang),
        ),
        (t("disclosure", lang), disclosure),
    ]
    if pack.report_id is not None and pack.issued_at is not None:
        fields.append(
            (
                t("pack_id", lang),
                t(
                    "pack_number",
                    lang,
                    id=pack.report_id,
                    issued=fmt_datetime(pack.issued_at, lang),
                ),
            )
        )
    fields.append((t("content_sha256", lang), pack.content_sha256))
    return fields


def _methodology(pack, lang: str) -> list[str]:
    config = pack.config
    values = {
        "grace_days": config.grace_days,
        "stabilisation_days": config.stabilisation_days,
        "provisional_days": config.provisional_days,
        "interview_coefficient": _setting_text(config.interview_coefficient, lang),
        "preparation_coefficient": _setting_text(config.preparation_coefficient, lang),
        "threshold": pack.threshold,
        "threshold_minus_one": pack.threshold - 1,
    }
    return [*(t(key, lang, **values) for key in SUMMARY), t("generated_by", lang)]


def _setting_meaning(setting_id: str, lang: str) -> str:
    return t(f"setting_meaning_{setting_id}", lang)


# --- xlsx ---------------------------------------------------------------------------------


def _sheet_name(key: str, lang: str) -> str:
    name = t(f"sheet_{key}", lang)
    for ch in "[]:*?/\\":
        name = name.replace(ch, " ")
    return name[:31]


def to_xlsx(pack, lang: str) -> bytes:
    """The pack as an Excel workbook (bytes): a cover sheet, then one sheet per table."""
    out = io.BytesIO()
    book = workbook(out)
    created = dt.datetime.combine(pack.as_of, dt.time())
    book.set_properties(
        {
            "title": f"{t('title', lang)} — {fmt_month(pack.month, lang)}",
            "author": "benzo-monitor",
            "created": created,
        }
    )
    fmt = {
        "title": book.add_format({"bold": True, "font_size": 14}),
        "bold": book.add_format({"bold": True}),
        "wrap": book.add_format({"text_wrap": True, "valign": "top"}),
        "header": book.add_format(
            {"bold": True, "text_wrap": True, "valign": "top", "bottom": 1, "bg_color": "#E8EEF4"}
        ),
        "count": book.add_format({"num_format": "#,##0"}),
        "revision": book.add_format({"num_format": "+#,##0;-#,##0;0"}),
        "number": book.add_format({"num_format": "0"}),
        "amount": book.add_format({"num_format": "#,##0.00"}),
        "rate": book.add_format({"num_format": "0.0%"}),
        "setting": book.add_format({"num_format": "General"}),
        "date": book.add_format({"num_format": "yyyy-mm-dd"}),
        "datetime": book.add_format({"num_format": "yyyy-mm-dd hh:mm"}),
        "masked": book.add_format({"align": "right"}),
        "text": book.add_format({}),
    }

    sheet = book.add_worksheet(_sheet_name("cover", lang))
    sheet.set_column(0, 0, 34)
    sheet.set_column(1, 1, 90)
    write_cell(sheet, 0, 0, t("title", lang), fmt["title"])
    write_cell(sheet, 1, 0, t("subtitle", lang))
    row = 3
    for name, value in _cover_fields(pack, lang):
        write_cell(sheet, row, 0, name, fmt["bold"])
        write_cell(sheet, row, 1, value, fmt["wrap"])
        row += 1
    row += 1
    write_cell(sheet, row, 0, t("contents", lang), fmt["bold"])
    for key in ("loads", *SECTIONS, "configuration", "methodology"):
        row += 1
        write_cell(sheet, row, 0, _sheet_name(key, lang))
        write_cell(sheet, row, 1, _heading(key, lang))

    for key in ("loads", *SECTIONS, "configuration"):
        _xlsx_table(book, fmt, pack.tables[key], key, lang)

    sheet = book.add_worksheet(_sheet_name("methodology", lang))
    sheet.set_column(0, 0, 120)
    write_cell(sheet, 0, 0, t("methodology", lang), fmt["title"])
    for i, paragraph in enumerate(_methodology(pack, lang), start=2):
        write_cell(sheet, i, 0, paragraph, fmt["wrap"])
    book.close()
    return out.getvalue()


def _xlsx_table(book, fmt: dict, table, key: str, lang: str) -> None:
    sheet = book.add_worksheet(_sheet_name(key, lang))
    shown = _visible(table, "xlsx")
    extra = ["meaning"] if key == "configuration" else []
    for out_col, i in enumerate(shown):
        column = table.columns[i]
        write_cell(sheet, 0, out_col, _title(column.title, lang), fmt["header"])
        wide = column.kind in ("label", "fee_code", "text", "source") or column.key == "file_sha256"
        sheet.set_column(out_col, out_col, 44 if wide else 14)
    for j, name in enumerate(extra):
        write_cell(sheet, 0, len(shown) + j, t(name, lang), fmt["header"])
        sheet.set_column(len(shown) + j, len(shown) + j, 90)
    sheet.set_row(0, 45)
    sheet.freeze_panes(1, 0)
    for r, row in enumerate(table.rows, start=1):
        for out_col, i in enumerate(shown):
            _xlsx_cell(sheet, fmt, r, out_col, row[i], cell_kind(table.columns[i], row), lang)
        if key == "configuration":
            write_cell(sheet, r, len(shown), _setting_meaning(row[0], lang), fmt["wrap"])
    if table.note:
        write_cell(sheet, len(table.rows) + 2, 0, t(table.note, lang))
    elif not table.rows:
        write_cell(sheet, 2, 0, t("empty", lang))


def _xlsx_cell(sheet, fmt: dict, r: int, c: int, value, kind: str, lang: str) -> None:
    """A table cell by its column kind: the number format of the kind, the text of
    `display` for labels and words."""
    if value is None:
        return
    if kind in NUMERIC_KINDS:
        # A suppressed count stays the text "<5", right-aligned like the numbers.
        write_cell(sheet, r, c, value, fmt["masked"] if isinstance(value, str) else fmt[kind])
    elif kind in ("date", "datetime"):
        write_cell(sheet, r, c, value, fmt[kind])
    elif kind == "setting_value":
        write_cell(
            sheet, r, c, value, fmt["date"] if isinstance(value, dt.date) else fmt["setting"]
        )
    elif kind == "month":
        write_cell(sheet, r, c, value)  # YYYY-MM: sorts, and no spreadsheet reads it as a date
    else:
        write_cell(sheet, r, c, display(value, kind, lang))


# --- html ---------------------------------------------------------------------------------

CSS = """
@page { size: A4; margin: 14mm 12mm 16mm 12mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 9pt;
       color: #1a1a1a; margin: 0; line-height: 1.35; }
h1 { font-size: 18pt; margin: 0 0 4pt; color: #12355b; }
h2 { font-size: 13pt; margin: 0 0 6pt; color: #12355b; break-after: avoid;
     page-break-after: avoid; border-bottom: 1.5pt solid #12355b; padding-bottom: 2pt; }
h3 { font-size: 10.5pt; margin: 10pt 0 4pt; break-after: avoid; page-break-after: avoid; }
p { margin: 0 0 6pt; }
.subtitle { font-size: 11pt; color: #444; margin-bottom: 14pt; }
section { break-before: page; page-break-before: always; }
section.cover { break-before: auto; page-break-before: auto; }
dl.fields { display: grid; grid-template-columns: 38mm 1fr; gap: 3pt 8pt; margin: 0 0 12pt; }
dl.fields dt { font-weight: bold; }
dl.fields dd { margin: 0; word-break: break-word; }
.hash { font-family: "DejaVu Sans Mono", monospace; font-size: 7pt; word-break: break-all; }
table { border-collapse: collapse; width: 100%; margin: 2pt 0 8pt; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border-bottom: 0.5pt solid #c8c8c8; padding: 2pt 4pt; vertical-align: top; }
th { background: #e8eef4; text-align: left; font-weight: bold; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
tr.total td { font-weight: bold; border-top: 1pt solid #888; }
table.compact { font-size: 7.5pt; }
table.compact th, table.compact td { padding: 1.5pt 3pt; }
.note { color: #555; font-style: italic; }
td.file { white-space: nowrap; }
@media screen { body { max-width: 186mm; margin: 8mm auto; } }
ol.contents { margin: 0 0 12pt 14pt; padding: 0; }
"""

COMPACT = ("revisions", "loads", "cohorts", "trend")


def to_html(pack, lang: str) -> str:
    """The pack as one self-contained HTML document that prints cleanly on A4."""
    e = html.escape
    title = f"{t('title', lang)} — {fmt_month(pack.month, lang)}"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        '<head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        '<section class="cover" id="cover">',
        f"<h1>{e(t('title', lang))}</h1>",
        f'<p class="subtitle">{e(t("subtitle", lang))} — {e(fmt_month(pack.month, lang))}</p>',
        '<dl class="fields">',
    ]
    for name, value in _cover_fields(pack, lang):
        css = ' class="hash"' if value == pack.content_sha256 else ""
        parts.append(f"<dt>{e(name)}</dt><dd{css}>{e(value)}</dd>")
    parts.append("</dl>")
    parts.append(f'<h3>{e(t("contents", lang))}</h3><ol class="contents">')
    for key in (*SECTIONS, "methodology"):
        parts.append(f'<li><a href="#{key}">{e(_heading(key, lang))}</a></li>')
    parts.append("</ol>")
    parts.append(f"<h3>{e(t('loads', lang))}</h3>")
    parts.append(_html_table(pack.tables["loads"], lang, "loads"))
    parts.append("</section>")
    for key in SECTIONS:
        heading = _heading(key, lang)
        if key == "state_of_play":
            heading += f" — {fmt_month(pack.month, lang)}"
        parts.append(f'<section id="{key}"><h2>{e(heading)}</h2>')
        if key == "state_of_play":
            parts.append(
                f"<p>{e(t('as_of_date', lang))}: {e(fmt_date(pack.as_of, lang))}. "
                f"{e(t('status_provisional' if pack.is_provisional else 'status_final', lang))}</p>"
            )
        if key == "revisions":
            # Sixteen columns do not fit an A4 page: the total first, then the schemes.
            parts += [_html_table(part, lang, key) for part in _split_revisions(pack.tables[key])]
        else:
            parts.append(_html_table(pack.tables[key], lang, key))
        parts.append("</section>")
    parts.append(f'<section id="methodology"><h2>{e(t("methodology", lang))}</h2>')
    parts += [f"<p>{e(p)}</p>" for p in _methodology(pack, lang)]
    parts.append(f"<h3>{e(_heading('configuration', lang))}</h3>")
    parts.append(_html_table(pack.tables["configuration"], lang, "configuration"))
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"


def _split_revisions(table) -> list:
    """The revision table as two: month, source and total; month and the three schemes."""
    first = [i for i, c in enumerate(table.columns) if not c.key[0].isdigit()]
    second = [0] + [i for i, c in enumerate(table.columns) if c.key[0].isdigit()]
    return [
        type(table)(
            table.id,
            [table.columns[i] for i in part],
            [[row[i] for i in part] for row in table.rows],
        )
        for part in (first, second)
    ]


def _html_table(table, lang: str, key: str) -> str:
    e = html.escape
    shown = _visible(table, "html")
    if not table.rows:
        return f'<p class="note">{e(t("empty", lang))}</p>'
    css = ' class="compact"' if key in COMPACT else ""
    head = []
    grouped = any("|" in table.columns[i].title for i in shown)
    if grouped:
        # Two header rows: the group (a scheme, the total) over its sub-columns.
        top, bottom = [], []
        i = 0
        while i < len(shown):
            column = table.columns[shown[i]]
            if "|" not in column.title:
                top.append(f'<th rowspan="2">{e(_title(column.title, lang))}</th>')
                i += 1
                continue
            group = column.title.split("|")[0]
            span = 0
            while i + span < len(shown) and table.columns[shown[i + span]].title.startswith(
                group + "|"
            ):
                sub = table.columns[shown[i + span]].title.split("|")[1]
                bottom.append(f'<th class="num">{e(_title(sub, lang))}</th>')
                span += 1
            top.append(f'<th colspan="{span}" class="num">{e(_title(group, lang))}</th>')
            i += span
        head = [f"<tr>{''.join(top)}</tr>", f"<tr>{''.join(bottom)}</tr>"]
    else:
        cells = []
        for i in shown:
            column = table.columns[i]
            num = ' class="num"' if column.kind in (*NUMERIC_KINDS, "metric") else ""
            cells.append(f"<th{num}>{e(_title(column.title, lang))}</th>")
        if key == "configuration":
            cells.append(f"<th>{e(t('meaning', lang))}</th>")
        head = [f"<tr>{''.join(cells)}</tr>"]
    body = []
    for row in table.rows:
        cells = []
        for i in shown:
            column = table.columns[i]
            kind = cell_kind(column, row)
            classes = []
            if kind in NUMERIC_KINDS:
                classes.append("num")
            if column.key == "file_sha256":
                classes.append("hash")
            if column.key == "file_name":
                classes.append("file")
            css_cell = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{css_cell}>{e(display(row[i], kind, lang))}</td>")
        if key == "configuration":
            cells.append(f"<td>{e(_setting_meaning(row[0], lang))}</td>")
        total = ' class="total"' if row and row[0] == "total" else ""
        body.append(f"<tr{total}>{''.join(cells)}</tr>")
    note = f'<p class="note">{e(t(table.note, lang))}</p>' if table.note else ""
    return f"<table{css}><thead>{''.join(head)}</thead><tbody>{''.join(body)}</tbody></table>{note}"


# --- pdf ----------------------------------------------------------------------------------


def find_chromium() -> str:
    """The path of a Chromium (or Chrome) executable; UserError when none is installed."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise UserError(
        "PDF needs Chromium and none was found (chromium, chromium-browser or google-chrome "
        "on the PATH): install it (Debian: apt-get install chromium), or write --format html "
        "and print it from a browser"
    )


def to_pdf(document: str, timeout: int = 120) -> bytes:
    """The HTML `document` printed to PDF (A4, as its CSS says) by headless Chromium."""
    executable = find_chromium()
    with tempfile.TemporaryDirectory(prefix="benzo-pack-") as tmp:
        folder = Path(tmp)
        source = folder / "pack.html"
        target = folder / "pack.pdf"
        source.write_text(document, encoding="utf-8")
        command = [
            executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--no-pdf-header-footer",
            "--print-to-pdf-no-header",
            f"--user-data-dir={folder / 'profile'}",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise UserError(f"Chromium did not print the PDF within {timeout} s") from exc
        if not target.exists() or target.stat().st_size == 0:
            detail = (done.stderr or done.stdout or "").strip().splitlines()
            raise UserError(
                "Chromium could not print the PDF"
                + (f": {detail[-1]}" if detail else f" (exit status {done.returncode})")
            )
        return target.read_bytes()
