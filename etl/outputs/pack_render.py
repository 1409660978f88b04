"""Writing a monthly report pack (etl.outputs.pack.Pack) as an Excel workbook, HTML or PDF.

- xlsx (xlsxwriter): one sheet per table, numbers as numbers, frozen header row, fixed
  document dates (the same data give the same file). No text ever becomes a formula: the
  workbook and its cells are written by etl.exports (`workbook`, `write_cell`: text with
  write_string), so an export value such as "=1+1", "+32", "-x" or "@SUM" (a file name, say)
  stays text.
- html: one self-contained document an actuary reads (issue 18), printing on A4: a first page
  with the month's key figures, three key messages worked out from the figures and the trend
  chart; then the state of play, the nowcast and budget (SPEC §15), the tables with their
  charts (static SVG from Plotly via kaleido, etl.outputs.pack_charts; without Chromium a
  plain note stands in their place), the methodology, and the export files with the content
  hash in an annex. Each section on a new page, table headers repeated, rows never split.
- pdf: that HTML printed by headless Chromium, with a footer on every page: the as-of date,
  the disclosure status and the page number (n / N).
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import html
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
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
from etl.outputs import pack_charts

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
NUMERIC_KINDS = ("count", "revision", "number", "amount", "rate", "estimate")
# Sheets of pack revision 2 (SPEC §15), before the configuration.
ACTUARIAL_SHEETS = ("nowcast", "budget")
# A section's heading is the word whose key is its table id, but for these: "fees" and
# "compliance" are the dashboard's (shorter) page names, and two headings are the
# methodology page's words.
HEADINGS = {
    "fees": "fees_per_cnk",
    "compliance": "compliance_with_decree",
    "cohorts": "methodology_group_cohorts",
    "bzra_free": "outcomes_bzra_title",
    "configuration": "methodology_config",
    "nowcast": "pack_nowcast_title",
    "budget": "pack_budget_title",
    "annex": "pack_annex",
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
    if column.kind == "estimate":  # a nowcast: euros, or people and steps to one decimal
        metric = load_registry().metric(row[0])
        return "amount" if metric.disclosure == "amount" else "estimate"
    if column.kind == "row_kind":  # a table of items whose last column says each one's kind
        return row[-1]
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
    if kind == "estimate":
        return fmt_number(value, lang, decimals=1)
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
    if kind == "scheme_name":
        return t("scheme_total" if value == "total" else f"step_scheme_{value}", lang)
    if kind == "word":
        return t(value, lang)
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
        "estimate": book.add_format({"num_format": "#,##0.0"}),
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
    sheets = [k for k in ("loads", *SECTIONS, *ACTUARIAL_SHEETS, "configuration") if _has(pack, k)]
    for key in (*sheets, "methodology"):
        row += 1
        write_cell(sheet, row, 0, _sheet_name(key, lang))
        write_cell(sheet, row, 1, _heading(key, lang))

    for key in sheets:
        if key == "budget":
            _xlsx_budget(book, fmt, pack, lang)
        else:
            _xlsx_table(book, fmt, pack.tables[key], key, lang)

    sheet = book.add_worksheet(_sheet_name("methodology", lang))
    sheet.set_column(0, 0, 120)
    write_cell(sheet, 0, 0, t("methodology", lang), fmt["title"])
    for i, paragraph in enumerate(_methodology(pack, lang), start=2):
        write_cell(sheet, i, 0, paragraph, fmt["wrap"])
    book.close()
    return out.getvalue()


def _has(pack, key: str) -> bool:
    """Whether the pack has the table `key` (a pack of revision 1 has no nowcast or budget)."""
    return key in pack.tables


def _xlsx_budget(book, fmt: dict, pack, lang: str) -> None:
    """The budget sheet: the envelope and the projection, then the months of the year."""
    sheet = _xlsx_table(book, fmt, pack.tables["budget_projection"], "budget", lang)
    start = len(pack.tables["budget_projection"].rows) + 3
    _xlsx_table(book, fmt, pack.tables["budget"], "budget", lang, sheet=sheet, start=start)


def _xlsx_table(book, fmt: dict, table, key: str, lang: str, sheet=None, start: int = 0):
    """One table on a sheet of its own (or on `sheet` from row `start`): the sheet."""
    if sheet is None:
        sheet = book.add_worksheet(_sheet_name(key, lang))
    shown = _visible(table, "xlsx")
    extra = ["meaning"] if key == "configuration" else []
    for out_col, i in enumerate(shown):
        column = table.columns[i]
        write_cell(sheet, start, out_col, _title(column.title, lang), fmt["header"])
        wide = column.kind in ("label", "fee_code", "text", "source", "word")
        wide = wide or column.key == "file_sha256"
        sheet.set_column(out_col, out_col, 44 if wide else 14)
    for j, name in enumerate(extra):
        write_cell(sheet, start, len(shown) + j, t(name, lang), fmt["header"])
        sheet.set_column(len(shown) + j, len(shown) + j, 90)
    sheet.set_row(start, 45)
    if start == 0:
        sheet.freeze_panes(1, 0)
    for r, row in enumerate(table.rows, start=start + 1):
        for out_col, i in enumerate(shown):
            _xlsx_cell(sheet, fmt, r, out_col, row[i], cell_kind(table.columns[i], row), lang)
        if key == "configuration":
            write_cell(sheet, r, len(shown), _setting_meaning(row[0], lang), fmt["wrap"])
    if table.note:
        write_cell(sheet, start + len(table.rows) + 2, 0, t(table.note, lang))
    elif not table.rows:
        write_cell(sheet, start + 2, 0, t("empty", lang))
    return sheet


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

CSS += """
section.first { break-before: auto; page-break-before: auto; }
table.key { width: auto; min-width: 60%; font-size: 10pt; margin-bottom: 6pt; }
table.key td.num { font-size: 12pt; font-weight: bold; }
ul.messages { margin: 4pt 0 8pt 14pt; padding: 0; font-size: 10pt; }
ul.messages li { margin-bottom: 3pt; }
p.status { font-size: 9pt; color: #333; }
figure { margin: 4pt 0 8pt; break-inside: avoid; page-break-inside: avoid; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 8pt; color: #555; }
"""

COMPACT = ("revisions", "loads", "cohorts", "trend", "nowcast", "budget")
# Each section's tables (by table id), and the chart shown above them.
SECTION_CHARTS = {"cohorts": "outcomes", "fees": "fees"}


def _status_text(pack, lang: str) -> str:
    return t("status_provisional" if pack.is_provisional else "status_final", lang)


def disclosure_text(pack, lang: str) -> str:
    """The pack's disclosure status in a few words (first page, footer)."""
    if pack.suppressed:
        return t("pack_footer_suppressed", lang, m=pack.threshold - 1)
    return t("pack_footer_exact", lang)


def footer_text(pack, lang: str) -> str:
    """The footer of every PDF page (before the page number)."""
    return t(
        "pack_footer",
        lang,
        month=fmt_month(pack.month, lang),
        as_of=fmt_date(pack.as_of, lang),
        disclosure=disclosure_text(pack, lang),
    )


def _state_value(pack, metric: str, scheme: str):
    table = pack.tables["state_of_play"]
    keys = [c.key for c in table.columns]
    for row in table.rows:
        if row[0] == metric:
            return row[keys.index(scheme)]
    return None


def _expected(pack) -> dict[str, list]:
    """The nowcast rows of the pack's month's patients initiated, by scheme."""
    casts = pack.tables.get("nowcast")
    if casts is None:
        return {}
    return {r[2]: r for r in casts.rows if r[0] == "patients_initiated" and r[1] == pack.month}


def key_figures(pack, lang: str) -> list[list[str]]:
    """The first page's table (texts): a header row (the schemes and the total), the patients
    initiated in the month, and, for a provisional month with a nowcast, the expected figure
    and its 95 % interval."""
    schemes = ("5", "7", "10", "total")
    head = [""] + [t("scheme_total" if s == "total" else f"step_scheme_{s}", lang) for s in schemes]
    label = load_registry().metric("patients_initiated").label(lang)
    rows = [head, [label] + [display(_state_value(pack, "patients_initiated", s), "count", lang)
                             for s in schemes]]  # fmt: skip
    expected = _expected(pack)
    if pack.is_provisional and any(_is_number(r[4]) for r in expected.values()):
        rows.append(
            [t("pack_expected", lang)]
            + [display(expected[s][4], "estimate", lang) if s in expected else "" for s in schemes]
        )
        intervals = [_interval(expected.get(s), lang) for s in schemes]
        if any(intervals):
            rows.append([t("pack_interval_95", lang), *intervals])
    return rows


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _interval(row, lang: str) -> str:
    if row is None or not _is_number(row[7]) or not _is_number(row[8]):
        return ""
    return f"{fmt_number(row[7], lang)}–{fmt_number(row[8], lang)}"


def _month_before(month: str, months: int) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _comparison(now, trend: dict, other_month: str, lang: str) -> str:
    other = trend.get(other_month)
    if not isinstance(now, int) or not isinstance(other, int):
        return t("pack_msg_not_compared", lang, month=fmt_month(other_month, lang))
    diff = now - other
    signed = ("+" if diff > 0 else "±" if diff == 0 else "−") + fmt_int(abs(diff), lang)
    return t(
        "pack_msg_compared",
        lang,
        diff=signed,
        month=fmt_month(other_month, lang),
        n=fmt_int(other, lang),
    )


def key_messages(pack, lang: str) -> list[str]:
    """Three sentences worked out from the pack's figures: the month's patients initiated
    against the month before and the same month a year earlier (the trend table's totals); the
    programmes completed, stopped and active (the state of play); the compliance rules that
    flag events (the compliance table). Masked counts are written as masked, never compared."""
    trend_table = pack.tables["trend"]
    total = [c.key for c in trend_table.columns].index("total")
    trend = {row[0]: row[total] for row in trend_table.rows}
    now = _state_value(pack, "patients_initiated", "total")
    month = fmt_month(pack.month, lang)
    first = t(
        "pack_msg_trend",
        lang,
        month=month,
        n=display(now, "count", lang),
        status=t("provisional" if pack.is_provisional else "final", lang),
        previous=_comparison(now, trend, _month_before(pack.month, 1), lang),
        year=_comparison(now, trend, _month_before(pack.month, 12), lang),
    )
    second = t(
        "pack_msg_outcomes",
        lang,
        month=month,
        completed=display(_state_value(pack, "programmes_completed", "total"), "count", lang),
        stopped=display(_state_value(pack, "programmes_stopped", "total"), "count", lang),
        active=display(
            _state_value(pack, "active_programmes_end_of_month", "total"), "count", lang
        ),
    )
    rules = pack.tables["compliance"].rows
    flagging = [r for r in rules if isinstance(r[3], str) or (r[3] or 0) > 0]
    if not flagging:
        third = t("pack_msg_compliance_none", lang, n_rules=len(rules))
    else:
        counted = [r for r in flagging if isinstance(r[3], int)]
        top = max(counted, key=lambda r: r[3]) if counted else flagging[0]
        third = t(
            "pack_msg_compliance",
            lang,
            flagging=len(flagging),
            n_rules=len(rules),
            rule=f"{top[0]} ({_label(top[1], lang)})",
            n=display(top[3], "count", lang),
        )
    return [first, second, third]


def _chart(images: dict | None, name: str, lang: str) -> str:
    """A chart as an image with its text alternative; a plain note without Chromium."""
    e = html.escape
    if images is None:
        return f'<p class="note">{e(t("pack_chart_no_chromium", lang))}</p>'
    if name not in images:
        return ""
    alt = t(f"pack_chart_{name}", lang)
    note = t(f"pack_chart_{name}_note", lang)
    return (
        f'<figure><img src="{images[name]}" alt="{e(alt)}">'
        f"<figcaption>{e(note)}</figcaption></figure>"
    )


def _images(pack, lang: str, executable: str | None) -> dict | None:
    """The chart images, or None when no Chromium can draw them (the HTML says so)."""
    try:
        return pack_charts.chart_images(pack, lang, executable or find_chromium())
    except UserError:
        return None


def to_html(pack, lang: str, *, executable: str | None = None) -> str:
    """The pack as one self-contained HTML document that prints cleanly on A4: the first page
    (key figures, key messages, trend chart), the sections, the annex. Charts are drawn by the
    Chromium at `executable` (None: find_chromium; none installed: a note in their place)."""
    e = html.escape
    images = _images(pack, lang, executable)
    title = f"{t('title', lang)} — {fmt_month(pack.month, lang)}"
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}">',
        '<head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        f"<style>{CSS}</style>",
        "</head><body>",
        '<section class="first" id="summary">',
        f"<h1>{e(t('title', lang))}</h1>",
        f'<p class="subtitle">{e(t("subtitle", lang))} — {e(fmt_month(pack.month, lang))}</p>',
        f"<h3>{e(t('pack_key_figures', lang))} — {e(fmt_month(pack.month, lang))}</h3>",
        '<table class="key">',
    ]
    figures_rows = key_figures(pack, lang)
    parts.append(
        "<thead><tr>"
        + "".join(f'<th class="num">{e(c)}</th>' for c in figures_rows[0])
        + "</tr></thead><tbody>"
    )
    for row in figures_rows[1:]:
        parts.append(
            f"<tr><th>{e(row[0])}</th>"
            + "".join(f'<td class="num">{e(c)}</td>' for c in row[1:])
            + "</tr>"
        )
    parts.append("</tbody></table>")
    parts.append(
        f'<p class="status">{e(t("as_of_date", lang))}: {e(fmt_date(pack.as_of, lang))}. '
        f"{e(_status_text(pack, lang))} {e(t('disclosure', lang))}: "
        f"{e(disclosure_text(pack, lang))}.</p>"
    )
    parts.append(f'<h3>{e(t("pack_key_messages", lang))}</h3><ul class="messages">')
    parts += [f"<li>{e(m)}</li>" for m in key_messages(pack, lang)]
    parts.append("</ul>")
    parts.append(_chart(images, "trend", lang))
    parts.append("</section>")

    sections = [k for k in SECTIONS if k in pack.tables]
    if "nowcast" in pack.tables:
        sections.insert(1, "nowcast")
    for key in sections:
        heading = _heading(key, lang)
        if key == "state_of_play":
            heading += f" — {fmt_month(pack.month, lang)}"
        parts.append(f'<section id="{key}"><h2>{e(heading)}</h2>')
        if key == "state_of_play":
            parts.append(f'<h3>{e(t("contents", lang))}</h3><ol class="contents">')
            for item in (*sections, "methodology", "annex"):
                parts.append(f'<li><a href="#{item}">{e(_heading(item, lang))}</a></li>')
            parts.append("</ol>")
            parts.append(
                f"<p>{e(t('as_of_date', lang))}: {e(fmt_date(pack.as_of, lang))}. "
                f"{e(_status_text(pack, lang))}</p>"
            )
        if key == "nowcast":
            parts.append(_html_table(pack.tables["nowcast"], lang, "nowcast"))
            parts.append(f"<h3>{e(t('pack_budget_title', lang))}</h3>")
            parts.append(_chart(images, "budget", lang))
            parts.append(_html_table(pack.tables["budget_projection"], lang, "budget_projection"))
            parts.append(_html_table(pack.tables["budget"], lang, "budget"))
        elif key == "revisions":
            # Sixteen columns do not fit an A4 page: the total first, then the schemes.
            parts += [_html_table(part, lang, key) for part in _split_revisions(pack.tables[key])]
        else:
            if key in SECTION_CHARTS and SECTION_CHARTS[key] in _chart_tables(pack):
                parts.append(_chart(images, SECTION_CHARTS[key], lang))
            parts.append(_html_table(pack.tables[key], lang, key))
        parts.append("</section>")
    parts.append(f'<section id="methodology"><h2>{e(t("methodology", lang))}</h2>')
    parts += [f"<p>{e(p)}</p>" for p in _methodology(pack, lang)]
    parts.append(f"<h3>{e(_heading('configuration', lang))}</h3>")
    parts.append(_html_table(pack.tables["configuration"], lang, "configuration"))
    parts.append("</section>")
    parts.append(f'<section id="annex"><h2>{e(_heading("annex", lang))}</h2><dl class="fields">')
    for name, value in _cover_fields(pack, lang):
        css = ' class="hash"' if value == pack.content_sha256 else ""
        parts.append(f"<dt>{e(name)}</dt><dd{css}>{e(value)}</dd>")
    parts.append("</dl>")
    parts.append(f"<h3>{e(t('loads', lang))}</h3>")
    parts.append(_html_table(pack.tables["loads"], lang, "loads"))
    parts.append("</section></body></html>")
    return "\n".join(parts) + "\n"


