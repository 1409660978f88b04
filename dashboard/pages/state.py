"""State of play (home): the monthly state of play per scheme (SPEC §6), read from the mart."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard.app import warehouse
from dashboard.i18n import fmt_int, language, t
from etl.registry import load_registry

dash.register_page(__name__, path="/", name="state_of_play", order=0)

SCHEMES = ("5", "7", "10", "total")
SCHEME_WORDS = {
    "5": {"fr": "5 paliers", "nl": "5 stappen", "en": "5 steps"},
    "7": {"fr": "7 paliers", "nl": "7 stappen", "en": "7 steps"},
    "10": {"fr": "10 paliers", "nl": "10 stappen", "en": "10 steps"},
    "total": {"fr": "Total", "nl": "Totaal", "en": "Total"},
}


def layout(lang: str | None = None, month: str | None = None, **_):
    lang = language(lang)
    wh = warehouse()
    if not wh.has_table("billing_lines") or not wh.rows("select 1 from billing_lines limit 1"):
        return html.P(t("no_data", lang), id="state-empty")
    # One pass over the mart (all months are a few hundred rows): computing it is the cost.
    every = wh.rows("select * from mart_state_of_play order by month desc, scheme_order")
    months = list(dict.fromkeys(r["month"] for r in every))
    month = month if month in months else months[0]
    rows = {r["scheme"]: r for r in every if r["month"] == month}
    metrics = load_registry().group("state_of_play")
    header = html.Tr([html.Th("")] + [html.Th(SCHEME_WORDS[s][lang]) for s in SCHEMES])
    body = []
    for metric in metrics:
        if metric.column not in rows[SCHEMES[0]]:
            continue
        cells = []
        for scheme in SCHEMES:
            value = rows[scheme][metric.column]
            if metric.disclosure == "amount":
                cells.append(html.Td(f"{float(value):,.2f} €" if value is not None else "—"))
            else:
                cells.append(html.Td(fmt_int(value, lang)))
        body.append(html.Tr([html.Th(metric.label(lang), style={"textAlign": "left"}), *cells]))
    first = rows[SCHEMES[0]]
    return html.Div(
        [
            html.H2(f"{t('state_of_play', lang)} — {month}"),
            html.P(
                f"{t('data_as_of', lang)} {first['as_of_date']}"
                + (f" · {t('provisional', lang)}" if first["is_provisional"] else ""),
                id="state-as-of",
            ),
            html.Nav(
                [
                    dcc.Link(m, href=f"/?lang={lang}&month={m}", style={"marginRight": "0.6rem"})
                    for m in months[:12]
                ],
                id="state-months",
            ),  # fmt: skip
            html.Table(
                [html.Thead(header), html.Tbody(body)],
                id="state-table",
                style={"borderCollapse": "collapse", "marginTop": "1rem"},
            ),
        ]
    )
