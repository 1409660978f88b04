"""Regions and patients: the programme's regional spread and who starts it (the commission).

Read from three marts: mart_programmes_by_region (patients who initiated a programme per region,
per 100,000 inhabitants with the Statbel population and its source), mart_programmes_by_province
(the same per province), mart_patients_by_profile (age band, sex, insurer). A programme is
placed by the postcode of its initiating pharmacy on the initiation line; the rules are in the
marts' documents. Optional filter in the URL: `scheme` (5, 7 or 10; none: every scheme).

A funnel plot (SPEC §16, etl/outcomes.py on mart_funnel_units) sets each unit's completion or
early-delivery rate against its size, with 95 % and 99.8 % limits around the national value: no
ranking. In the URL: `funnel_measure` (completion|early_delivery) and `funnel_by`
(region|province, and pharmacy in the analysts' view only; the publication view does not plot a
unit with fewer cases than the suppression threshold).
"""

from __future__ import annotations

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
from etl.base.disclosure import Line
from etl.base.i18n import fmt_date, fmt_int, fmt_number, fmt_rate, t
from etl.base.registry import load_registry

dash.register_page(__name__, path="/regions", name="regions", order=40)

DIMENSIONS = ("age_band", "sex", "insurer")
COUNT_COLUMNS = (
    "n_patients_initiated",
    "n_programmes",
    "n_in_progress",
    "n_completed",
    "n_stopped",
)
OUTCOME_COLUMNS = ("n_in_progress", "n_completed", "n_stopped")  # adding up to n_programmes
SCHEMES_AND_TOTAL = (*SCHEMES, "total")
# The registered metric whose label heads each count column.
COUNT_METRICS = {
    "n_patients_initiated": "patients_initiated_cumulative",
    "n_programmes": "programmes",
    "n_in_progress": "in_progress",
    "n_completed": "completed",
    "n_stopped": "stopped",
}


def layout(
    scheme: str | None = None,
    funnel_measure: str | None = None,
    funnel_by: str | None = None,
    **params,
):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    data = wh.reader(state.as_of)
    regions = figures.programmes_by_region(data)
    if not regions:
        return empty_page(state, id_prefix="regions")
    provinces = figures.programmes_by_province(data)
    profile = figures.patients_by_profile(data)
    scheme = scheme if scheme in SCHEMES else None
    threshold = wh.config.suppression_threshold
    disclosure = state.disclosure(threshold)
    regions, provinces, profile = protect(regions, provinces, profile, disclosure)
    shown = (scheme,) if scheme else SCHEMES
    table_scheme = scheme or "total"
    return html.Div(
        [
            page_title(t("regions", lang), state, regions[0]["as_of_date"], id_prefix="regions"),
            publication_note(state, threshold, id_prefix="regions"),
            html.Div(
                [
                    html.Label(t("scheme", lang), htmlFor="regions-scheme"),
                    dcc.RadioItems(
                        id="regions-scheme",
                        options=[{"label": t("regions_all_schemes", lang), "value": "all"}]
                        + [{"label": scheme_label(s, lang), "value": s} for s in SCHEMES],
                        value=scheme or "all",
                        inline=True,
                        inputStyle={"marginRight": "0.25rem"},
                        labelStyle={"marginRight": "0.8rem"},
                    ),
                ],
                className="controls-row",
            ),
            html.Div(
                [
                    html.H3(t("regions_geography_title", lang)),
                    html.Div(
                        [
                            _chart(
                                "regions-rate-chart",
                                t("regions_rate_chart", lang),
                                _rate_figure(regions, shown, disclosure, lang),
                                lang,
                            ),
                            _chart(
                                "regions-province-chart",
                                t("regions_province_chart", lang),
                                _province_figure(provinces, shown, disclosure, lang),
                                lang,
                            ),
                        ],
                        style=_COLUMNS,
                    ),
                    html.P(
                        _population_source(regions, lang),
                        id="regions-population-source",
                        className="as-of-stamp",
                    ),
                    _region_table(regions, table_scheme, disclosure, lang),
                    html.Div(style={"height": "0.6rem"}),
                    _province_table(provinces, table_scheme, disclosure, lang),
                    html.P(
                        t("regions_rule_note", lang),
                        id="regions-rule-note",
                        className="as-of-stamp",
                        style={"marginTop": "0.5rem"},
                    ),
                ],
                className="section",
            ),
            html.Div(
                [
                    html.H3(t("regions_profile_title", lang)),
                    html.Div(
                        [
                            _profile_chart(
                                profile, d, shown, disclosure, lang, as_of=regions[0]["as_of_date"]
                            )
                            for d in DIMENSIONS
                        ],
                        style=_COLUMNS,
                    ),
                    html.P(t("regions_age_note", lang), className="as-of-stamp"),
                    _profile_table(profile, table_scheme, disclosure, lang),
                ],
                className="section",
            ),
            _funnel_section(data, state, funnel_measure, funnel_by, disclosure, regions),
        ]
    )


