"""The report pack's charts (issue 18): Plotly figures drawn as static SVG images by kaleido.

kaleido (>= 1) draws with a headless Chromium — the one the PDF is printed with
(etl.outputs.pack_render.find_chromium: Debian's `chromium` will do). The images are embedded
in the HTML as `data:` URIs (the file stays self-contained, and each SVG keeps its own ids and
styles). Words come from the catalogues, numbers in the reader's locale (Plotly's separators),
months as the catalogue writes them; colours of Paul Tol's high-contrast scheme, which stay
apart in greyscale; provisional months hatched.

- `chart_figures(pack, lang)`: the figures (trend, outcomes, fees, budget) that have data;
- `chart_images(pack, lang, executable)`: the same as `data:image/svg+xml` URIs (cached per
  pack and language); raises etl.base.errors.UserError when the browser fails.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections import OrderedDict

import plotly.graph_objects as go

from etl.base.errors import UserError
from etl.base.i18n import fmt_month, t

WIDTH, HEIGHT = 720, 330
SCHEME_COLOURS = {"5": "#004488", "7": "#DDAA33", "10": "#BB5566"}
TOTAL_COLOUR = "#000000"
TREND_MONTHS = 24
SEPARATORS = {"fr": ", ", "nl": ",.", "en": ".,"}
CACHE_SIZE = 16

_cache: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
_lock = threading.Lock()


def _layout(fig: go.Figure, lang: str, title: str, y_title: str, y_format: str = "") -> None:
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 14}},
        width=WIDTH,
        height=HEIGHT,
        margin={"l": 70, "r": 20, "t": 44, "b": 80},
        font={"family": "DejaVu Sans, Arial, sans-serif", "size": 11, "color": "#1a1a1a"},
        plot_bgcolor="white",
        paper_bgcolor="white",
        separators=SEPARATORS.get(lang, ".,"),
        legend={"orientation": "h", "y": -0.22, "x": 0},
        barmode="stack",
    )
    fig.update_yaxes(
        title_text=y_title, gridcolor="#dddddd", zerolinecolor="#888888", tickformat=y_format
    )
    fig.update_xaxes(linecolor="#888888")


def _scheme_name(scheme: str, lang: str) -> str:
    return t("scheme_total" if scheme == "total" else f"step_scheme_{scheme}", lang)


def _number(value):
    """A value a chart can draw: a masked count ("<5") or an empty cell is not drawn."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def trend_figure(pack, lang: str) -> go.Figure | None:
    """Patients initiated per month and scheme (stacked bars, the last 24 months), provisional
    months hatched, the nowcast of the total with its 95 % interval."""
    table = pack.tables["trend"]
    rows = table.rows[-TREND_MONTHS:]
    if not rows:
        return None
    keys = [c.key for c in table.columns]
    months = [r[0] for r in rows]
    labels = [fmt_month(m, lang, short=True) for m in months]
    patterns = ["/" if r[1] else "" for r in rows]
    fig = go.Figure()
    for scheme in ("5", "7", "10"):
        i = keys.index(scheme)
        fig.add_bar(
            x=labels,
            y=[_number(r[i]) for r in rows],
            name=_scheme_name(scheme, lang),
            marker={"color": SCHEME_COLOURS[scheme], "pattern": {"shape": patterns}},
        )
    casts = pack.tables.get("nowcast")
    if casts is not None:
        expected = {
            r[1]: r
            for r in casts.rows
            if r[0] == "patients_initiated" and r[2] == "total" and _number(r[4]) is not None
        }
        shown = [m for m in months if m in expected]
        if shown:
            nowcast = [expected[m][4] for m in shown]
            upper = [_number(expected[m][8]) for m in shown]
            lower = [_number(expected[m][7]) for m in shown]
            fig.add_scatter(
                x=[labels[months.index(m)] for m in shown],
                y=nowcast,
                mode="markers",
                name=t("pack_chart_expected", lang),
                marker={"color": TOTAL_COLOUR, "symbol": "diamond", "size": 9},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        (u - n) if u is not None else 0 for u, n in zip(upper, nowcast, strict=True)
                    ],
                    "arrayminus": [
                        (n - lo) if lo is not None else 0
                        for lo, n in zip(lower, nowcast, strict=True)
                    ],
                    "color": TOTAL_COLOUR,
                },
            )
    _layout(fig, lang, t("pack_chart_trend", lang), t("pack_axis_patients", lang))
    fig.update_xaxes(type="category", tickangle=-45)
    return fig


def outcomes_figure(pack, lang: str) -> go.Figure | None:
    """SPEC §16: cumulative incidence of completion (solid) and stop (dashed) per scheme by days
    since the start; an estimate hidden by disclosure control is not drawn."""
    table = pack.tables.get("outcome_curves")
    if table is None or not any(_number(r[3]) is not None for r in table.rows):
        return None
    fig = go.Figure()
    for scheme in ("5", "7", "10"):
        for event, dash in (("completion", "solid"), ("stop", "dash")):
            rows = [r for r in table.rows if str(r[0]) == scheme and r[2] == event]
            if not rows:
                continue
            fig.add_scatter(
                x=[0, *(r[1] for r in rows)],
                y=[0, *(_number(r[3]) for r in rows)],
                mode="lines+markers",
                name=f"{_scheme_name(scheme, lang)} — {t(f'pack_event_{event}', lang)}",
                line={"color": SCHEME_COLOURS[scheme], "dash": dash},
            )
    _layout(fig, lang, t("pack_chart_outcomes", lang), t("pack_axis_share", lang), ".0%")
    fig.update_xaxes(title_text=t("outcomes_days_axis", lang), tickvals=[0, 90, 180, 270, 360])
    fig.update_layout(height=HEIGHT + 40, legend={"y": -0.3})
    return fig