def _chart_tables(pack) -> set[str]:
    """The charts a pack can draw: outcomes and fees only from pack revision 2."""
    names = {"trend"}
    if "outcome_curves" in pack.tables:
        names.add("outcomes")
    if "fees_by_month" in pack.tables:
        names.add("fees")
    return names


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


def to_pdf(document: str, footer: str = "", timeout: int = 120) -> bytes:
    """The HTML `document` printed to PDF (A4, as its CSS says) by headless Chromium, with
    `footer` (HTML) and the page number "n / N" at the foot of every page.

    CSS @page margin boxes are not printed by Chromium: the footer is the header/footer
    template of the DevTools command Page.printToPDF, sent over --remote-debugging-pipe (the
    browser reads commands on its descriptor 3 and answers on 4), with no dependency beyond
    Chromium itself.
    """
    executable = find_chromium()
    with tempfile.TemporaryDirectory(prefix="benzo-pack-") as tmp:
        folder = Path(tmp)
        source = folder / "pack.html"
        source.write_text(document, encoding="utf-8")
        with _DevTools(executable, folder / "profile", timeout) as browser:
            session = browser.open_page(source.as_uri())
            result = browser.send(
                "Page.printToPDF",
                {
                    "displayHeaderFooter": True,
                    "headerTemplate": "<span></span>",
                    "footerTemplate": _footer_template(footer),
                    "printBackground": True,
                    "preferCSSPageSize": True,
                },
                session,
            )
        return base64.b64decode(result["data"])


