"""Compliance: the findings of the decree's rules R01–R15 (SPEC §8), read from the mart.

A rule filter in the URL (`rule=R08`), the count per rule (label and severity from the
registry, sql/registry/rules/), the findings per delivery month (a chart per severity, or of the
chosen rule, and a month x rule table), and the analysts' list of findings (pseudonymised
patient and pharmacy) with a CSV export. Each finding's detail, its severity and the CSV's
headers are in the page's language. The publication view shows the counts suppressed (SPEC §9)
and neither the list nor any pseudonymised identifier.
"""

from __future__ import annotations

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html
from dash.exceptions import PreventUpdate

from dashboard.app import warehouse
from dashboard.locale import graph_config
from dashboard.ui import (
    EXTRA_COLOURS,
    bar_pattern,
    chart,
    empty_page,
    figure_layout,
    grid,
    json_safe,
    mark_suppressed,
    page_title,
    publication_note,
    query_params,
    search_with,
    view_state,
)
from etl import figures
from etl.base.codes import BY_CNK
from etl.base.disclosure import Line
from etl.base.i18n import fmt_int, t
from etl.base.registry import load_registry
from etl.exports import DownloadHeader, download_csv

dash.register_page(__name__, path="/compliance", name="compliance", order=30)

SEVERITY_COLOURS = {"error": EXTRA_COLOURS[1], "warning": EXTRA_COLOURS[0]}  # vermillion, blue
FINDINGS_PAGE_SIZE = 50
# The browser gets at most this many findings (at ten times national volume, all of them
# made a 5 MB answer); the CSV export has every one.
FINDINGS_SHOWN = 2000


def layout(rule: str | None = None, **params):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    if wh.snapshot() is None:
        return empty_page(state, id_prefix="compliance")
    rules = load_registry().rules
    rule = rule if rule in {r.id for r in rules} else None
    data = wh.reader(state.as_of)
    rule_counts = figures.compliance_rule_counts(data)
    counts = observed_counts(rule_counts)
    observed = observed_rules(rules, rule_counts)
    per_month = figures.compliance_per_month(data)
    disclosure = state.disclosure(wh.config.suppression_threshold)
    shown = protect(counts, per_month, observed, disclosure)
    threshold = wh.config.suppression_threshold
    title = t("compliance", lang)
    if rule:
        title += f" — {rule}"
    return html.Div(
        [
            page_title(title, state, state.as_of or wh.default_as_of(), id_prefix="compliance"),
            publication_note(state, threshold, id_prefix="compliance"),
            html.Div(
                [
                    html.Label(t("compliance_rule", lang), htmlFor="compliance-rule"),
                    dcc.Dropdown(
                        id="compliance-rule",
                        options=[{"label": t("compliance_all_rules", lang), "value": "all"}]
                        + [{"label": f"{r.id} — {r.label(lang)}", "value": r.id} for r in rules],
                        value=rule or "all",
                        clearable=False,
                        style={"width": "30rem"},
                    ),
                ],
                className="controls-row",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3(t("compliance_summary_title", lang)),
                            _summary(rules, shown, rule, state),
                            html.P(
                                t("compliance_warning_note", lang),
                                className="as-of-stamp",
                                style={"marginTop": "0.4rem"},
                            ),
                        ],
                        className="section",
                    ),
                    html.Div(
                        [
                            html.H3(t("compliance_trend_title", lang)),
                            chart(
                                dcc.Graph(
                                    id="compliance-trend",
                                    figure=_trend(
                                        per_month,
                                        rules,
                                        rule if rule in counts else None,
                                        shown,
                                        lang,
                                    ),
                                    config=graph_config(lang),
                                ),
                                t("a11y_chart_compliance_trend", lang),
                            ),
                        ],
                        className="section",
                    ),
                ],
                style={
                    "display": "grid",
                    "gridTemplateColumns": "minmax(0, 5fr) minmax(0, 6fr)",
                    "gap": "0 0.8rem",
                },
            ),
            _findings_section(data, rule, state, counts, rules),
            html.Div(
                [
                    html.H3(t("compliance_per_month_title", lang)),
                    _per_month_grid(per_month, observed, shown, lang),
                ],
                className="section",
            ),
        ]
    )