_COLUMNS = {
    "display": "grid",
    "gridTemplateColumns": "repeat(auto-fit, minmax(min(380px, 100%), 1fr))",
    "gap": "0.8rem",
}


def _chart(chart_id: str, title: str, figure: go.Figure, lang: str):
    return html.Div(
        [html.H4(title, style={"margin": "0.2rem 0"}),
         chart(dcc.Graph(id=chart_id, figure=figure, config=graph_config(lang)),
               t(f"a11y_chart_{chart_id.replace('-', '_')}", lang))]
    )  # fmt: skip


# --- labels ------------------------------------------------------------------------------


def _region_name(row: dict, lang: str) -> str:
    if row["region_code"] == "unknown":
        return t("regions_unknown", lang)
    return row[f"region_name_{lang}"]


def _province_name(row: dict, lang: str) -> str:
    if row["province_code"] == "unknown":
        return t("regions_unknown", lang)
    return row[f"province_name_{lang}"]


def _category_name(dimension: str, category: str, lang: str, *, short: bool = False) -> str:
    """An age band, sex or insurer in words (`short`: insurers by their code, for an axis)."""
    if category == "unknown":
        return t("regions_unknown", lang)
    if dimension == "sex":
        return t(f"regions_sex_{category}", lang)
    if dimension == "insurer" and not short:
        # INAMI-RIZIV's insurer (organisme assureur) codes: 100 Christian, 200 neutral,
        # 300 socialist, 400 liberal, 500 independent (Libres) mutualities, 600 CAAMI-HZIV,
        # 900 HR Rail (INAMI, "Les organismes assureurs"); the names are in the catalogues.
        key = f"regions_insurer_{category}"
        try:
            return f"{category} {t(key, lang)}"
        except KeyError:
            return category
    return category.replace("-", "–")


def _count_header(column: str, lang: str) -> str:
    return load_registry().metric(COUNT_METRICS[column]).label(lang)


# --- figures -----------------------------------------------------------------------------


def _bars(fig: go.Figure, rows: list[dict], labels: list[str], column: str, shown, disclosure,
          lang: str, *, horizontal: bool = False, rate_of: str | None = None):  # fmt: skip
    """One bar trace per scheme in `shown`; suppressed values are not drawn (hover says so)."""
    by = {(r["_label"], r["scheme"]): r for r in rows}
    marked = {}  # per scheme: the values drawn, or the mask ("<5", "x") where none is
    for scheme in shown:
        values, texts = [], []
        for label in labels:
            row = by[(label, scheme)]
            if rate_of:
                # Hover: the rate and the patients it counts ("— (<5)" when suppressed).
                value = _rate(row, rate_of, column, disclosure)
                count = fmt_int(row[rate_of], lang)
                text = f"{fmt_number(value, lang, 2)} ({count})"
            else:
                value = row[column]
                text = fmt_int(value, lang)
            values.append(value if isinstance(value, int | float) else None)
            texts.append(text)
        masks = [by[(label, scheme)][rate_of or column] for label in labels]
        marked[scheme_label(scheme, lang)] = [
            m if isinstance(m, str) else v for m, v in zip(masks, values, strict=True)
        ]
        axes = {"y": labels, "x": values, "orientation": "h"} if horizontal else {
            "x": labels, "y": values}  # fmt: skip
        fig.add_bar(
            **axes,
            name=scheme_label(scheme, lang),
            marker_color=SCHEME_COLOURS[scheme],
            customdata=texts,
            hovertemplate=("%{y}" if horizontal else "%{x}")
            + ": %{customdata}<extra>"
            + scheme_label(scheme, lang)
            + "</extra>",
        )
    mark_suppressed(fig, labels, marked, lang, horizontal=horizontal)
    fig.update_layout(barmode="stack", showlegend=True)
    # Counts and rates are never negative (an axis with every value suppressed stays at 0-1).
    (fig.update_xaxes if horizontal else fig.update_yaxes)(
        rangemode="nonnegative", title=t(f"a11y_axis_{column}", lang)
    )
    # Categories (insurer codes such as 100, 200 included) are labels, not a numeric scale.
    (fig.update_yaxes if horizontal else fig.update_xaxes)(type="category")
    return fig