def _footer_template(footer: str) -> str:
    """Chromium's footer template: its own small page, styles inline; the classes pageNumber
    and totalPages are filled in by Chromium on each page."""
    return (
        "<div style=\"font-family: 'DejaVu Sans', Arial, sans-serif; font-size: 7pt; "
        "color: #555; width: 100%; margin: 0 12mm; display: flex; "
        'justify-content: space-between;">'
        f"<span>{footer}</span>"
        '<span><span class="pageNumber"></span> / <span class="totalPages"></span></span>'
        "</div>"
    )


_MOVE_FDS = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
    "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
)


def _above_four(fd: int) -> int:
    """A copy of descriptor `fd` numbered 10 or more; `fd` is closed."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return copy


class _DevTools:
    """A headless Chromium driven over --remote-debugging-pipe (JSON messages ended by NUL)."""

    def __init__(self, executable: str, profile: Path, timeout: int):
        self.executable = executable
        self.profile = profile
        self.timeout = timeout
        self.next_id = 0
        self.buffer = b""
        self.events: list[dict] = []

    def __enter__(self):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        # The browser's ends above 4, so that moving them to 3 and 4 overwrites nothing.
        to_browser_r, from_browser_w = (_above_four(fd) for fd in (to_browser_r, from_browser_w))
        command = [
            self.executable,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        # The pipe must be the browser's descriptors 3 and 4: a small Python moves them there
        # and executes the browser (no preexec_fn, which is unsafe in the dashboard's threads).
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _MOVE_FDS, str(to_browser_r), str(from_browser_w), *command],
                pass_fds=(to_browser_r, from_browser_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        finally:
            os.close(to_browser_r)
            os.close(from_browser_w)
        self.deadline = time.monotonic() + self.timeout
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.process.poll() is None:
                self._write({"id": -1, "method": "Browser.close"})
                self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self.to_browser)
            os.close(self.from_browser)
            if self.process.stderr:
                self.process.stderr.close()

    def _write(self, message: dict) -> None:
        os.write(self.to_browser, json.dumps(message).encode("utf-8") + b"\0")

    def _read(self) -> dict:
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            ready, _, _ = select.select([self.from_browser], [], [], max(left, 0))
            if not ready:
                raise UserError(f"Chromium did not print the PDF within {self.timeout} s")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise UserError(f"Chromium could not print the PDF: {self._stderr()}")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def _stderr(self) -> str:
        try:
            self.process.wait(timeout=5)
            lines = (self.process.stderr.read() or b"").decode("utf-8", "replace").splitlines()
        except (OSError, subprocess.TimeoutExpired):
            lines = []
        return lines[-1] if lines else f"exit status {self.process.returncode}"

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one command and wait for its answer (events met meanwhile are kept)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._write(message)
        while True:
            answer = self._read()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise UserError(f"Chromium could not print the PDF: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method: str, session: str) -> None:
        """Wait for the event `method` of `session`."""
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self.events[i]
                    return
            self.events.append(self._read())

    def open_page(self, url: str) -> str:
        """A new page showing `url`, loaded: its session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Page.enable", {}, session)
        self.send("Page.navigate", {"url": url}, session)
        self.wait_event("Page.loadEventFired", session)
        return session