def observed_counts(rule_counts: dict) -> dict:
    """The counts of `figures.compliance_rule_counts` without the rules not observable with
    the exports loaded (R16-R18 when the warehouse holds no BZRA delivery, SPEC §14)."""
    return {rule_id: n for rule_id, n in rule_counts.items() if n is not None}


def observed_rules(rules, rule_counts: dict) -> list:
    """The registry's `rules` that are observable (a count, possibly 0, not null)."""
    return [r for r in rules if rule_counts.get(r.id, 0) is not None]


def protect(counts: dict, per_month: list[dict], rules, disclosure) -> dict:
    """The page's counts as published (SPEC §9, etl.base.disclosure), keyed (month, rule id,
    severity or "total") and (None, rule id) for the whole period.

    Lines of the complementary rule: in each month, the rules of a severity add up to it and
    the two severities to the month's total; each rule's months add up to its count; each
    severity's months and rules add up to the period's figure (not shown: a shared total)."""
    by_month: dict = {}
    for row in per_month:
        if row["is_per_rule"]:
            key = row["rule_id"]
        elif row["is_per_severity"]:
            key = row["severity"]
        else:
            key = "total"
        by_month[(row["month"], key)] = row["n_findings"]
    months = sorted({m for m, _ in by_month})
    keys = [*(r.id for r in rules), "error", "warning", "total"]
    cells = {(m, k): by_month.get((m, k), 0) for m in months for k in keys}
    cells.update({(None, r.id): counts.get(r.id, 0) for r in rules})
    for severity in ("error", "warning"):
        cells[(None, severity)] = sum(cells[(m, severity)] for m in months)
    cells[(None, "total")] = sum(counts.values())
    lines = []
    for m in [*months, None]:
        for severity in ("error", "warning"):
            ids = tuple((m, r.id) for r in rules if r.severity == severity)
            lines.append(Line(ids, (m, severity)))
        lines.append(Line(((m, "error"), (m, "warning")), (m, "total")))
    for key in keys:
        lines.append(Line(tuple((m, key) for m in months), (None, key)))
    return disclosure.table(cells, lines)


def _summary(rules, shown: dict, chosen: str | None, state):
    lang = state.lang
    header = html.Tr(
        [
            html.Th(t("compliance_rule", lang), style={"textAlign": "left"}),
            html.Th(t("compliance_col_label", lang), style={"textAlign": "left"}),
            html.Th(t("compliance_col_severity", lang), style={"textAlign": "left"}),
            html.Th(t("compliance_col_count", lang)),
        ]
    )
    body = []
    for rule in rules:
        selected = rule.id == chosen
        body.append(
            html.Tr(
                [
                    html.Th(
                        dcc.Link(rule.id, href=state.href("/compliance", rule=rule.id)),
                        scope="row",
                    ),
                    html.Th(rule.label(lang), scope="row"),
                    html.Th(t(f"compliance_severity_{rule.severity}", lang), scope="row"),
                    html.Td(
                        fmt_int(shown[(None, rule.id)], lang)
                        if (None, rule.id) in shown
                        else t("not_observable", lang),
                        id=f"compliance-count-{rule.id}",
                    ),
                ],
                style={"background": "#eef4fa", "fontWeight": 600} if selected else None,
            )
        )
    return html.Table(
        [html.Thead(header), html.Tbody(body)], id="compliance-summary", className="figures"
    )