def _rate(row: dict, count_column: str, rate_column: str, disclosure):
    """A rate per 100,000, hidden with its count when the count is suppressed (a rate on a
    known population would give the count back)."""
    if isinstance(row[count_column], str):
        return None
    return row[rate_column]


def _labelled(rows: list[dict], name) -> list[dict]:
    return [{**r, "_label": name(r)} for r in rows]


def _rate_figure(regions: list[dict], shown, disclosure, lang: str) -> go.Figure:
    rows = _labelled([r for r in regions if r["adult_population"]], lambda r: _region_name(r, lang))
    labels = list(dict.fromkeys(r["_label"] for r in rows))
    fig = _bars(go.Figure(), rows, labels, "patients_initiated_per_100000_adults", shown, disclosure,
                lang, rate_of="n_patients_initiated")  # fmt: skip
    return figure_layout(fig, lang, height=330)


def _province_figure(provinces: list[dict], shown, disclosure, lang: str) -> go.Figure:
    rows = _labelled(provinces, lambda r: _province_name(r, lang))
    labels = list(dict.fromkeys(r["_label"] for r in rows))
    fig = _bars(go.Figure(), rows, labels, "n_patients_initiated", shown, disclosure, lang,
                horizontal=True)  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    fig = figure_layout(fig, lang, height=330)
    # The margin grows with the longest province name ("Brabant wallon", "West-Vlaanderen"):
    # no name is cut, whatever the language or the width.
    fig.update_yaxes(automargin=True)
    return fig


def _profile_chart(
    profile: list[dict], dimension: str, shown, disclosure, lang: str, *, as_of=None
):
    rows = [r for r in profile if r["dimension"] == dimension]
    title = html.H4(t(f"regions_dimension_{dimension}", lang), style={"margin": "0.2rem 0"})
    if all(r["n_patients_initiated"] == 0 for r in rows):
        # Nobody yet at this as-of date: whether the export has the column cannot be told.
        return html.Div(
            [title, html.P(t("regions_no_patients", lang, date=fmt_date(as_of, lang)),
                           className="empty", id=f"regions-missing-{dimension}")]
        )  # fmt: skip
    if not rows[0]["is_dimension_in_export"]:
        return html.Div(
            [title, html.P(t(f"regions_missing_{dimension}", lang), className="empty",
                           id=f"regions-missing-{dimension}")]
        )  # fmt: skip
    # Insurers by name (issue 18: a reader does not know the codes), the code kept in front.
    short = dimension != "insurer"
    rows = _labelled(rows, lambda r: _category_name(dimension, r["category"], lang, short=short))
    labels = list(dict.fromkeys(r["_label"] for r in rows))
    fig = _bars(go.Figure(), rows, labels, "n_patients_initiated", shown, disclosure, lang)
    fig = figure_layout(fig, lang, height=300 if short else 380)
    fig.update_xaxes(automargin=True)  # long names: the chart makes room rather than cut them
    return html.Div(
        [title, chart(dcc.Graph(id=f"regions-{dimension}-chart", figure=fig,
                                config=graph_config(lang)),
                      t("a11y_chart_regions_profile", lang))]
    )  # fmt: skip


# --- tables ------------------------------------------------------------------------------


def _counts(row: dict, disclosure) -> dict:
    return {c: row[c] for c in COUNT_COLUMNS}  # already through `protect`


