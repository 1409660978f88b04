"""Outcomes: how withdrawal programmes end, for the convention commission's evaluations (SPEC §7).

Four views, each read from a mart: the cohort rates by start month and scheme (mart_cohorts,
with the rate chosen in the URL, `rate=completion|stabilisation|follow_up`); how many programmes
reach each reduction step (mart_programme_steps, one scheme at a time, `scheme=5|7|10`); the time
from initiation to completion (mart_time_to_completion and its summary); and the share completed
over time since initiation (mart_completion_by_days_since_start). The cohort rates are the naive
rates of SPEC §7 (closed programmes only) and say so; beside them, SPEC §16's cumulative
incidence of completion and of stop with 95 % bands, programmes in progress counted (censored),
from mart_outcome_times through etl/outcomes.py, per start year chosen in the URL
(`start_year=YYYY`, none: all years). Last, "after the programme" (SPEC §14): BZRA-free at 90,
180 and 365 days per scheme, for the completed and for all closed programmes, with their
denominators (the observable programmes), for the same start year (mart_bzra_free), or "not
observable with the exports loaded".
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from dashboard.app import warehouse
from dashboard.locale import graph_config
from dashboard.ui import (
    SCHEME_COLOURS,
    SCHEMES,
    chart,
    empty_page,
    figure_layout,
    grid,
    mark_suppressed,
    page_title,
    publication_note,
    query_params,
    scheme_label,
    search_with,
    view_state,
)
from etl import figures, outcomes
from etl.base.i18n import EMPTY, fmt_int, fmt_month, fmt_number, fmt_rate, t
from etl.base.registry import load_registry

dash.register_page(__name__, path="/outcomes", name="outcomes", order=10)

# `rate=` in the URL -> the mart_cohorts column (a registered metric) it shows.
RATES = {
    "completion": "completion_rate",
    "stabilisation": "stabilisation_rate",
    "follow_up": "follow_up_rate",
}
DEFAULT_RATE = "completion"
DEFAULT_SCHEME = "10"
COUNT_COLUMNS = ("programmes", "completed", "stopped", "in_progress")


def layout(
    rate: str | None = None, scheme: str | None = None, start_year: str | None = None, **params
):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    data = wh.reader(state.as_of)
    cohorts = figures.cohort_rows(data)
    if not cohorts:
        return empty_page(state, id_prefix="outcomes")
    rate = rate if rate in RATES else DEFAULT_RATE
    scheme = scheme if scheme in SCHEMES else DEFAULT_SCHEME
    steps = figures.programme_steps(data, scheme)
    bins = figures.time_to_completion(data)
    summary = figures.time_to_completion_summary(data)
    curve = figures.completion_by_days_since_start(data)
    disclosure = state.disclosure(wh.config.suppression_threshold)
    registry = load_registry()
    return html.Div(
        [
            page_title(t("outcomes", lang), state, cohorts[0]["as_of_date"], id_prefix="outcomes"),
            publication_note(state, wh.config.suppression_threshold, id_prefix="outcomes"),
            html.Div(
                [
                    html.H3(t("outcomes_cohorts_title", lang)),
                    html.Div(
                        [
                            html.Label(t("outcomes_rate", lang), htmlFor="outcomes-rate"),
                            dcc.RadioItems(
                                id="outcomes-rate",
                                options=[
                                    {"label": registry.metric(c).label(lang), "value": key}
                                    for key, c in RATES.items()
                                ],
                                value=rate,
                                inline=True,
                                inputStyle={"marginRight": "0.3rem"},
                                labelStyle={"marginRight": "1rem"},
                            ),
                        ],
                        className="controls-row",
                    ),
                    chart(
                        dcc.Graph(
                            id="outcomes-cohort-chart",
                            figure=_cohort_chart(cohorts, RATES[rate], disclosure, registry, lang),
                            config=graph_config(lang),
                        ),
                        t("a11y_chart_outcomes_cohorts", lang),
                    ),
                    html.P(t("outcomes_mostly_in_progress", lang), className="as-of-stamp"),
                    html.P(
                        t("outcomes_naive_note", lang),
                        id="outcomes-naive-note",
                        className="as-of-stamp",
                    ),
                    _cohort_grid(cohorts, disclosure, registry, lang),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.H3(t("outcomes_funnel_title", lang)),
                            html.Label(t("scheme", lang), htmlFor="outcomes-scheme"),
                            dcc.RadioItems(
                                id="outcomes-scheme",
                                options=[
                                    {"label": scheme_label(s, lang), "value": s} for s in SCHEMES
                                ],
                                value=scheme,
                                inline=True,
                                inputStyle={"marginRight": "0.3rem"},
                                labelStyle={"marginRight": "1rem"},
                            ),
                            chart(
                                dcc.Graph(
                                    id="outcomes-funnel",
                                    figure=_funnel_chart(steps, scheme, disclosure, lang),
                                    config=graph_config(lang),
                                ),
                                t("a11y_chart_outcomes_funnel", lang),
                            ),
                            _funnel_table(steps, disclosure, lang),
                            html.P(t("outcomes_funnel_note", lang), className="as-of-stamp"),
                        ],
                        className="section",
                        style={"margin": 0},
                    ),
                    html.Div(
                        [
                            html.H3(t("outcomes_ttc_title", lang)),
                            chart(
                                dcc.Graph(
                                    id="outcomes-ttc-chart",
                                    figure=_time_chart(bins, disclosure, lang),
                                    config=graph_config(lang),
                                ),
                                t("a11y_chart_outcomes_ttc", lang),
                            ),
                            _time_table(summary, disclosure, lang),
                        ],
                        className="section",
                        style={"margin": 0},
                    ),
                ],
                style={
                    "display": "grid",
                    "gridTemplateColumns": "repeat(auto-fit, minmax(520px, 1fr))",
                    "gap": "0.8rem",
                    "margin": "0.8rem 0",
                },
            ),
            html.Div(
                [
                    html.H3(t("outcomes_curve_title", lang)),
                    chart(
                        dcc.Graph(
                            id="outcomes-curve",
                            figure=_curve_chart(curve, disclosure, lang),
                            config=graph_config(lang),
                        ),
                        t("a11y_chart_outcomes_curve", lang),
                    ),
                    html.P(t("outcomes_curve_note", lang), className="as-of-stamp"),
                ],
                className="section",
            ),
            _incidence_section(data, wh, state, start_year, disclosure),
            _bzra_free_section(data, state, start_year, disclosure),
        ]
    )


# --- 1. cohorts -----------------------------------------------------------------------------


def _cohort_chart(cohorts: list[dict], column: str, disclosure, registry, lang: str) -> go.Figure:
    metric = registry.metric(column)
    fig = go.Figure()
    for scheme in SCHEMES:
        rows = [r for r in cohorts if str(r["scheme"]) == scheme]
        if not rows:
            continue
        shown = [_shown_cohort(r, disclosure, registry) for r in rows]
        values = [c[column] for c in shown]
        fig.add_scatter(
            x=[r["start_month_date"] for r in rows],
            y=values,
            mode="lines+markers",
            name=scheme_label(scheme, lang),
            line={"color": SCHEME_COLOURS[scheme], "width": 2},
            marker={
                "color": SCHEME_COLOURS[scheme],
                "size": 7,
                "symbol": ["circle-open" if r["is_mostly_in_progress"] else "circle" for r in rows],
                "line": {"width": 2, "color": SCHEME_COLOURS[scheme]},
            },
            customdata=[
                [
                    fmt_month(r["initiation_month"], lang),
                    fmt_rate(v, lang),
                    fmt_int(c["programmes"], lang),
                    fmt_rate(c["in_progress_share"], lang),
                ]
                for r, v, c in zip(rows, values, shown, strict=True)
            ],
            hovertemplate=(
                "%{customdata[0]}: <b>%{customdata[1]}</b><br>"
                + registry.metric("programmes").label(lang)
                + ": %{customdata[2]}<br>"
                + t("outcomes_in_progress_share", lang)
                + ": %{customdata[3]}<extra>"
                + scheme_label(scheme, lang)
                + "</extra>"
            ),
        )
    fig.update_layout(
        xaxis={"type": "date", "dtick": "M3", "tickformat": "%Y-%m"},
        yaxis={"tickformat": ".0%", "range": [0, 1.05], "title": metric.label(lang)},
    )
    return figure_layout(fig, lang, height=340)


def _shown_cohort(r: dict, disclosure, registry) -> dict:
    """A cohort row as published (SPEC §9: the row as a whole, etl.base.disclosure), with the
    share in progress: null by rule 1 (in progress / programmes), or when in progress is
    masked (the share times the programmes would give it back)."""
    metrics = registry.group("cohorts")
    shown = disclosure.cohort(r, [m for m in metrics if m.disclosure == "rate"])
    share = disclosure.rate(r["in_progress_share"], r["programmes"], r["in_progress"])
    if disclosure.enabled and isinstance(shown["in_progress"], str):
        share = None
    return {
        **{m.column: shown.get(m.id, disclosure.metric(m, r)) for m in metrics},
        "in_progress_share": share,
    }


def _cohort_grid(cohorts: list[dict], disclosure, registry, lang: str):
    metrics = registry.group("cohorts")
    rows = []
    for r in reversed(cohorts):  # the latest cohorts first
        shown = _shown_cohort(r, disclosure, registry)
        rows.append(
            {
                "row_id": r["row_id"],
                "initiation_month": r["initiation_month"],
                "scheme": scheme_label(str(r["scheme"]), lang),
                "is_mostly_in_progress": bool(r["is_mostly_in_progress"]),
                **shown,
            }
        )
    columns = [
        {"field": "initiation_month", "headerName": t("outcomes_start_month", lang)},
        {"field": "scheme", "headerName": t("scheme", lang)},
    ]
    for metric in metrics:
        kind = "rate" if metric.disclosure == "rate" else "int"
        columns.append({"field": metric.column, "headerName": metric.label(lang), "kind": kind})
        if metric.column == "in_progress":
            columns.append(
                {
                    "field": "in_progress_share",
                    "headerName": t("outcomes_in_progress_share", lang),
                    "kind": "rate",
                }
            )
    table = grid("outcomes-cohort-grid", rows, columns, lang, height=360)
    table.getRowId = "params.data.row_id"
    table.defaultColDef = {**table.defaultColDef, "wrapHeaderText": True, "autoHeaderHeight": True}
    table.getRowStyle = {
        "styleConditions": [
            {
                "condition": "params.data.is_mostly_in_progress",
                "style": {"color": "#777", "fontStyle": "italic"},
            }
        ]
    }
    return table


# --- 2. steps reached -----------------------------------------------------------------------


def _funnel_chart(steps: list[dict], scheme: str, disclosure, lang: str) -> go.Figure:
    fig = go.Figure()
    if steps:
        started = steps[0]["n_programmes"]
        labels = [t("outcomes_started", lang)] + [
            t("outcomes_step", lang, k=s["step_number"]) for s in steps
        ]
        counts = [disclosure.count(started)] + [
            disclosure.count(s["n_programmes_reaching"]) for s in steps
        ]
        shares = [1.0 if started else None] + [
            disclosure.rate(s["share_of_started"], s["n_programmes"]) for s in steps
        ]
        shares[0] = disclosure.rate(shares[0], started)
        fig.add_bar(
            x=labels,
            y=[c if isinstance(c, int) else None for c in counts],
            marker_color=SCHEME_COLOURS[scheme],
            name=scheme_label(scheme, lang),
            text=[fmt_rate(s, lang, 0) if s is not None else "" for s in shares],
            textposition="outside",
            customdata=[[fmt_int(c, lang), fmt_rate(s, lang)] for c, s in zip(counts, shares, strict=True)],
            hovertemplate="%{x}: <b>%{customdata[0]}</b> (%{customdata[1]})<extra></extra>",
        )  # fmt: skip
        mark_suppressed(fig, labels, {scheme_label(scheme, lang): counts}, lang)
        top = max((c for c in counts if isinstance(c, int)), default=0)
        fig.update_layout(
            yaxis={
                "range": [0, top * 1.15 if top else 1],
                "title": t("a11y_axis_programmes", lang),
            },
            showlegend=False,
        )
    return figure_layout(fig, lang, height=320)


def _funnel_table(steps: list[dict], disclosure, lang: str):
    header = html.Tr(
        [
            html.Th(t("outcomes_step_row", lang)),
            html.Th(t("outcomes_reaching", lang)),
            html.Th(t("outcomes_in_progress_reaching", lang)),
            html.Th(t("outcomes_share_started", lang)),
        ]
    )
    body = []
    for s in steps:
        k = s["step_number"]
        share = disclosure.rate(s["share_of_started"], s["n_programmes"])
        label = t("outcomes_step", lang, k=k)
        if s["is_completion_step"]:
            label += f" ({t('outcomes_completion_step', lang)})"
        body.append(
            html.Tr(
                [
                    html.Th(label, scope="row"),
                    html.Td(
                        fmt_int(disclosure.count(s["n_programmes_reaching"]), lang),
                        id=f"outcomes-funnel-{k}-n",
                    ),
                    html.Td(
                        fmt_int(disclosure.count(s["n_in_progress_reaching"]), lang),
                        id=f"outcomes-funnel-{k}-in-progress",
                    ),
                    html.Td(fmt_rate(share, lang), id=f"outcomes-funnel-{k}-share"),
                ]
            )
        )
    return html.Table(
        [html.Thead(header), html.Tbody(body)], id="outcomes-funnel-table", className="figures"
    )


# --- 3. time to completion ------------------------------------------------------------------


def _time_chart(bins: list[dict], disclosure, lang: str) -> go.Figure:
    fig = go.Figure()
    for scheme in SCHEMES:
        rows = [b for b in bins if str(b["scheme"]) == scheme]
        if not rows:
            continue
        counts = [disclosure.count(b["n_completed"]) for b in rows]
        fig.add_bar(
            x=[b["days_from"] + 5 for b in rows],
            y=[c if isinstance(c, int) else None for c in counts],
            name=scheme_label(scheme, lang),
            marker_color=SCHEME_COLOURS[scheme],
            customdata=[
                [t("outcomes_days_range", lang, a=b["days_from"], b=b["days_to"]), fmt_int(c, lang)]
                for b, c in zip(rows, counts, strict=True)
            ],
            hovertemplate="%{customdata[0]}: <b>%{customdata[1]}</b><extra>"
            + scheme_label(scheme, lang)
            + "</extra>",
        )
    fig.update_layout(
        barmode="group",
        bargap=0.1,
        xaxis={"title": t("outcomes_days_axis", lang), "dtick": 30, "rangemode": "tozero"},
        yaxis={"title": t("outcomes_n_completed", lang)},
    )
    return figure_layout(fig, lang, height=320)


def _time_table(summary: list[dict], disclosure, lang: str):
    by = {str(r["scheme"]): r for r in summary}
    stats = (("p25_days", "outcomes_p25"), ("median_days", "outcomes_median"),
             ("p75_days", "outcomes_p75"))  # fmt: skip
    header = html.Tr(
        [html.Th(t("scheme", lang)), html.Th(t("outcomes_n_completed", lang))]
        + [html.Th(t(key, lang)) for _, key in stats]
    )
    body = []
    for scheme in SCHEMES:
        row = by.get(scheme)
        n = row["n_completed"] if row else 0
        cells = [html.Td(fmt_int(disclosure.count(n), lang), id=f"outcomes-ttc-{scheme}-n")]
        for column, _ in stats:
            # Quartiles describe the completed programmes: hidden like a rate over them.
            value = disclosure.rate(row[column], n) if row else None
            cells.append(html.Td(fmt_number(value, lang, 1), id=f"outcomes-ttc-{scheme}-{column}"))
        body.append(
            html.Tr(
                [
                    html.Th(
                        scheme_label(scheme, lang), scope="row", style={"whiteSpace": "nowrap"}
                    ),
                    *cells,
                ]
            )
        )
    return html.Table(
        [html.Thead(header), html.Tbody(body)], id="outcomes-ttc-table", className="figures"
    )


# --- 4. share completed over time since initiation ------------------------------------------


def _curve_chart(curve: list[dict], disclosure, lang: str) -> go.Figure:
    fig = go.Figure()
    for scheme in SCHEMES:
        rows = [c for c in curve if str(c["scheme"]) == scheme]
        if not rows:
            continue
        shares = [disclosure.rate(c["share_completed"], c["n_programmes_observed"]) for c in rows]
        fig.add_scatter(
            x=[c["days_since_start"] for c in rows],
            y=shares,
            mode="lines+markers",
            marker={"size": 4},
            name=scheme_label(scheme, lang),
            line={"color": SCHEME_COLOURS[scheme], "width": 2},
            customdata=[
                [fmt_rate(s, lang), fmt_int(disclosure.count(c["n_programmes_observed"]), lang)]
                for c, s in zip(rows, shares, strict=True)
            ],
            hovertemplate="d = %{x}: <b>%{customdata[0]}</b> (%{customdata[1]} "
            + t("outcomes_observed", lang)
            + ")<extra>"
            + scheme_label(scheme, lang)
            + "</extra>",
        )
    fig.update_layout(
        xaxis={"title": t("outcomes_days_axis", lang), "dtick": 30, "range": [0, 365]},
        yaxis={"title": t("outcomes_share_completed", lang), "tickformat": ".0%",
               "range": [0, 1.05]},
    )  # fmt: skip
    return figure_layout(fig, lang, height=340)


# --- 5. cumulative incidence, programmes in progress censored (SPEC §16) --------------------

CIF_DAYS = tuple(range(0, 361, 10))  # the curve's grid; the table reads etl.outcomes.OUTCOME_DAYS
CIF_DASH = {"completion": "solid", "stop": "dash"}


_CURVES_CACHE: OrderedDict[tuple, list[dict]] = OrderedDict()
_CURVES_LOCK = threading.Lock()


def _incidence_section(data, wh, state, start_year: str | None, disclosure):
    lang = state.lang
    times = outcomes.outcome_times(data)
    years = sorted({r["start_year"] for r in times})
    year = int(start_year) if start_year and start_year.isdecimal() else None
    year = year if year in years else None
    snapshot = wh.snapshot()
    # The estimates are computed once per snapshot, as-of date, start year and view (about
    # 0.1 s on national data): a page in another language reuses them.
    key = (snapshot.path if snapshot else None, state.as_of, year, disclosure)
    with _CURVES_LOCK:
        curves = _CURVES_CACHE.get(key)
    if curves is None:
        days = sorted({*CIF_DAYS, *outcomes.OUTCOME_DAYS})
        # Only the group shown is estimated: the chosen start year, or all years together.
        chosen = [r for r in times if year is None or r["start_year"] == year]
        curves = outcomes.outcome_curves(chosen, disclosure, days, by_year=False)
        with _CURVES_LOCK:
            _CURVES_CACHE[key] = curves
            while len(_CURVES_CACHE) > 32:
                _CURVES_CACHE.popitem(last=False)
    return html.Div(
        [
            html.H3(t("outcomes_cif_title", lang)),
            html.Div(
                [
                    html.Label(t("outcomes_cif_year", lang), htmlFor="outcomes-start-year"),
                    dcc.RadioItems(
                        id="outcomes-start-year",
                        options=[{"label": t("outcomes_cif_all_years", lang), "value": "all"}]
                        + [{"label": str(y), "value": str(y)} for y in years],
                        value=str(year) if year else "all",
                        inline=True,
                        inputStyle={"marginRight": "0.3rem"},
                        labelStyle={"marginRight": "1rem"},
                    ),
                ],
                className="controls-row",
            ),
            chart(
                dcc.Graph(
                    id="outcomes-cif-chart",
                    figure=_incidence_chart(curves, lang),
                    config=graph_config(lang),
                ),
                t("a11y_chart_outcomes_cif", lang),
            ),
            _incidence_table(curves, lang),
            html.P(t("outcomes_cif_note", lang), id="outcomes-cif-note", className="as-of-stamp"),
        ],
        className="section",
    )


def _band_colour(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, 0.15)"


def _incidence_chart(curves: list[dict], lang: str) -> go.Figure:
    fig = go.Figure()
    for scheme in SCHEMES:
        for event in outcomes.OUTCOME_EVENTS:
            rows = [
                c
                for c in curves
                if c["scheme"] == scheme
                and c["event"] == event
                and c["cumulative_incidence"] is not None
            ]
            if not rows:
                continue
            name = f"{scheme_label(scheme, lang)} — {t(f'outcomes_cif_{event}', lang)}"
            x = [c["day"] for c in rows]
            colour = SCHEME_COLOURS[scheme]
            fig.add_scatter(
                x=x, y=[c["upper_95"] for c in rows], mode="lines", line={"width": 0},
                line_shape="hv", showlegend=False, hoverinfo="skip", legendgroup=name,
            )  # fmt: skip
            fig.add_scatter(
                x=x, y=[c["lower_95"] for c in rows], mode="lines", line={"width": 0},
                line_shape="hv", fill="tonexty", fillcolor=_band_colour(colour),
                showlegend=False, hoverinfo="skip", legendgroup=name,
            )  # fmt: skip
            fig.add_scatter(
                x=x,
                y=[c["cumulative_incidence"] for c in rows],
                mode="lines",
                line_shape="hv",
                name=name,
                legendgroup=name,
                line={"color": colour, "width": 2, "dash": CIF_DASH[event]},
                customdata=[
                    [
                        fmt_rate(c["cumulative_incidence"], lang),
                        fmt_rate(c["lower_95"], lang),
                        fmt_rate(c["upper_95"], lang),
                        fmt_int(c["at_risk"], lang),
                    ]
                    for c in rows
                ],
                hovertemplate="d = %{x}: <b>%{customdata[0]}</b> (95 %: %{customdata[1]} – "
                "%{customdata[2]}; "
                + t("outcomes_cif_at_risk", lang)
                + " %{customdata[3]})<extra>"
                + name
                + "</extra>",
            )
    fig.update_layout(
        xaxis={"title": t("outcomes_days_axis", lang), "dtick": 30, "range": [0, 365]},
        yaxis={"title": t("outcomes_cif_axis", lang), "tickformat": ".0%", "range": [0, 1.05]},
    )
    return figure_layout(fig, lang, height=380)


def _incidence_table(curves: list[dict], lang: str):
    header = html.Tr(
        [html.Th(t("scheme", lang)), html.Th(t("outcomes_cif_event", lang))]
        + [html.Th(t("outcomes_cif_at_day", lang, d=day)) for day in outcomes.OUTCOME_DAYS]
        + [html.Th(t("outcomes_cif_programmes", lang))]
    )
    by = {(c["scheme"], c["event"], c["day"]): c for c in curves}
    body = []
    for scheme in SCHEMES:
        for event in outcomes.OUTCOME_EVENTS:
            cells = []
            for day in outcomes.OUTCOME_DAYS:
                c = by.get((scheme, event, day))
                value = c and c["cumulative_incidence"]
                text = (
                    f"{fmt_rate(value, lang)} ({fmt_rate(c['lower_95'], lang)} – "
                    f"{fmt_rate(c['upper_95'], lang)})"
                    if value is not None and c
                    else fmt_rate(None, lang)
                )
                cells.append(html.Td(text, id=f"outcomes-cif-{scheme}-{event}-{day}"))
            first = by.get((scheme, event, outcomes.OUTCOME_DAYS[0]))
            programmes = first["programmes"] if first else 0
            body.append(
                html.Tr(
                    [
                        html.Th(scheme_label(scheme, lang), scope="row"),
                        html.Td(t(f"outcomes_cif_{event}", lang)),
                        *cells,
                        html.Td(fmt_int(programmes, lang)),
                    ]
                )
            )
    return html.Table(
        [html.Thead(header), html.Tbody(body)], id="outcomes-cif-table", className="figures"
    )


# --- 6. after the programme: BZRA-free at 90/180/365 days (SPEC §14) ----------------------


def _bzra_free_section(data, state, start_year: str | None, disclosure):
    """BZRA-free at N days per scheme, for the completed and for all closed programmes, with
    their denominators (the observable programmes); the start year of the URL when the mart
    has it (none: every year); "not observable with the exports loaded" when none is."""
    lang = state.lang
    year = int(start_year) if start_year and start_year.isdecimal() else None
    year = year if year in figures.bzra_free_years(data) else None
    doc = figures.bzra_free(data, disclosure, year)
    year_text = str(year) if year else t("outcomes_cif_all_years", lang)
    children = [
        html.H3(t("outcomes_bzra_title", lang)),
        html.P(
            f"{t('outcomes_cif_year', lang)}: {year_text}",
            id="outcomes-bzra-year",
            className="as-of-stamp",
        ),
    ]
    if not doc["observable"]:
        children.append(html.P(t("outcomes_bzra_none", lang), id="outcomes-bzra-none"))
    else:
        for group in figures.BZRA_FREE_GROUPS:
            children += [
                html.H4(t(f"outcomes_bzra_group_{group}", lang)),
                _bzra_free_table(doc["rows"], group, lang),
            ]
    children.append(html.P(t("outcomes_bzra_note", lang), id="outcomes-bzra-note",
                           className="as-of-stamp"))  # fmt: skip
    return html.Div(children, className="section", id="outcomes-bzra-section")


def _bzra_free_table(rows: list[dict], group: str, lang: str):
    header = html.Tr(
        [html.Th(t("scheme", lang))]
        + [
            html.Th(t(key, lang, d=days))
            for days in figures.BZRA_FREE_DAYS
            for key in ("outcomes_bzra_observable", "outcomes_bzra_free", "outcomes_bzra_rate")
        ]
    )
    by = {(r["scheme"], r["days"]): r for r in rows if r["programmes_group"] == group}
    body = []
    for scheme in SCHEMES:
        cells = []
        for days in figures.BZRA_FREE_DAYS:
            r = by.get((scheme, days))
            prefix = f"outcomes-bzra-{group}-{scheme}-{days}"
            observable = r["observable"] if r else 0
            if observable == 0:
                texts = (fmt_int(observable, lang), t("not_observable", lang), EMPTY)
            else:
                texts = (
                    fmt_int(observable, lang),
                    fmt_int(r["bzra_free"], lang),
                    fmt_rate(r["bzra_free_rate"], lang),
                )
            cells += [
                html.Td(text, id=f"{prefix}-{part}")
                for text, part in zip(texts, ("observable", "free", "rate"), strict=True)
            ]
        body.append(html.Tr([html.Th(scheme_label(scheme, lang), scope="row"), *cells]))
    return html.Table(
        [html.Thead(header), html.Tbody(body)],
        id=f"outcomes-bzra-{group}-table",
        className="figures",
    )


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("outcomes-start-year", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_start_year(value, search):
    year = value if value and value.isdigit() else None
    if query_params(search).get("start_year") == year:
        return dash.no_update
    return search_with(search, start_year=year)


# --- controls write the URL -----------------------------------------------------------------


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("outcomes-rate", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_rate(rate, search):
    current = query_params(search).get("rate") or DEFAULT_RATE
    if rate not in RATES or rate == current:
        return dash.no_update
    return search_with(search, rate=rate)


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("outcomes-scheme", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_scheme(scheme, search):
    current = query_params(search).get("scheme") or DEFAULT_SCHEME
    if scheme not in SCHEMES or scheme == current:
        return dash.no_update
    return search_with(search, scheme=scheme)
