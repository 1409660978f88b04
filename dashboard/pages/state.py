"""State of play (home): the monthly state of play per scheme (SPEC §6), read from the mart."""

from __future__ import annotations

import dash
from dash import html

from dashboard.app import warehouse
from dashboard.i18n import language, t

dash.register_page(__name__, path="/", name="state_of_play", order=0)


def layout(lang: str | None = None, **_):
    lang = language(lang)
    wh = warehouse()
    if not wh.has_table("billing_lines"):
        return html.P(t("no_data", lang), id="state-empty")
    (stamp,) = wh.rows("select max(delivery_date)::varchar as as_of from billing_lines")
    return html.Div(
        [
            html.H2(t("state_of_play", lang)),
            html.P(f"{t('data_as_of', lang)} {stamp['as_of'] or '—'}", id="state-as-of"),
        ]
    )