def protect(
    regions: list[dict], provinces: list[dict], profile: list[dict], disclosure
) -> tuple[list[dict], list[dict], list[dict]]:
    """The three marts' rows with their counts as published (SPEC §9, etl.base.disclosure).

    Lines of the complementary rule: in each row, programmes = in progress + completed +
    stopped; per category and count, schemes 5 + 7 + 10 = total; per scheme and count, the
    categories of each group (regions, provinces, age bands, sexes, insurers: each includes
    `unknown`) add up to the national figure, which any complete group gives away, so it is a
    shared total; and the provinces of a region add up to the region."""
    groups = {
        "region": [(r["region_code"], r) for r in regions],
        "province": [(r["province_code"], r) for r in provinces],
    }
    for r in profile:
        groups.setdefault(r["dimension"], []).append((r["category"], r))
    cells, lines = {}, []
    for group, rows in groups.items():
        for category, r in rows:
            for c in COUNT_COLUMNS:
                cells[(group, category, r["scheme"], c)] = r[c]
                cells.setdefault(("national", None, r["scheme"], c), 0)
        categories = list(dict.fromkeys(category for category, _ in rows))
        schemes = list(dict.fromkeys(r["scheme"] for _, r in rows))
        for category in categories:
            for scheme in schemes:
                lines.append(
                    Line(
                        tuple((group, category, scheme, c) for c in OUTCOME_COLUMNS),
                        (group, category, scheme, "n_programmes"),
                    )
                )
            for c in COUNT_COLUMNS:
                lines.append(
                    Line(
                        tuple((group, category, s, c) for s in SCHEMES),
                        (group, category, "total", c),
                    )
                )
        for scheme in schemes:
            for c in COUNT_COLUMNS:
                lines.append(
                    Line(
                        tuple((group, k, scheme, c) for k in categories),
                        ("national", None, scheme, c),
                    )
                )
    for key in [k for k in cells if k[0] == "national"]:  # the regions' sum
        cells[key] = sum(r[key[3]] for _, r in groups["region"] if r["scheme"] == key[2])
    by_region: dict[str, list[str]] = {}
    for code, r in groups["province"]:
        if code not in by_region.setdefault(r["region_code"], []):
            by_region[r["region_code"]].append(code)
    for region, codes in by_region.items():
        for scheme in SCHEMES_AND_TOTAL:
            for c in COUNT_COLUMNS:
                lines.append(
                    Line(
                        tuple(("province", k, scheme, c) for k in codes),
                        ("region", region, scheme, c),
                    )
                )
    lines = [ln for ln in lines if all(k in cells for k in (*ln.parts, ln.total))]
    shown = disclosure.table(cells, lines)

    def published(group: str, rows: list[dict], key: str) -> list[dict]:
        return [
            {**r, **{c: shown[(group, r[key], r["scheme"], c)] for c in COUNT_COLUMNS}}
            for r in rows
        ]

    profile_shown = [
        {**r, **{c: shown[(r["dimension"], r["category"], r["scheme"], c)] for c in COUNT_COLUMNS}}
        for r in profile
    ]
    return (
        published("region", regions, "region_code"),
        published("province", provinces, "province_code"),
        profile_shown,
    )


def _count_columns(lang: str) -> list[dict]:
    return [
        {"field": c, "headerName": _count_header(c, lang), "kind": "int"} for c in COUNT_COLUMNS
    ]


def _region_table(regions: list[dict], scheme: str, disclosure, lang: str):
    rows = [
        {
            "row_id": r["region_code"],
            "region": _region_name(r, lang),
            **_counts(r, disclosure),
            "patients_initiated_per_100000_adults": _rate(
                r, "n_patients_initiated", "patients_initiated_per_100000_adults", disclosure
            ),
            "adult_population": r["adult_population"],
        }
        for r in regions
        if r["scheme"] == scheme
    ]
    columns = [
        {"field": "region", "headerName": t("regions_region", lang)},
        *_count_columns(lang)[:1],
        {"field": "patients_initiated_per_100000_adults", "headerName": t("regions_per_100000", lang),
         "kind": "int"},
        *_count_columns(lang)[1:],
        {"field": "adult_population", "headerName": t("regions_population", lang), "kind": "int"},
    ]  # fmt: skip
    return _grid("regions-region-table", rows, columns, lang, height=250)


def _province_table(provinces: list[dict], scheme: str, disclosure, lang: str):
    rows = [
        {
            "row_id": r["province_code"],
            "region": _region_name(r, lang),
            "province": _province_name(r, lang),
            **_counts(r, disclosure),
            "patients_initiated_per_100000_adults": _rate(
                r, "n_patients_initiated", "patients_initiated_per_100000_adults", disclosure
            ),
            "adult_population": r["adult_population"],
        }
        for r in provinces
        if r["scheme"] == scheme
    ]
    columns = [
        {"field": "region", "headerName": t("regions_region", lang)},
        {"field": "province", "headerName": t("regions_province", lang)},
        *_count_columns(lang)[:1],
        {"field": "patients_initiated_per_100000_adults",
         "headerName": t("regions_per_100000", lang), "kind": "int"},
        *_count_columns(lang)[1:],
        {"field": "adult_population", "headerName": t("regions_population", lang), "kind": "int"},
    ]  # fmt: skip
    return _grid("regions-province-table", rows, columns, lang, height=580)


