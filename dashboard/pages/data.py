"""Data: what is loaded and how complete it is, and the upload of a new export.

The load ledger, the rejected rows by reason, the unmatched corrections (analysts only), the
months still filling in, the data-as-of stamp; and an upload that goes through the loader of
`benzo-monitor load` (etl/ingest/load.py) and shows the same summary. A refused file shows the
loader's plain message and changes nothing (loading is atomic per file).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import tempfile
import threading
from pathlib import Path

import dash
from dash import Input, Output, State, callback, dcc, html

from dashboard.app import warehouse
from dashboard.ui import (
    empty_page,
    grid,
    json_safe,
    page_title,
    publication_note,
    query_params,
    view_state,
)
from etl import figures
from etl.base.i18n import fmt_date, fmt_int, fmt_month, fmt_rate, t

dash.register_page(__name__, path="/data", name="data", order=90)
log = logging.getLogger(__name__)

MAX_UPLOAD_MB = 200
UPLOAD_FORMATS = (".csv", ".txt", ".csv.gz", ".txt.gz", ".gz", ".parquet", ".xlsx")
# One upload at a time in this process (DuckDB hands a second connection of the same process
# the same database, so the file lock would not stop a second concurrent load).
_UPLOAD_LOCK = threading.Lock()

REASONS = (
    "missing_required", "date_unreadable", "date_before_2020", "date_after_load_day",
    "cnk_invalid", "quantity_not_integer", "quantity_zero", "quantity_out_of_range",
    "malformed_line", "encoding_error",
    "line_too_long", "formula_without_value",  # issue 19
)  # fmt: skip

LEDGER_COLUMNS = (
    ("load_id", "data_col_load_id", "int"),
    ("file_name", "data_col_file", "text"),
    ("file_format", "data_col_format", "text"),
    ("encoding", "data_col_encoding", "text"),
    ("rows_read", "data_col_rows_read", "int"),
    ("rows_new", "data_col_rows_new", "int"),
    ("rows_present", "data_col_rows_present", "int"),
    ("rows_skipped", "data_col_rows_skipped", "int"),
    ("rows_rejected", "data_col_rows_rejected", "int"),
    ("min_delivery_date", "data_col_first_delivery", "date"),
    ("max_delivery_date", "data_col_last_delivery", "date"),
    ("finished_at", "data_col_loaded_at", "text"),
    ("loaded_by", "data_col_loaded_by", "text"),
    ("file_sha256", "data_col_sha256", "text"),
)
LEDGER_COUNTS = ("rows_read", "rows_new", "rows_present", "rows_skipped", "rows_rejected")
SUMMARY_FIELDS = (
    ("file_name", "data_col_file"),
    ("rows_read", "data_col_rows_read"),
    ("rows_new", "data_col_rows_new"),
    ("rows_present", "data_col_rows_present"),
    ("rows_skipped", "data_col_rows_skipped"),
    ("rows_rejected", "data_col_rows_rejected"),
)


# --- reading ------------------------------------------------------------------------------


def _ledger_rows(state) -> list[dict]:
    """The load ledger (raw `loads`: the staging view leaves out format, encoding and user)."""
    wh = warehouse()
    rows = figures.load_ledger(wh.reader(state.as_of))
    disclosure = state.disclosure(wh.config.suppression_threshold)
    out = []
    for row in json_safe(rows):
        out.append({**row, **{k: disclosure.count(row[k]) for k in LEDGER_COUNTS}})
    return out


def _ledger(state):
    lang = state.lang
    columns = [
        {"field": field, "headerName": t(key, lang), "kind": kind}
        for field, key, kind in LEDGER_COLUMNS
    ]
    table = grid("data-ledger", _ledger_rows(state), columns, lang, height=300, page_size=50)
    # Fourteen columns: each as wide as its content, the grid scrolls sideways.
    table.columnSize = "autoSize"
    table.defaultColDef = {"sortable": True, "resizable": True, "minWidth": 70}
    return table


def _reject_rows(state) -> list[dict]:
    wh = warehouse()
    rows = figures.rejects_by_reason(wh.reader(state.as_of))
    disclosure = state.disclosure(wh.config.suppression_threshold)
    lang = state.lang
    return [
        {
            "reason": r["reason"],
            "meaning": t(f"data_reason_{r['reason']}", lang) if r["reason"] in REASONS else "",
            "n_rejects": disclosure.count(r["n_rejects"]),
            "n_loads": disclosure.count(r["n_loads"]),
            "last_load_id": r["last_load_id"],
            # The example quotes a raw value: analysts only.
            "example_detail": None if state.publication else r["example_detail"],
        }
        for r in rows
    ]


def _rejects(state):
    lang = state.lang
    rows = _reject_rows(state)
    columns = [
        {"field": "reason", "headerName": t("data_col_reason", lang)},
        {"field": "meaning", "headerName": t("data_col_meaning", lang)},
        {"field": "n_rejects", "headerName": t("data_col_n_rejects", lang), "kind": "int"},
        {"field": "n_loads", "headerName": t("data_col_n_loads", lang), "kind": "int"},
        {"field": "last_load_id", "headerName": t("data_col_last_load_id", lang), "kind": "int"},
    ]
    if not state.publication:
        columns.append({"field": "example_detail", "headerName": t("data_col_example", lang)})
    return html.Div(
        [
            html.P(
                t("data_rejects_none", lang) if not rows else t("data_rejects_hint", lang),
                id="data-rejects-note",
                className="note",
            ),
            grid("data-rejects", rows, columns, lang, height=260),
        ]
    )


def _unmatched(state):
    wh = warehouse()
    lang = state.lang
    disclosure = state.disclosure(wh.config.suppression_threshold)
    children = [html.H3(t("data_unmatched_title", lang)), html.P(t("data_unmatched_intro", lang))]
    if state.publication:
        total = figures.unmatched_corrections_count(wh.reader(state.as_of))
        shown = fmt_int(disclosure.count(total), lang)
        children += [
            html.P(t("data_unmatched_total", lang, n=shown), id="data-unmatched-total"),
            html.P(t("data_unmatched_hidden", lang), id="data-unmatched-hidden", className="note"),
        ]
        return html.Div(children, className="section")
    rows = figures.unmatched_corrections(wh.reader(state.as_of))
    rows = [
        {**r, "kind": t(f"data_kind_{r['kind']}", lang) if r["kind"] else None}
        for r in json_safe(rows)
    ]
    columns = [
        {"field": "delivery_date", "headerName": t("data_col_delivery_date", lang)},
        {"field": "patient_id", "headerName": t("data_col_patient", lang)},
        {"field": "pharmacy_id", "headerName": t("data_col_pharmacy", lang)},
        {"field": "cnk", "headerName": t("data_col_cnk", lang)},
        {"field": "kind", "headerName": t("data_col_kind", lang)},
        {"field": "net_quantity", "headerName": t("data_col_net_quantity", lang), "kind": "int"},
        {"field": "n_lines", "headerName": t("data_col_n_lines", lang), "kind": "int"},
        {"field": "n_correction_lines", "headerName": t("data_col_n_correction_lines", lang),
         "kind": "int"},
    ]  # fmt: skip
    children += [
        html.P(
            t("data_unmatched_total", lang, n=fmt_int(len(rows), lang)), id="data-unmatched-total"
        ),
        grid("data-unmatched", rows, columns, lang, height=260, page_size=100),
    ]
    return html.Div(children, className="section")


def _months(state):
    wh = warehouse()
    lang = state.lang
    config = wh.config
    disclosure = state.disclosure(config.suppression_threshold)
    data = wh.reader(state.as_of)
    rows = figures.provisional_months(data)
    children = [
        html.H3(t("data_months_title", lang)),
        html.P(t("data_months_intro", lang, days=config.provisional_days, grace=config.grace_days)),
    ]
    delay = figures.billing_delay(data)
    shares = {r["n_billing_months"]: r for r in delay}
    if all(shares.get(k, {}).get("share_known") is not None for k in (1, 2, 3)):
        children.append(
            html.P(
                t(
                    "data_delay_sentence",
                    lang,
                    k1=fmt_rate(shares[1]["share_known"], lang, 0),
                    k2=fmt_rate(shares[2]["share_known"], lang, 0),
                    k3=fmt_rate(shares[3]["share_known"], lang, 0),
                    first=fmt_month(shares[1]["first_month"], lang),
                    last=fmt_month(shares[1]["last_month"], lang),
                ),
                id="data-months-delay",
            )  # fmt: skip
        )
    if not rows:
        children.append(html.P(t("data_months_none", lang), id="data-months-none"))
        return html.Div(children, className="section")
    header = html.Tr(
        [
            html.Th(t("month", lang)),
            html.Th(t("data_col_final_from", lang)),
            html.Th(t("data_col_n_lines", lang)),
            html.Th(t("data_col_n_events", lang)),
            html.Th(t("data_col_n_lines_latest_load", lang)),
            html.Th(t("data_unmatched_title", lang)),
        ]
    )
    body = [
        html.Tr(
            [
                html.Th(
                    [
                        fmt_month(r["month"], lang) + " ",
                        html.Span(t("provisional", lang), className="badge provisional"),
                    ],
                    scope="row",
                ),
                html.Td(fmt_date(r["final_from_date"], lang)),
                html.Td(fmt_int(disclosure.count(r["n_lines"]), lang)),
                html.Td(fmt_int(disclosure.count(r["n_events"]), lang)),
                html.Td(fmt_int(disclosure.count(r["n_lines_latest_load"]), lang)),
                html.Td(fmt_int(disclosure.count(r["n_unmatched_corrections"]), lang)),
            ],
            id=f"data-month-{r['month']}",
        )
        for r in rows
    ]
    children.append(
        html.Table([html.Thead(header), html.Tbody(body)], id="data-months", className="figures")
    )
    return html.Div(children, className="section")


def _upload(state):
    lang = state.lang
    children = [html.H3(t("data_upload_title", lang))]
    if state.publication:
        children.append(html.P(t("data_upload_hidden", lang), id="data-upload-hidden"))
        return html.Div(children, className="section")
    children += [
        html.P(t("data_upload_help", lang, mb=MAX_UPLOAD_MB), className="note"),
        dcc.Upload(
            id="data-upload",
            children=html.Div(t("data_upload_prompt", lang)),
            max_size=MAX_UPLOAD_MB * 1024 * 1024,
            multiple=False,
            style={
                "border": "2px dashed #888",
                "borderRadius": "6px",
                "padding": "1.2rem",
                "textAlign": "center",
                "cursor": "pointer",
                "maxWidth": "40rem",
            },
        ),
        dcc.Loading(html.Div(id="data-upload-result", style={"marginTop": "0.8rem"})),
    ]
    return html.Div(children, className="section")


def layout(**params):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    if wh.snapshot() is None:
        # The upload's callback also refreshes the ledger and the rejects: keep them, hidden.
        hidden = html.Div([_ledger(state), _rejects(state)], style={"display": "none"})
        return html.Div([empty_page(state, id_prefix="data"), _upload(state), hidden])
    threshold = wh.config.suppression_threshold
    # The first two children stay the heading block and the ledger (tests/test_dashboard_smoke).
    return html.Div(
        [
            html.Div(
                [
                    page_title(t("data_title", lang), state, wh.default_as_of(), id_prefix="data"),
                    publication_note(state, threshold, id_prefix="data"),
                    html.H3(t("load_ledger", lang)),
                    html.P(t("data_ledger_intro", lang), className="note"),
                ]
            ),
            _ledger(state),
            html.Div([html.H3(t("rejects_by_reason", lang)), _rejects(state)], className="section"),
            _months(state),
            _unmatched(state),
            _upload(state),
        ]
    )


# --- the upload ---------------------------------------------------------------------------


def _safe_name(filename: str | None) -> str:
    """The uploaded file's own name (no folders), kept for the ledger and format detection."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    name = re.sub(r"[^\w.\- ()]", "_", name).lstrip(".")
    return name or "upload.csv"


