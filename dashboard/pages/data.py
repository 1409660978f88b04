"""Data: what is loaded and how complete it is, and the upload of a new export.

The load ledger, the rejected rows by reason, the unmatched corrections (analysts only), the
months still filling in, the data-as-of stamp; and an upload that goes through the loader of
`benzo-monitor load` (etl/ingest/load.py) and shows the same summary. A refused file shows the
loader's plain message and changes nothing (loading is atomic per file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
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
    nrn_notes,
    page_title,
    publication_note,
    query_params,
    view_state,
)
from etl import figures
from etl.base.i18n import fmt_date, fmt_int, fmt_month, fmt_rate, t

dash.register_page(__name__, path="/data", name="data", order=90)
log = logging.getLogger(__name__)

MAX_NAME_BYTES = 255  # the longest file name most file systems accept (issue 19, item 9)
HIDDEN = {"display": "none"}
SHOWN = {"display": "flex", "gap": "0.6rem", "marginTop": "0.6rem"}
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


# The loader's detail of these reasons is "<what is wrong, in English>: <the value read>"
# (sql/load/normalise_lines.sql); the page shows the value, the meaning column says what is
# wrong in the reader's language. The other reasons' details quote no value of the file.
VALUE_REASONS = (
    "missing_required", "date_unreadable", "date_before_2020", "date_after_load_day",
    "cnk_invalid", "quantity_not_integer", "quantity_out_of_range",
)  # fmt: skip


def reject_example(row: dict) -> str:
    """The value a reject quotes (a date, a CNK, the missing columns), without the loader's
    English words; "" for a reason whose detail quotes no value."""
    detail = row.get("example_detail") or ""
    if row.get("reason") not in VALUE_REASONS or ": " not in detail:
        return ""
    return detail.split(": ", 1)[1]


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
            "example_detail": None if state.publication else reject_example(r),
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
    max_mb = warehouse().config.max_upload_mb
    children += [
        html.P(t("data_upload_help", lang, mb=max_mb), className="note"),
        html.Div(
            dcc.Upload(
                id="data-upload",
                children=html.Div(t("data_upload_prompt", lang)),
                max_size=max_mb * 1024 * 1024,
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
            id="data-upload-box",
            **{"data-max-bytes": str(max_mb * 1024 * 1024)},
        ),
        # dcc.Upload ignores a file above max_size without a word: assets/upload_size.js
        # shows this message instead (the browser never sends such a file).
        html.P(
            t("data_upload_too_big", lang, mb=max_mb),
            id="data-upload-too-big",
            className="upload-error",
            hidden=True,
        ),
        dcc.Store(id="data-upload-pending"),
        dcc.Loading(html.Div(id="data-upload-result", style={"marginTop": "0.8rem"})),
        html.Div(
            [
                html.Button(t("data_upload_confirm", lang), id="data-upload-confirm", n_clicks=0),
                html.Button(t("data_upload_cancel", lang), id="data-upload-cancel", n_clicks=0),
            ],
            id="data-upload-actions",
            className="upload-actions",
            style=HIDDEN,
        ),
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


# --- the upload: a preview (a dry run of the loader), then a confirmed load -----------------


def _safe_name(filename: str | None) -> str:
    """The uploaded file's own name (no folders), kept for the ledger and format detection."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    name = re.sub(r"[^\w.\- ()]", "_", name).lstrip(".")
    return name or "upload.csv"


def refusal_message(outcome, name: str, lang: str) -> str:
    """Why an uploaded file was refused, in the reader's language and with what a web user can
    do about it (the loader's own message is English and speaks of command-line options)."""
    key = outcome.refused_key
    if key:
        return t(f"data_upload_{key}", lang, file=name, **outcome.refused_values)
    return t("data_upload_refused_other", lang, file=name)


