"""The page for an address the dashboard does not have, in the reader's language, with a way back.

Dash uses the module named `not_found_404` of the pages folder for any unknown path (its own
is an English "404 - Page not found"); the shell leaves it out of the navigation.
"""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard.ui import view_state
from etl.base.i18n import t

dash.register_page(__name__, path="/404", name="not_found", order=999)


def layout(**params):
    state = view_state(params)
    lang = state.lang
    return html.Div(
        [
            html.H2(t("not_found_title", lang), id="not-found-title"),
            html.P(t("not_found_text", lang)),
            dcc.Link(t("not_found_back", lang), href=state.href("/"), id="not-found-back"),
        ],
        id="not-found",
    )