def fees_figure(pack, lang: str) -> go.Figure | None:
    """Estimated fees per month (the last 24 months), provisional months hatched."""
    table = pack.tables.get("fees_by_month")
    if table is None or not table.rows:
        return None
    rows = table.rows[-TREND_MONTHS:]
    fig = go.Figure()
    fig.add_bar(
        x=[fmt_month(r[0], lang, short=True) for r in rows],
        y=[_number(r[2]) for r in rows],
        name=t("pack_chart_fees", lang),
        marker={
            "color": SCHEME_COLOURS["5"],
            "pattern": {"shape": ["/" if r[1] else "" for r in rows]},
        },
        showlegend=False,
    )
    _layout(fig, lang, t("pack_chart_fees", lang), t("pack_axis_eur", lang), ",.0f")
    fig.update_xaxes(type="category", tickangle=-45)
    return fig


def budget_figure(pack, lang: str) -> go.Figure | None:
    """The year's fees against the envelope: cumulative fees per billing month, per delivery
    month (known, then with the nowcast), the envelope and the year-end projection (95 %)."""
    table = pack.tables.get("budget")
    projection = pack.tables.get("budget_projection")
    if table is None or not table.rows or projection is None:
        return None
    items = {r[0]: r[1] for r in projection.rows}
    labels = [fmt_month(r[0], lang, short=True) for r in table.rows]
    billed = [_number(r[3]) for r in table.rows]
    delivery, total = [], 0.0
    for r in table.rows:
        value = _number(r[5]) if _number(r[5]) is not None else _number(r[4])
        if value is None:
            delivery.append(None)
            continue
        total += value
        delivery.append(round(total, 2))
    fig = go.Figure()
    fig.add_scatter(
        x=labels, y=billed, mode="lines+markers", name=t("pack_col_fees_billed_cumulative_eur", lang),
        line={"color": SCHEME_COLOURS["5"]},
    )  # fmt: skip
    fig.add_scatter(
        x=labels, y=delivery, mode="lines", name=t("pack_chart_delivery_cumulative", lang),
        line={"color": SCHEME_COLOURS["10"], "dash": "dash"},
    )  # fmt: skip
    envelope = _number(items.get("pack_budget_annual_budget_eur"))
    if envelope:
        fig.add_scatter(
            x=[labels[0], labels[-1]], y=[envelope, envelope], mode="lines",
            name=t("pack_budget_annual_budget_eur", lang),
            line={"color": TOTAL_COLOUR, "dash": "dot"},
        )  # fmt: skip
    year_end = _number(items.get("pack_budget_year_end"))
    if year_end is not None:
        low = _number(items.get("pack_budget_lower_95"))
        high = _number(items.get("pack_budget_upper_95"))
        fig.add_scatter(
            x=[labels[-1]], y=[year_end], mode="markers", name=t("pack_budget_year_end", lang),
            marker={"color": SCHEME_COLOURS["7"], "symbol": "diamond", "size": 10},
            error_y={
                "type": "data", "symmetric": False,
                "array": [high - year_end if high is not None else 0],
                "arrayminus": [year_end - low if low is not None else 0],
            },
        )  # fmt: skip
    _layout(fig, lang, t("pack_chart_budget", lang), t("pack_axis_eur", lang), ",.0f")
    fig.update_xaxes(type="category", tickangle=-45)
    fig.update_layout(height=HEIGHT + 40, legend={"y": -0.3})
    return fig


CHARTS = {
    "trend": trend_figure,
    "outcomes": outcomes_figure,
    "fees": fees_figure,
    "budget": budget_figure,
}


def chart_figures(pack, lang: str) -> dict[str, go.Figure]:
    """The pack's charts that have something to draw, by name (trend, outcomes, fees, budget)."""
    built = {name: make(pack, lang) for name, make in CHARTS.items()}
    return {name: fig for name, fig in built.items() if fig is not None}


def chart_images(pack, lang: str, executable: str) -> dict[str, str]:
    """The pack's charts as `data:image/svg+xml;base64,…` URIs, by name, drawn by the Chromium
    at `executable` (one browser for all; etl.outputs.pack_render.find_chromium); kept per
    (content hash, language). UserError (plain message) when the browser fails."""
    key = (pack.content_sha256, lang)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    figures = chart_figures(pack, lang)
    try:
        svgs = asyncio.run(_draw(figures, executable))
    except UserError:
        raise
    except Exception as exc:  # kaleido's or the browser's own errors: one plain message
        raise UserError(f"the charts could not be drawn by Chromium: {exc}") from exc
    images = {
        name: "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
        for name, svg in svgs.items()
    }
    with _lock:
        _cache[key] = images
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return images


async def _draw(figures: dict[str, go.Figure], executable: str) -> dict[str, bytes]:
    import kaleido  # imported here: the xlsx pack and the dashboard never need it

    out = {}
    async with kaleido.Kaleido(n=1, path=executable) as drawer:
        for name, fig in figures.items():
            layout = fig.layout
            opts = {"format": "svg", "width": layout.width, "height": layout.height}
            out[name] = await drawer.calc_fig(fig, opts=opts)
    return out
