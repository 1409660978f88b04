"""The Dash app shell: navigation, language switch, view and as-of controls, page container.

Everything a reader chooses lives in the URL (see dashboard/ui.py), so the shell's controls
only rewrite the query string; pages render from it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import flask
from dash import Input, Output, State, dcc, html

from dashboard import auth
from dashboard.data import Warehouse
from dashboard.i18n import language, picker_date_format
from dashboard.locale import locale_data
from dashboard.staleness import stale_banner
from dashboard.ui import data_range, parse_date, query_params, search_with, view_state
from etl.base.config import Config, load_config
from etl.base.i18n import DEFAULT_LANGUAGE, LANGUAGES, t

PAGES_DIR = Path(__file__).parent / "pages"
ASSETS_DIR = Path(__file__).parent / "assets"
log = logging.getLogger(__name__)


def warehouse() -> Warehouse:
    """The warehouse of the app serving the current request (Flask's current app: unlike
    dash.get_app, right when several apps live in one process, as in the tests)."""
    return flask.current_app.config["BENZO_WAREHOUSE"]


def create_app(
    db_path: str | Path, config: Config | None = None, *, mode: str | None = None
) -> dash.Dash:
    """A Dash app reading the warehouse at `db_path` (a factory, so tests build their own).

    The app reads the warehouse's published snapshot (etl/base/publish.py); if there is none yet or
    it is out of date, one is published now (skipped with a log line while a load holds the
    warehouse: the load publishes when it finishes). Access control (dashboard/auth/) comes
    from the environment; `mode` development|production (None: $BENZO_MONITOR_ENV, else
    development). Raises auth.AuthError (a plain message) when it cannot be set up.
    """
    from etl.base.publish import ensure_published
    from etl.base.warehouse import WarehouseError

    security = auth.configure(db_path, mode)
    config = config or load_config()
    try:
        ensure_published(db_path, config)
    except WarehouseError as exc:
        log.warning("no new snapshot published: %s", exc)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PAGES_DIR),
        assets_folder=str(ASSETS_DIR),
        title="benzo-monitor",
        suppress_callback_exceptions=True,
    )
    app.server.config["BENZO_WAREHOUSE"] = Warehouse(db_path, config)
    auth.install(app, security)
    language_on_html(app)
    app.layout = html.Div(
        [
            dcc.Location(id="url", refresh="callback-nav"),
            html.Header(
                [
                    html.Div(id="app-title", className="app-title"),
                    html.Nav(id="app-nav", className="app-nav"),
                    html.Div(
                        [
                            html.Label(
                                id="app-view-label", htmlFor="app-view", className="visually-hidden"
                            ),
                            dcc.RadioItems(
                                id="app-view",
                                options=[],
                                inline=True,
                                className="app-view",
                            ),
                            html.Label(
                                [
                                    html.Span(id="app-as-of-label"),
                                    dcc.DatePickerSingle(
                                        id="app-as-of",
                                        display_format="YYYY-MM-DD",
                                        clearable=True,
                                        first_day_of_week=1,
                                    ),
                                ],
                                className="app-as-of",
                            ),
                            html.Nav(id="app-language", className="app-language"),
                            html.Div(id="app-user", className="app-user"),
                        ],
                        className="app-controls",
                    ),
                ],
                className="app-header",
            ),
            html.Div(id="app-stale"),  # dashboard/staleness.py (issue 19, item 9)
            html.Main(dash.page_container, className="app-main"),
            locale_data(),  # the date picker's language (dashboard/locale.py)
        ],
        className="app",
    )

    @app.callback(
        Output("app-title", "children"),
        Output("app-nav", "children"),
        Output("app-language", "children"),
        Output("app-language", "aria-label"),
        Output("app-view-label", "children"),
        Output("app-view", "options"),
        Output("app-view", "value"),
        Output("app-as-of-label", "children"),
        Output("app-as-of", "date"),
        Output("app-as-of", "placeholder"),
        Output("app-user", "children"),
        Input("url", "search"),
        Input("url", "pathname"),
    )
    def shell(search, pathname):
        state = view_state(query_params(search))
        lang = state.lang
        links = [
            dcc.Link(
                t(page["name"], lang),
                href=state.href(page["relative_path"]),
                id=f"nav-{page['name']}",
                className="active" if page["relative_path"] == pathname else None,
            )
            for page in sorted(dash.page_registry.values(), key=lambda p: p.get("order") or 0)
            if page["module"].split(".")[-1] != "not_found_404"  # not a page to go to
        ]
        # A reviewer (dashboard/auth/guard.py) is offered the publication view only.
        views = [{"label": t(f"view_{v}", lang), "value": v} for v in auth.allowed_views()]
        return (
            t("app_title", lang),
            links,
            language_links(lang, search, pathname),
            t("a11y_language", lang),
            t("a11y_view", lang),
            views,
            state.view,
            t("as_of", lang),
            state.as_of.isoformat() if state.as_of else None,
            t("as_of_default", lang),
            auth.user_badge(lang),
        )

    @app.callback(Output("app-stale", "children"), Input("url", "search"), Input("url", "pathname"))
    def stale(search, pathname):
        # A banner while the warehouse is newer than the snapshot shown (issue 19, item 9).
        return stale_banner(warehouse(), view_state(query_params(search)).lang)

    @app.callback(
        Output("app-as-of", "min_date_allowed"),
        Output("app-as-of", "max_date_allowed"),
        Output("app-as-of", "display_format"),
        Output("app-as-of", "initial_visible_month"),
        Input("url", "search"),
    )
    def as_of_picker(search):
        """The as-of picker offers the data's dates only (first to latest delivery) and shows
        them the reader's way (dashboard/i18n.py picker_date_format)."""
        state = view_state(query_params(search))
        first, latest = data_range()
        shown = state.as_of or latest
        return (
            first.isoformat() if first else None,
            latest.isoformat() if latest else None,
            picker_date_format(state.lang),
            shown.isoformat() if shown else None,
        )

    @app.callback(
        Output("url", "search"),
        Input("app-view", "value"),
        Input("app-as-of", "date"),
        State("url", "search"),
        prevent_initial_call=True,
    )
    def controls_to_url(view, as_of, search):
        state = view_state(query_params(search))
        as_of_date = parse_date(as_of)
        if not view or (view, as_of_date) == (state.view, state.as_of):
            return dash.no_update
        return search_with(
            search,
            view=None if view == "analyst" else view,
            as_of=as_of_date.isoformat() if as_of_date else None,
        )

    return app


# --- accessibility (issue 18): the page's language, the language links ------------------------


def language_on_html(app: dash.Dash) -> None:
    """Serve the page with the URL's language on <html lang> (screen readers choose their voice
    from it); assets/a11y.js keeps it in step when the reader navigates inside the app."""
    base = app.interpolate_index

    def interpolate_index(**kwargs):
        page = base(**kwargs)
        lang = language(flask.request.args.get("lang")) if flask.has_request_context() else None
        return page.replace("<html>", f'<html lang="{lang or DEFAULT_LANGUAGE}">', 1)

    app.interpolate_index = interpolate_index


def language_links(lang: str, search: str | None, pathname: str | None) -> list:
    """One link per language to this page, with its filters, in that language; each named in
    its own language (a link, not a menu: reachable on a phone, one tab stop each)."""
    links = []
    for code in LANGUAGES:
        link = dcc.Link(
            code.upper(),
            href=(pathname or "/") + search_with(search, lang=code),
            id=f"app-language-{code}",
            title=t(f"a11y_language_{code}", code),
            className="active" if code == lang else None,
        )
        links.append(html.Span(link, lang=code))
    return links