def _profile_table(profile: list[dict], scheme: str, disclosure, lang: str):
    rows = [
        {
            # ag-grid escapes "<" in its row-id attribute: "age_band:lt45" for "<45".
            "row_id": f"{r['dimension']}:{r['category'].replace('<', 'lt')}",
            "dimension": t(f"regions_dimension_{r['dimension']}", lang),
            "category": _category_name(r["dimension"], r["category"], lang),
            **_counts(r, disclosure),
        }
        for r in profile
        if r["scheme"] == scheme and r["is_dimension_in_export"]
    ]
    columns = [
        {"field": "dimension", "headerName": t("regions_dimension", lang)},
        {"field": "category", "headerName": t("regions_category", lang)},
        *_count_columns(lang),
    ]
    return _grid("regions-profile-table", rows, columns, lang, height=420)


def _grid(grid_id: str, rows: list[dict], columns: list[dict], lang: str, *, height: int):
    """ui.grid with a stable row id per row (`row_id`) and wrapped headers (long labels)."""
    table = grid(grid_id, rows, columns, lang, height=height)
    table.getRowId = "params.data.row_id"
    table.defaultColDef = {
        **table.defaultColDef,
        "wrapHeaderText": True,
        "autoHeaderHeight": True,
    }
    return table


def _population_source(regions: list[dict], lang: str) -> str:
    rows = [r for r in regions if r["adult_population"] and r["scheme"] == "total"]
    if not rows:
        return ""
    figures = "; ".join(
        f"{_region_name(r, lang)} {fmt_int(r['adult_population'], lang)}" for r in rows
    )
    return t(
        "regions_population_source",
        lang,
        date=fmt_date(rows[0]["population_date"], lang),
        figures=figures,
    )


# --- funnel plot (SPEC §16) ----------------------------------------------------------------

FUNNEL_COLOURS = {"95": "#0072B2", "998": "#D55E00"}


def _funnel_units_allowed(state) -> tuple[str, ...]:
    """Pharmacies (pseudonymised) in the analysts' view only (SPEC §16)."""
    return ("region", "province") if state.publication else ("region", "province", "pharmacy")


def _funnel_section(data, state, measure, by, disclosure, regions: list[dict]):
    lang = state.lang
    allowed = _funnel_units_allowed(state)
    measure = measure if measure in outcomes.FUNNEL_MEASURES else "completion"
    by = by if by in allowed else "region"
    rows = outcomes.funnel_units(data, measure, by)
    as_of = regions[0]["as_of_date"].isoformat()
    doc = outcomes.funnel_document(rows, measure, by, disclosure, as_of, lang)
    notes = [_phi_note(doc, lang), _outside_note(doc, lang)]
    if doc["not_shown"]:
        notes.append(
            html.P(
                t("regions_funnel_not_shown", lang, n=doc["not_shown"], t=disclosure.threshold),
                id="regions-funnel-not-shown",
                className="as-of-stamp",
            )
        )
    return html.Div(
        [
            html.H3(t("regions_funnel_title", lang)),
            html.Div(
                [
                    html.Label(t("regions_funnel_measure", lang), htmlFor="regions-funnel-measure"),
                    dcc.RadioItems(
                        id="regions-funnel-measure",
                        options=[
                            {"label": t(f"regions_funnel_measure_{m}", lang), "value": m}
                            for m in outcomes.FUNNEL_MEASURES
                        ],
                        value=measure,
                        inline=True,
                        inputStyle={"marginRight": "0.25rem"},
                        labelStyle={"marginRight": "0.8rem"},
                    ),
                ],
                className="controls-row",
            ),
            html.Div(
                [
                    html.Label(t("regions_funnel_by", lang), htmlFor="regions-funnel-by"),
                    dcc.RadioItems(
                        id="regions-funnel-by",
                        options=[
                            {"label": t(f"regions_funnel_by_{u}", lang), "value": u}
                            for u in allowed
                        ],
                        value=by,
                        inline=True,
                        inputStyle={"marginRight": "0.25rem"},
                        labelStyle={"marginRight": "0.8rem"},
                    ),
                ],
                className="controls-row",
            ),
            chart(
                dcc.Graph(
                    id="regions-funnel-chart",
                    figure=_funnel_figure(doc, lang),
                    config=graph_config(lang),
                ),
                t("a11y_chart_regions_funnel", lang),
            ),
            *notes,
            html.P(t("regions_funnel_note", lang), id="regions-funnel-note",
                   className="as-of-stamp"),
        ],
        className="section",
    )  # fmt: skip