def _trend(per_month: list[dict], rules, chosen: str | None, shown: dict, lang: str) -> go.Figure:
    fig = go.Figure()
    months = [r["month"] for r in per_month if not r["is_per_rule"] and not r["is_per_severity"]]
    x = [m + "-01" for m in months]
    if chosen:
        rule = next(r for r in rules if r.id == chosen)
        series = [(f"{rule.id} — {rule.label(lang)}", SEVERITY_COLOURS[rule.severity], chosen)]
    else:
        series = [
            (t(f"compliance_severity_{s}", lang), SEVERITY_COLOURS[s], s)
            for s in ("error", "warning")
        ]
    marked = {}
    for name, colour, key in series:
        values = [shown[(m, key)] for m in months]
        marked[name] = values
        fig.add_bar(
            x=x,
            # A suppressed count is not plotted; its hover says "<5".
            y=[v if isinstance(v, int) else None for v in values],
            name=name,
            marker_color=colour,
            # Errors plain, warnings hatched (the two colours are close in greyscale).
            marker_pattern=bar_pattern("/" if colour == SEVERITY_COLOURS["warning"] else ""),
            customdata=[fmt_int(v, lang) for v in values],
            hovertemplate="%{x|%Y-%m}: %{customdata}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        barmode="stack",
        showlegend=True,
        legend={"traceorder": "normal"},
        xaxis={"type": "date", "tickformat": "%Y-%m", "dtick": "M3" if len(months) > 14 else "M1"},
        yaxis={"title": t("compliance_col_count", lang)},
    )  # fmt: skip
    mark_suppressed(fig, x, marked, lang)
    return figure_layout(fig, lang, height=380)


def _per_month_grid(per_month: list[dict], rules, shown: dict, lang: str):
    months = {row["month"] for row in per_month}
    table = {
        m: {"month": m, **{k: shown[(m, k)] for k in [*(r.id for r in rules), "total"]}}
        for m in months
    }
    rows = sorted(table.values(), key=lambda r: r["month"], reverse=True)
    columns = [{"field": "month", "headerName": t("month", lang)}]
    columns += [{"field": r.id, "headerName": r.id, "kind": "int"} for r in rules]
    columns.append({"field": "total", "headerName": t("scheme_total", lang), "kind": "int"})
    return grid("compliance-per-month", rows, columns, lang, height=300)


# The fields of a finding the browser's list holds (besides its detail, in words).
FINDING_FIELDS = ("rule_id", "patient_id", "pharmacy_id", "programme_id", "delivery_date", "cnk",
                  "kind")  # fmt: skip


def _findings_section(data, rule: str | None, state, counts: dict, rules):
    lang = state.lang
    if state.publication:
        return html.Div(
            [
                html.P(t("compliance_no_list", lang), id="compliance-no-list"),
                html.Button(t("compliance_export_counts", lang), id="compliance-export-button"),
                dcc.Download(id="compliance-download"),
            ],
            className="section",
        )
    findings = [
        {**{k: row[k] for k in FINDING_FIELDS}, "detail": figures.finding_detail(row, lang)}
        for row in figures.compliance_findings(data, rule, limit=FINDINGS_SHOWN)
    ]
    total = counts.get(rule, 0) if rule else sum(counts.values())
    severity = {r.id: r.severity for r in rules}
    rows = [
        {
            **row,
            "severity": t(f"compliance_severity_{severity[row['rule_id']]}", lang),
            "service": _cnk_label(row["cnk"], lang),
        }
        for row in json_safe(findings)
    ]
    columns = [
        {"field": "rule_id", "headerName": t("compliance_rule", lang)},
        {"field": "severity", "headerName": t("compliance_col_severity", lang)},
        {"field": "patient_id", "headerName": t("compliance_col_patient", lang)},
        {"field": "pharmacy_id", "headerName": t("compliance_col_pharmacy", lang)},
        {"field": "delivery_date", "headerName": t("compliance_col_date", lang)},
        {"field": "cnk", "headerName": "CNK"},
        {"field": "service", "headerName": t("compliance_col_service", lang)},
        {"field": "detail", "headerName": t("compliance_col_detail", lang)},
    ]
    table = grid(
        "compliance-findings", rows, columns, lang, height=520, page_size=FINDINGS_PAGE_SIZE
    )
    # Identifiers in full; the detail (long) takes the rest of the width.
    widths = {"rule_id": 80, "severity": 120, "patient_id": 190, "pharmacy_id": 160,
              "delivery_date": 130, "cnk": 100, "service": 220}  # fmt: skip
    for spec in table.columnDefs:
        if spec["field"] in widths:
            spec.update({"flex": 0, "width": widths[spec["field"]]})
    table.columnDefs[-1].update({"flex": 1, "minWidth": 320, "tooltipField": "detail"})
    return html.Div(
        [
            html.H3(t("compliance_findings_title", lang)),
            html.P(t("compliance_not_observable_note", lang), id="compliance-not-observable")
            if rule and rule not in counts
            else None,
            html.Div(
                [
                    html.Span(
                        t("compliance_findings_count", lang, n=fmt_int(total, lang)),
                        id="compliance-findings-count",
                    ),
                    html.Button(t("compliance_export", lang), id="compliance-export-button"),
                ],
                className="controls-row",
            ),
            html.P(
                t("compliance_findings_shown", lang, shown=fmt_int(FINDINGS_SHOWN, lang)),
                id="compliance-findings-shown",
            )
            if total > len(rows)
            else None,
            table,
            dcc.Download(id="compliance-download"),
        ],
        className="section",
        id="compliance-findings-section",
    )