def load_upload(contents: str, filename: str | None, lang: str) -> tuple[str, object]:
    """Load an uploaded file through the loader: ("loaded", summary) or (kind, message).

    kind is "refused", "too_big", "busy", "unreadable" or "failed"; the message is plain text.
    """
    from etl.base.publish import current_snapshot_path, publish
    from etl.base.warehouse import WarehouseError, connect
    from etl.ingest.load import load_paths

    header, _, payload = (contents or "").partition(",")
    if not payload or ";base64" not in header:
        return "unreadable", t("data_upload_unreadable", lang)
    if len(payload) * 3 // 4 > MAX_UPLOAD_MB * 1024 * 1024:
        return "too_big", t("data_upload_too_big", lang, mb=MAX_UPLOAD_MB)
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return "unreadable", t("data_upload_unreadable", lang)
    if not _UPLOAD_LOCK.acquire(blocking=False):
        return "busy", t("data_upload_busy", lang)
    wh = warehouse()
    name = _safe_name(filename)
    try:
        with tempfile.TemporaryDirectory(prefix="benzo-upload-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            try:
                con = connect(wh.db_path, config=wh.config)
            except WarehouseError:
                return "busy", t("data_upload_busy", lang)
            try:
                (outcome,) = load_paths(con, [path], config=wh.config)
                if outcome.summary and current_snapshot_path(wh.db_path) is None:
                    publish(con, wh.config)  # the first data: the dashboard reads snapshots
            finally:
                con.close()
            if outcome.refused:
                message = outcome.refused.replace(str(path), name).replace(folder, "")
                return "refused", message
            return "loaded", outcome.summary
    except Exception:  # a plain message for the reader; the details go to the server log
        log.exception("upload of %s failed", name)
        return "failed", t("data_upload_failed", lang)
    finally:
        _UPLOAD_LOCK.release()


def nrn_notes(summary, lang: str) -> list:
    """The warning of issue 19: values like national register numbers, per column."""
    found = getattr(summary, "nrn_columns", None)
    if not found:
        return []
    columns = ", ".join(f"{column} ({fmt_int(n, lang)})" for column, n in found)
    return [
        html.P(
            t("data_upload_nrn_warning", lang, columns=columns),
            id="data-upload-nrn-warning",
            className="warning",
        )
    ]


def _summary(summary, lang: str):
    header = html.Tr([html.Th(t("data_col_load_id", lang))] + [
        html.Th(t(key, lang)) for _, key in SUMMARY_FIELDS
    ])  # fmt: skip
    cells = [html.Td(str(summary.load_id), id="data-upload-load_id")]
    for field, _ in SUMMARY_FIELDS:
        value = getattr(summary, field)
        shown = value if isinstance(value, str) else fmt_int(value, lang)
        cells.append(html.Td(shown, id=f"data-upload-{field}"))
    notes = [html.P(t("data_upload_loaded", lang), id="data-upload-message")]
    if summary.previously_loaded_as is not None:
        notes.append(html.P(t("data_upload_again", lang, n=summary.previously_loaded_as)))
    notes += nrn_notes(summary, lang)
    if summary.rows_rejected:
        notes.append(
            html.P(
                t(
                    "data_upload_rejected_rows",
                    lang,
                    n=fmt_int(summary.rows_rejected, lang),
                    load=summary.load_id,
                )
            )  # fmt: skip
        )
    return html.Div(
        [
            html.Table(
                [html.Thead(header), html.Tbody(html.Tr(cells))],
                id="data-upload-summary",
                className="figures",
            ),
            *notes,
        ]
    )


@callback(
    Output("data-upload-result", "children"),
    Output("data-ledger", "rowData"),
    Output("data-rejects", "rowData"),
    Input("data-upload", "contents"),
    State("data-upload", "filename"),
    State("url", "search"),
    prevent_initial_call=True,
)
def upload(contents, filename, search):
    state = view_state(query_params(search))
    lang = state.lang
    if not contents or state.publication:
        return dash.no_update, dash.no_update, dash.no_update
    kind, result = load_upload(contents, filename, lang)
    if kind != "loaded":
        children = [html.Strong(t("data_upload_refused", lang)) if kind == "refused" else None,
                    html.Span(" " + result if kind == "refused" else result)]  # fmt: skip
        message = html.P(children, id="data-upload-error", className="upload-error",
                         style={"color": "#B00020", "whiteSpace": "pre-line"})  # fmt: skip
        return message, dash.no_update, dash.no_update
    return _summary(result, lang), _ledger_rows(state), _reject_rows(state)