def _unit_label(unit: dict, lang: str) -> str:
    if unit["name"]:
        return unit["name"]
    return unit["unit"]


def _funnel_figure(doc: dict, lang: str) -> go.Figure:
    fig = go.Figure()
    p = doc["national"]["rate"]
    units = [u for u in doc["units"] if isinstance(u["rate"], int | float)]
    sizes = [u["cases"] for u in doc["units"] if isinstance(u["cases"], int)]
    if p is not None and sizes:
        top = max(sizes)
        grid_n = sorted({max(1, round(top * i / 200)) for i in range(1, 201)} | set(sizes))
        for level, z in (("95", outcomes.Z_95), ("998", outcomes.Z_998)):
            limits = [outcomes.control_limits(p, n, z, doc["phi"]) for n in grid_n]
            label = t(f"regions_funnel_limit_{level}", lang)
            for side, dash_style in ((0, "dot"), (1, "dot")):
                fig.add_scatter(
                    x=grid_n, y=[lim[side] for lim in limits], mode="lines", name=label,
                    legendgroup=label, showlegend=side == 0, hoverinfo="skip",
                    line={"color": FUNNEL_COLOURS[level], "width": 1.5 if level == "998" else 1,
                          "dash": dash_style if level == "95" else "solid"},
                )  # fmt: skip
        fig.add_scatter(
            x=[0, top], y=[p, p], mode="lines", name=t("regions_funnel_national", lang),
            line={"color": "#444444", "width": 1.5}, hoverinfo="skip",
        )  # fmt: skip
    fig.add_scatter(
        x=[u["cases"] for u in units],
        y=[u["rate"] for u in units],
        mode="markers",
        name=t(f"regions_funnel_by_{doc['by']}", lang),
        marker={
            "size": 9,
            "color": ["#D55E00" if u["outside_998"] else "#009E73" for u in units],
            # The two colours are one grey: a unit outside the limits is a diamond too.
            "symbol": ["diamond" if u["outside_998"] else "circle" for u in units],
            "line": {"width": 1, "color": "#333333"},
        },
        customdata=[
            [_unit_label(u, lang), fmt_int(u["cases"], lang), fmt_rate(u["rate"], lang)]
            for u in units
        ],
        hovertemplate="<b>%{customdata[0]}</b>: %{customdata[2]} (n = %{customdata[1]})"
        "<extra></extra>",
    )
    fig.update_layout(
        xaxis={"title": t("regions_funnel_cases_axis", lang), "rangemode": "tozero"},
        yaxis={"title": t("regions_funnel_rate_axis", lang), "tickformat": ".0%",
               "range": [0, 1.02]},
    )  # fmt: skip
    return figure_layout(fig, lang, height=420)


def _phi_note(doc: dict, lang: str):
    if doc["phi"] is None:
        return None
    key = "regions_funnel_phi_applied" if doc["phi_applied"] else "regions_funnel_phi_not_applied"
    return html.P(
        t(key, lang, phi=fmt_number(doc["phi"], lang, 2)),
        id="regions-funnel-phi",
        className="as-of-stamp",
    )


def _outside_note(doc: dict, lang: str):
    outside = [u for u in doc["units"] if u["outside_998"]]
    if not outside:
        text = t("regions_funnel_none_outside", lang)
    else:
        text = t(
            "regions_funnel_outside",
            lang,
            units=", ".join(
                f"{_unit_label(u, lang)} ({fmt_rate(u['rate'], lang)})"
                for u in sorted(outside, key=lambda u: u["unit"])
            ),
        )
    return html.P(text, id="regions-funnel-outside", className="as-of-stamp")


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("regions-funnel-measure", "value"),
    Input("regions-funnel-by", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_funnel(measure, by, search):
    current = query_params(search)
    if current.get("funnel_measure") == measure and current.get("funnel_by") == by:
        return dash.no_update
    return search_with(search, funnel_measure=measure, funnel_by=by)


@callback(
    Output("url", "search", allow_duplicate=True),
    Input("regions-scheme", "value"),
    State("url", "search"),
    prevent_initial_call=True,
)
def choose_scheme(value, search):
    scheme = value if value in SCHEMES else None
    if query_params(search).get("scheme") == scheme:
        return dash.no_update
    return search_with(search, scheme=scheme)