def _received(contents: str, filename: str | None, lang: str) -> tuple[str, object]:
    """The upload's ("ok", (name, bytes)), or (kind, plain message) when it cannot be taken.

    kind is "too_big", "name_too_long" or "unreadable".
    """
    max_mb = warehouse().config.max_upload_mb
    header, _, payload = (contents or "").partition(",")
    if not payload or ";base64" not in header:
        return "unreadable", t("data_upload_unreadable", lang)
    if len(payload) * 3 // 4 > max_mb * 1024 * 1024:
        return "too_big", t("data_upload_too_big", lang, mb=max_mb)
    name = _safe_name(filename)
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        return "name_too_long", t(
            "data_upload_name_too_long", lang, n=fmt_int(size, lang), max=MAX_NAME_BYTES
        )
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return "unreadable", t("data_upload_unreadable", lang)
    return "ok", (name, data)


def _through_loader(contents: str, filename: str | None, lang: str, dry_run: bool):
    """The upload through the loader: ("loaded", summary) or (kind, message); with `dry_run`,
    a preview (etl.ingest.load.preview_path) that changes nothing."""
    from etl.base.publish import current_snapshot_path, publish
    from etl.base.warehouse import WarehouseError, connect
    from etl.ingest.load import load_paths, preview_path

    kind, received = _received(contents, filename, lang)
    if kind != "ok":
        return kind, received
    name, data = received
    if not _UPLOAD_LOCK.acquire(blocking=False):
        return "busy", t("data_upload_busy", lang)
    wh = warehouse()
    try:
        with tempfile.TemporaryDirectory(prefix="benzo-upload-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            try:
                con = connect(wh.db_path, config=wh.config)
            except WarehouseError:
                return "busy", t("data_upload_busy", lang)
            try:
                if dry_run:
                    outcome = preview_path(con, path, wh.config)
                else:
                    (outcome,) = load_paths(con, [path], config=wh.config)
                    if outcome.summary and current_snapshot_path(wh.db_path) is None:
                        publish(con, wh.config)  # the first data: the dashboard reads snapshots
            finally:
                con.close()
            if outcome.refused:
                log.info("upload of %s refused: %s", name, outcome.refused)
                return "refused", refusal_message(outcome, name, lang)
            return "loaded", outcome.summary
    except Exception:  # a plain message for the reader; the details go to the server log
        log.exception("upload of %s failed", name)
        return "failed", t("data_upload_failed", lang)
    finally:
        _UPLOAD_LOCK.release()


def load_upload(contents: str, filename: str | None, lang: str) -> tuple[str, object]:
    """Load an uploaded file through the loader: ("loaded", summary) or (kind, message).

    kind is "refused", "too_big", "name_too_long", "busy", "unreadable" or "failed"; the
    message is plain text.
    """
    return _through_loader(contents, filename, lang, dry_run=False)


def preview_upload(contents: str, filename: str | None, lang: str) -> tuple[str, object]:
    """What loading the uploaded file would bring, the warehouse unchanged: ("loaded", the
    summary of a dry run of the same loader) or (kind, message) as `load_upload`."""
    return _through_loader(contents, filename, lang, dry_run=True)


def _summary_table(summary, lang: str, with_id: bool):
    header = [html.Th(t("data_col_load_id", lang))] if with_id else []
    header += [html.Th(t(key, lang)) for _, key in SUMMARY_FIELDS]
    cells = [html.Td(str(summary.load_id), id="data-upload-load_id")] if with_id else []
    for field, _ in SUMMARY_FIELDS:
        value = getattr(summary, field)
        shown = value if isinstance(value, str) else fmt_int(value, lang)
        cells.append(html.Td(shown, id=f"data-upload-{field}"))
    return html.Table(
        [html.Thead(html.Tr(header)), html.Tbody(html.Tr(cells))],
        id="data-upload-summary" if with_id else "data-upload-preview",
        className="figures",
    )


def _summary(summary, lang: str):
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
    return html.Div([_summary_table(summary, lang, with_id=True), *notes])


def _preview(summary, lang: str):
    """The dry run's counts, the rejected rows by reason, and what to do next."""
    children = [
        html.P(t("data_upload_preview", lang), id="data-upload-preview-message"),
        _summary_table(summary, lang, with_id=False),
    ]
    if summary.previously_loaded_as is not None:
        children.append(html.P(t("data_upload_again", lang, n=summary.previously_loaded_as)))
    children += nrn_notes(summary, lang)
    if summary.rejects_by_reason:
        rows = [
            html.Tr(
                [
                    html.Td(t(f"data_reason_{reason}", lang) if reason in REASONS else reason),
                    html.Td(fmt_int(n, lang), id=f"data-upload-reason-{reason}"),
                ]
            )
            for reason, n in summary.rejects_by_reason.items()
        ]
        children.append(
            html.Table(
                [
                    html.Thead(
                        html.Tr(
                            [
                                html.Th(t("data_col_meaning", lang)),
                                html.Th(t("data_col_n_rejects", lang)),
                            ]
                        )
                    ),
                    html.Tbody(rows),
                ],
                id="data-upload-reasons",
                className="figures",
            )
        )
    return html.Div(children)


def _error(kind: str, result: str, lang: str):
    children = [html.Strong(t("data_upload_refused", lang)) if kind == "refused" else None,
                html.Span(" " + result if kind == "refused" else result)]  # fmt: skip
    return html.P(children, id="data-upload-error", className="upload-error",
                  style={"color": "#B00020", "whiteSpace": "pre-line"})  # fmt: skip


def _digest(contents: str | None) -> str:
    return hashlib.sha256((contents or "").encode()).hexdigest()


@callback(
    Output("data-upload-result", "children"),
    Output("data-upload-actions", "style"),
    Output("data-upload-pending", "data"),
    Input("data-upload", "contents"),
    State("data-upload", "filename"),
    State("url", "search"),
    prevent_initial_call=True,
)
def upload(contents, filename, search):
    """A file chosen: the preview (a dry run of the loader), and the confirm/cancel buttons."""
    state = view_state(query_params(search))
    lang = state.lang
    if not contents or state.publication:
        return dash.no_update, dash.no_update, dash.no_update
    kind, result = preview_upload(contents, filename, lang)
    if kind != "loaded":
        return _error(kind, result, lang), HIDDEN, None
    return _preview(result, lang), SHOWN, {"digest": _digest(contents)}


@callback(
    Output("data-upload-result", "children", allow_duplicate=True),
    Output("data-ledger", "rowData"),
    Output("data-rejects", "rowData"),
    Output("data-upload-actions", "style", allow_duplicate=True),
    Output("data-upload-pending", "data", allow_duplicate=True),
    Output("data-upload", "contents"),
    Input("data-upload-confirm", "n_clicks"),
    State("data-upload", "contents"),
    State("data-upload", "filename"),
    State("data-upload-pending", "data"),
    State("url", "search"),
    prevent_initial_call=True,
)
def confirm(clicks, contents, filename, pending, search):
    """Confirmed: the previewed file is loaded (the same bytes, checked by their digest)."""
    state = view_state(query_params(search))
    lang = state.lang
    if not clicks or not contents or not pending or state.publication:
        return (dash.no_update,) * 6
    if pending.get("digest") != _digest(contents):
        message = _error("failed", t("data_upload_changed", lang), lang)
        return message, dash.no_update, dash.no_update, HIDDEN, None, None
    kind, result = load_upload(contents, filename, lang)
    if kind != "loaded":
        return _error(kind, result, lang), dash.no_update, dash.no_update, HIDDEN, None, None
    return _summary(result, lang), _ledger_rows(state), _reject_rows(state), HIDDEN, None, None


@callback(
    Output("data-upload-result", "children", allow_duplicate=True),
    Output("data-upload-actions", "style", allow_duplicate=True),
    Output("data-upload-pending", "data", allow_duplicate=True),
    Output("data-upload", "contents", allow_duplicate=True),
    Input("data-upload-cancel", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def cancel(clicks, search):
    """Cancelled: nothing is loaded; the preview goes."""
    if not clicks:
        return (dash.no_update,) * 4
    lang = view_state(query_params(search)).lang
    message = html.P(t("data_upload_cancelled", lang), id="data-upload-cancelled")
    return message, HIDDEN, None, None