def _cnk_label(cnk: str, lang: str) -> str:
    code = BY_CNK.get(cnk)
    return getattr(code, f"label_{lang}") if code else cnk


def findings_csv(search: str) -> tuple[str, str]:
    """The CSV (text, file name) of the URL's view: the findings of the URL's rule (every rule
    without one) in the analyst view, the suppressed counts per rule in the publication view."""
    params = query_params(search)
    state = view_state(params)
    wh = warehouse()
    rules = load_registry().rules
    rule = params.get("rule") if params.get("rule") in {r.id for r in rules} else None
    as_of_date = state.as_of or wh.default_as_of()
    if as_of_date is None:
        raise PreventUpdate  # nothing loaded: the page offers no export
    as_of = as_of_date.isoformat()
    data = wh.reader(state.as_of)
    lang = state.lang
    block = DownloadHeader(
        lang=lang,
        as_of=as_of_date,
        suppressed=state.publication,
        threshold=wh.config.suppression_threshold,
    )
    severity = {r.id: t(f"compliance_severity_{r.severity}", lang) for r in rules}
    if state.publication:
        disclosure = state.disclosure(wh.config.suppression_threshold)
        rule_counts = figures.compliance_rule_counts(data)
        counts = observed_counts(rule_counts)
        observed = observed_rules(rules, rule_counts)
        shown = protect(counts, figures.compliance_per_month(data), observed, disclosure)
        rows = [
            (as_of, r.id, r.label(lang), severity[r.id],
             shown.get((None, r.id), t("not_observable", lang)))
            for r in rules
        ]  # fmt: skip
        header = [
            t("as_of", lang),
            t("compliance_rule", lang),
            t("compliance_col_label", lang),
            t("compliance_col_severity", lang),
            t("compliance_col_count", lang),
        ]
        return download_csv(block, header, rows), f"compliance-counts-{as_of}.csv"
    header = [
        t("as_of", lang),
        t("compliance_rule", lang),
        t("compliance_col_severity", lang),
        t("compliance_col_programme", lang),
        t("compliance_col_patient", lang),
        t("compliance_col_pharmacy", lang),
        t("compliance_col_date", lang),
        "CNK",
        t("compliance_col_kind", lang),
        t("compliance_col_detail", lang),
    ]
    rows = [
        (
            as_of,
            row["rule_id"],
            severity[row["rule_id"]],
            row["programme_id"],
            row["patient_id"],
            row["pharmacy_id"],
            row["delivery_date"].isoformat(),
            row["cnk"],
            t(f"finding_kind_{row['kind']}", lang),
            figures.finding_detail(row, lang),
        )
        for row in figures.compliance_findings(data, rule)
    ]
    suffix = f"-{rule}" if rule else ""
    return download_csv(block, header, rows), f"compliance-findings-{as_of}{suffix}.csv"


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("compliance-rule", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_rule(rule, search):
    current = query_params(search).get("rule") or "all"
    if not rule or rule == current:
        return dash.no_update
    return search_with(search, rule=None if rule == "all" else rule)


@callback(
    Output("compliance-download", "data"),
    Input("compliance-export-button", "n_clicks"),
    State("url", "search"),
    prevent_initial_call=True,
)
def export(_clicks, search):
    text, filename = findings_csv(search)
    return {"content": text, "filename": filename, "type": "text/csv"}
