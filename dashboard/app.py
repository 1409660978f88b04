"""The Dash app shell: navigation, language switch and the page container (pages/ hold the rest)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode

import dash
from dash import Input, Output, State, dcc, html

from dashboard.data import Warehouse
from dashboard.i18n import LANGUAGES, language, t
from etl.config import Config

PAGES_DIR = Path(__file__).parent / "pages"


def warehouse() -> Warehouse:
    """The warehouse of the app serving the current request."""
    return dash.get_app().server.config["BENZO_WAREHOUSE"]


def create_app(db_path: str | Path, config: Config | None = None) -> dash.Dash:
    """A Dash app reading the warehouse at `db_path` (a factory, so tests build their own)."""
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES_DIR),
        title="benzo-monitor",
        suppress_callback_exceptions=True,
    )
    app.server.config["BENZO_WAREHOUSE"] = Warehouse(db_path, config)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                [
                    html.H1(id="app-title", style={"fontSize": "1.3rem", "margin": "0"}),
                    html.Nav(id="app-nav", style={"display": "flex", "gap": "1rem"}),
                    dcc.Dropdown(
                        id="app-language",
                        options=[{"label": code.upper(), "value": code} for code in LANGUAGES],
                        clearable=False,
                        style={"width": "5rem"},
                    ),
                ],
                style={
                    "display": "flex",
                    "gap": "1.5rem",
                    "alignItems": "center",
                    "padding": "0.5rem 1rem",
                    "borderBottom": "1px solid #ccc",
                },
            ),  # fmt: skip
            html.Main(dash.page_container, style={"padding": "1rem"}),
        ],
        style={"fontFamily": "system-ui, sans-serif"},
    )

    @app.callback(
        Output("app-title", "children"),
        Output("app-nav", "children"),
        Output("app-language", "value"),
        Input("url", "search"),
    )
    def shell(search):
        lang = language((parse_qs((search or "").lstrip("?")).get("lang") or [None])[0])
        links = [
            dcc.Link(t(page["name"], lang), href=f"{page['relative_path']}?lang={lang}")
            for page in dash.page_registry.values()
        ]
        return t("app_title", lang), links, lang

    @app.callback(
        Output("url", "search"),
        Input("app-language", "value"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def switch_language(lang, search):
        params = {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items()}
        if params.get("lang") == lang:
            return dash.no_update
        params["lang"] = lang
        return "?" + urlencode(params)

    return app
