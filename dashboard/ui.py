"""What every page shares: the view state in the URL, scheme colours, cards, tables, figures.

The URL's query string is the whole view state, so a view can be shared by link:
`lang` (fr|nl|en), `view` (analyst|publication), `as_of` (YYYY-MM-DD, empty: the latest
delivery), plus each page's own filters (`month`, `scheme`, `rule`, ...). Pages receive them as
keyword arguments of `layout(**params)`; controls write them back with `search_with`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import dash_ag_grid as dag
import flask
import plotly.graph_objects as go
from dash import html

from dashboard.auth import analyst_view_allowed
from dashboard.i18n import BROWSER_LOCALES, language
from dashboard.locale import grid_locale_text
from etl.base.disclosure import Disclosure
from etl.base.i18n import EMPTY, fmt_date, fmt_int, fmt_month, t

SCHEMES = ("5", "7", "10")
SCHEMES_AND_TOTAL = (*SCHEMES, "total")
# Okabe–Ito-based palette (colour-blind safe); one colour per scheme on every chart. The schemes
# go from light to dark so that they stay apart in greyscale too (relative luminance 0.57, 0.19,
# 0.04: tests/test_dashboard_a11y.py), and each edge of a bar is drawn in dark grey
# (figure_layout), at least 3:1 against the white background.
SCHEME_COLOURS = {
    "5": "#F5C000",  # amber (Okabe–Ito's orange, lighter)
    "7": "#008A64",  # bluish green, darker
    "10": "#003A66",  # blue, darker
    "total": "#444444",
    "unassigned": "#CC79A7",  # reddish purple
}
# Blue, vermillion, ochre (Okabe–Ito's yellow darkened to 3:1 on white), reddish purple, black.
EXTRA_COLOURS = ("#0072B2", "#D55E00", "#9A7D00", "#CC79A7", "#000000")
PROVISIONAL_SHADE = "rgba(120, 120, 120, 0.15)"
VIEWS = ("analyst", "publication")
GLOBAL_PARAMS = ("lang", "view", "as_of")


@dataclass(frozen=True)
class AsOfNotice:
    """Why the as-of date shown is not the one of the URL: `key` (a catalogue word:
    as_of_after_data, as_of_before_data, as_of_not_a_date), the value asked (shortened) and
    the date the figures are shown as of (None: the latest, unknown before any data)."""

    key: str
    asked: str
    shown: dt.date | None


@dataclass(frozen=True)
class ViewState:
    """The view the reader asked for in the URL: language, analyst/publication, as-of date
    (clamped to the data's range: `as_of_notice` says when it was changed)."""

    lang: str = "fr"
    view: str = "analyst"
    as_of: dt.date | None = None
    as_of_notice: AsOfNotice | None = None

    @property
    def publication(self) -> bool:
        return self.view == "publication"

    def params(self) -> dict[str, str]:
        """The global query parameters of this state (defaults left out)."""
        params = {"lang": self.lang}
        if self.publication:
            params["view"] = self.view
        if self.as_of:
            params["as_of"] = self.as_of.isoformat()
        return params

    def href(self, path: str, **extra) -> str:
        """A link to `path` keeping this state, with page filters `extra` (None: dropped)."""
        params = {**self.params(), **{k: str(v) for k, v in extra.items() if v not in (None, "")}}
        return f"{path}?{urlencode(params)}"

    def disclosure(self, threshold: int) -> Disclosure:
        """SPEC §9 suppression: on in the publication view, off in the analyst view."""
        return Disclosure(threshold, enabled=self.publication)


def parse_date(value: str | None) -> dt.date | None:
    """A YYYY-MM-DD URL parameter as a date (None when absent or unreadable)."""
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


# The longest part of a URL value a message repeats (a hostile URL can be very long).
ASKED_SHOWN = 40


def clamp_as_of(
    value: str | None, first: dt.date | None, latest: dt.date | None
) -> tuple[dt.date | None, AsOfNotice | None]:
    """The as-of date to compute for from the URL's `value`, and why it differs, if it does.

    The data answer for dates from `first` (the first delivery date loaded: before it no event
    exists) to `latest` (the latest delivery, SPEC §5's default as-of date): a date outside is
    moved to the nearest end. Without a value: None (the default). A value that is not a
    YYYY-MM-DD date: None and a notice. Before any data (no range) a readable date is kept.
    """
    if not value:
        return None, None
    asked = value if len(value) <= ASKED_SHOWN else value[:ASKED_SHOWN] + "…"
    date = parse_date(value)
    if date is None:
        return None, AsOfNotice("as_of_not_a_date", asked, latest)
    if latest is not None and date > latest:
        return latest, AsOfNotice("as_of_after_data", asked, latest)
    if first is not None and date < first:
        return first, AsOfNotice("as_of_before_data", asked, first)
    return date, None


def data_range() -> tuple[dt.date | None, dt.date | None]:
    """(first delivery date, latest delivery date) of the warehouse the current request's app
    reads (dashboard/data.py); (None, None) outside an app or before any data."""
    if not flask.has_app_context():
        return None, None
    wh = flask.current_app.config.get("BENZO_WAREHOUSE")
    return wh.date_range() if wh is not None else (None, None)


def as_of_message(state: ViewState) -> str | None:
    """The plain sentence saying the URL's as-of date was moved or not understood (None when
    it was used as asked)."""
    notice = state.as_of_notice
    if notice is None:
        return None
    asked = notice.asked
    if notice.key != "as_of_not_a_date":
        asked = fmt_date(parse_date(asked), state.lang)
    shown = fmt_date(notice.shown, state.lang) if notice.shown else EMPTY
    return t(notice.key, state.lang, asked=asked, date=shown)


def view_state(params: dict) -> ViewState:
    """The ViewState of a page's query parameters (unknown values fall back to defaults).

    A reader whose role may not see exact figures (a reviewer: dashboard/auth/guard.py) gets the
    publication view whatever the URL says. The as-of date is clamped to the data's range
    (`clamp_as_of`): every page, download and the pack read it from here.
    """
    view = params.get("view")
    view = view if view in VIEWS else "analyst"
    if view == "analyst" and not analyst_view_allowed():
        view = "publication"
    raw = params.get("as_of")
    first, latest = data_range() if raw else (None, None)
    as_of, notice = clamp_as_of(raw, first, latest)
    return ViewState(
        lang=language(params.get("lang")),
        view=view,
        as_of=as_of,
        as_of_notice=notice,
    )


def query_params(search: str | None) -> dict[str, str]:
    """A URL's query string ("?a=1&b=2") as a dict."""
    return dict(parse_qsl((search or "").lstrip("?")))


def search_with(search: str | None, **changes) -> str:
    """The query string `search` with `changes` applied (a None or "" value removes the key)."""
    params = query_params(search)
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = str(value)
    return "?" + urlencode(params)


def scheme_label(scheme: str, lang: str) -> str:
    """5 paliers / 7 stappen / 10 steps / Total."""
    return t(f"scheme_{scheme}", lang)


# --- building blocks -----------------------------------------------------------------------


def page_title(title: str, state: ViewState, as_of: dt.date | None, *, id_prefix: str):
    """The page heading with the data-as-of stamp and, in the publication view, the rule."""
    stamp = f"{t('data_as_of', state.lang)} {fmt_date(as_of, state.lang)}"
    if state.as_of:
        stamp += f" ({t('as_of', state.lang).lower()} {fmt_date(state.as_of, state.lang)})"
    children = [
        html.H1(title, id=f"{id_prefix}-title", className="page-title"),
        html.P(stamp, id=f"{id_prefix}-as-of", className="as-of-stamp"),
    ]
    message = as_of_message(state)
    if message:
        children.append(
            html.P(message, id=f"{id_prefix}-as-of-note", className="as-of-note", role="status")
        )
    return html.Div(children)


def publication_note(state: ViewState, threshold: int, *, id_prefix: str):
    """The suppression rule, shown only in the publication view."""
    if not state.publication:
        return None
    return html.P(
        t("publication_note", state.lang, n=threshold - 1, t=threshold),
        id=f"{id_prefix}-publication-note",
        className="publication-note",
    )


def empty_page(state: ViewState, *, id_prefix: str):
    """What a page shows when it has nothing to show: before any data is loaded, or at an
    as-of date before its figures begin (then it says which dates the data cover)."""
    first, latest = data_range()
    if latest is None:
        return html.P(t("no_data", state.lang), id=f"{id_prefix}-empty", className="empty")
    lang = state.lang
    text = t(
        "nothing_as_of",
        lang,
        date=fmt_date(state.as_of or latest, lang),
        first=fmt_date(first, lang),
        latest=fmt_date(latest, lang),
    )
    message = as_of_message(state)
    return html.Div(
        [
            html.P(message, id=f"{id_prefix}-as-of-note", className="as-of-note", role="status")
            if message
            else None,
            html.P(text, id=f"{id_prefix}-empty", className="empty"),
        ]
    )


# A light template of our own: plotly's named templates are deep-copied into every figure
# (about 17 ms each), this one costs about 1 ms.
_AXIS = {"gridcolor": "#EBF0F8", "zerolinecolor": "#D5DCE6", "linecolor": "#D5DCE6"}
TEMPLATE = go.layout.Template(
    layout={"plot_bgcolor": "white", "paper_bgcolor": "white", "xaxis": _AXIS, "yaxis": _AXIS}
)


def figure_layout(fig: go.Figure, lang: str, *, height: int = 360) -> go.Figure:
    """Shared chart look: compact margins, legend on top, the reader's number separators."""
    separators = {"fr": ", ", "nl": ",.", "en": ".,"}[language(lang)]
    fig.update_layout(
        height=height,
        margin={"l": 50, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": 1.12, "x": 0},
        separators=separators,
        template=TEMPLATE,
        font={"family": "system-ui, sans-serif", "size": 12},
    )
    accessible_figure(fig, lang)
    return fig


def grid(
    grid_id: str, rows: list[dict], columns: list[dict], lang: str, *, height: int = 420,
    page_size: int | None = None,
) -> dag.AgGrid:  # fmt: skip
    """An ag-grid table. `columns`: {"field", "headerName", "kind": text|int|eur|rate|date}.

    Numbers stay numbers (sortable, filterable) and are formatted in the browser's locale.
    """
    loc = BROWSER_LOCALES[language(lang)]
    formatters = {
        # "<5" passes through: a string's toLocaleString is the string itself.
        "int": f"params.value == null ? '' : params.value.toLocaleString('{loc}')",
        "eur": f"params.value == null ? '' : Number(params.value).toLocaleString('{loc}', "
        "{style: 'currency', currency: 'EUR'})",
        "rate": f"params.value == null ? '' : Number(params.value).toLocaleString('{loc}', "
        "{style: 'percent', minimumFractionDigits: 1})",
    }
    defs = []
    for col in columns:
        kind = col.get("kind", "text")
        spec = {"field": col["field"], "headerName": col.get("headerName", col["field"])}
        if kind in formatters:
            spec["type"] = "numericColumn"
            spec["filter"] = "agNumberColumnFilter"
            spec["valueFormatter"] = {"function": formatters[kind]}
        else:
            spec["filter"] = True
        defs.append(spec)
    options = {"animateRows": False, "localeText": grid_locale_text(lang)}
    if page_size:
        options.update({"pagination": True, "paginationPageSize": page_size})
    return dag.AgGrid(
        id=grid_id,
        rowData=rows,
        columnDefs=defs,
        defaultColDef={"sortable": True, "resizable": True, "minWidth": 90, "flex": 1},
        dashGridOptions=options,
        style={"height": f"{height}px", "width": "100%"},
        className="ag-theme-alpine",
    )


def json_safe(rows: list[dict]) -> list[dict]:
    """Rows with dates as ISO text and decimals as floats (what the browser can hold)."""
    out = []
    for row in rows:
        clean = {}
        for key, value in row.items():
            if isinstance(value, dt.date):
                clean[key] = value.isoformat()
            elif value is not None and type(value).__name__ == "Decimal":
                clean[key] = float(value)
            else:
                clean[key] = value
        out.append(clean)
    return out


# --- accessibility (issue 18): charts, headings -----------------------------------------------

# The chart toolbar keeps two buttons (a picture of the chart, back to the whole chart after a
# zoom): eleven buttons per chart were eleven tab stops of little use.
BAR_EDGE = {"color": "#333333", "width": 0.6}  # 12.6:1 on white: every bar has a visible edge
MONTH_TICKS = "%Y-%m"  # the pages' month axes, shown in words by figure_layout


def chart(graph, summary: str):
    """A chart with its text alternative: the graph and a caption saying what it shows (from
    the catalogues), announced by screen readers and visible to every reader."""
    return html.Figure(
        [graph, html.Figcaption(summary, className="chart-summary")], className="chart"
    )


def month_ticks(fig: go.Figure, lang: str) -> None:
    """Month axes (tickformat MONTH_TICKS) ticked in words ("janv. 25", "jan. 25", "Jan 25"),
    every month or every 3 months as the axis's dtick says, from the months the traces hold."""
    months = sorted(
        {
            (v.isoformat() if isinstance(v, dt.date) else str(v))[:7]
            for trace in fig.data
            for v in (getattr(trace, "x", None) or ())
            if v is not None and len(str(v)) >= 7
        }
    )
    months = [m for m in months if m[4:5] == "-" and m[:4].isdigit()]
    if not months:
        return

    def ticks(axis):
        if axis.tickformat != MONTH_TICKS:
            return
        step = 3 if axis.dtick == "M3" else 1
        shown = [m for m in months if (int(m[5:7]) - 1) % step == 0] or months[:1]
        axis.update(
            tickmode="array",
            tickvals=[m + "-01" for m in shown],
            ticktext=[fmt_month(m, lang, short=True) for m in shown],
            tickformat=None,
            dtick=None,
        )

    fig.for_each_xaxis(ticks)


def accessible_figure(fig: go.Figure, lang: str) -> None:
    """What every chart gets from figure_layout: full numbers on the axes with the reader's
    separators (12 000, not 12k), months in words, an edge on every bar."""
    fig.update_xaxes(exponentformat="none", separatethousands=True)
    fig.update_yaxes(exponentformat="none", separatethousands=True)
    for trace in fig.data:
        if trace.type == "bar" and trace.marker.line.width is None:
            trace.marker.line = BAR_EDGE
    month_ticks(fig, lang)


def nested_headings(markdown: str) -> str:
    """A Markdown document with every heading one level down (# -> ##), to sit under the page's
    own level-1 heading; code blocks are left as they are."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            line = "#" + line
        out.append(line)
    return "\n".join(out) + ("\n" if markdown.endswith("\n") else "")


def bar_pattern(shape: str) -> dict:
    """A hatching over a bar's colour ("" none, "/", ".", "x", ...): series whose colours are
    close in greyscale stay apart."""
    return {"shape": shape, "fillmode": "overlay", "fgcolor": "rgba(255, 255, 255, 0.75)",
            "size": 7, "solidity": 0.3}  # fmt: skip


def mark_suppressed(
    fig: go.Figure, x: list, series: dict[str, list], lang: str, *, horizontal: bool = False
) -> None:
    """In the publication view, a mark where a stacked bar leaves out a masked value (SPEC §9:
    "<5", "x"), instead of a silent gap: one marker at the end of the bar's stack, its hover
    naming each masked part. `series`: the values drawn (or the mask), per name, in the order of
    the categories `x` (on the y axis for horizontal bars)."""
    xs, ys, notes = [], [], []
    for i, at in enumerate(x):
        masked = [
            (name, values[i]) for name, values in series.items() if isinstance(values[i], str)
        ]
        if masked:
            xs.append(at)
            ys.append(sum(v[i] for v in series.values() if isinstance(v[i], int | float)))
            notes.append("<br>".join(f"{name}: {value}" for name, value in masked))
    if horizontal:
        xs, ys = ys, xs
    if xs:
        fig.add_scatter(
            x=xs, y=ys, mode="markers", name=t("a11y_suppressed", lang), customdata=notes,
            marker={"symbol": "asterisk-open", "size": 10, "color": "#222222",
                    "line": {"width": 1.5, "color": "#222222"}},
            hovertemplate="%{customdata}<extra></extra>", cliponaxis=False,
        )  # fmt: skip


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
