"""The language of the widgets the dashboard does not write itself: Plotly's chart toolbar,
dash-ag-grid's paging and filters, and Dash's date picker.

One place for the locale plumbing, so no page forgets it:

- `graph_config(lang)` is the `config` of every dcc.Graph: Plotly's locale (its toolbar
  tooltips, from the catalogues' `plotly_*` words; month and day names from Babel) given with
  the chart, no script to load.
- `grid_locale_text(lang)` is dash-ag-grid's `localeText`: its paging and filter words from
  the catalogues' `grid_*` words, and Babel's Belgian separators ("1 à 50 sur 1 419").
- `locale_data()` is a hidden element of the shell that carries, for the reader's language,
  Babel's month and day names and the catalogue's words for the date picker's buttons;
  dashboard/assets/locale.js reads it to give Dash's date picker a date-fns locale (Dash 4's
  picker takes its month and day names from `window.dateFns.locale`, nothing else) and to put
  the words on the picker's buttons, whose labels Dash writes in English.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from babel.dates import get_day_names, get_month_names
from babel.numbers import get_decimal_symbol, get_group_symbol
from dash import Input, Output, callback, html

from dashboard.i18n import language
from etl.base.i18n import locale, t

# ag-grid's own words (its localeText keys), in the catalogue as grid_<key>.
GRID_TEXTS = (
    "page", "of", "to", "more", "next", "last", "first", "previous", "pageSizeSelectorLabel",
    "noRowsToShow", "filterOoo", "equals", "notEqual", "contains", "notContains", "startsWith",
    "endsWith", "lessThan", "greaterThan", "inRange", "blank", "notBlank", "andCondition",
    "orCondition", "loadingOoo",
    # added for issue 18 (the rest of what ag-grid shows or reads out on our tables)
    "firstPage", "lastPage", "nextPage", "previousPage", "ariaPageSizeSelectorLabel",
    "lessThanOrEqual", "greaterThanOrEqual", "applyFilter", "resetFilter", "clearFilter",
    "cancelFilter", "ariaFilterInput", "ariaFilterValue", "ariaFilterFromValue",
    "ariaFilterToValue", "ariaFilteringOperator", "ariaSortableColumn", "ariaLabelColumnMenu",
    "ariaLabelColumnFilter", "ariaFilterMenuOpen", "ariaLabelTooltip", "ariaChecked",
    "ariaUnchecked", "ariaIndeterminate", "ariaDateFilterInput", "blanks", "before", "after",
    "invalidDate", "invalidNumber", "ariaMenuColumn", "ariaColumnFiltered",
)  # fmt: skip

# Plotly's toolbar and notices: its English text (the key of a Plotly locale dictionary) and
# the catalogue word for it (plotly_<key>).
PLOTLY_TEXTS = {
    "Autoscale": "autoscale",
    "Box Select": "box_select",
    "Compare data on hover": "compare_on_hover",
    "Download plot as a PNG": "download_png",
    "Download plot": "download",
    "Lasso Select": "lasso_select",
    "Pan": "pan",
    "Reset": "reset",
    "Reset axes": "reset_axes",
    "Reset view": "reset_view",
    "Reset views": "reset_view",
    "Show closest data on hover": "closest_on_hover",
    "Toggle Spike Lines": "spike_lines",
    "Toggle show closest data on hover": "closest_on_hover",
    "Zoom": "zoom",
    "Zoom in": "zoom_in",
    "Zoom out": "zoom_out",
    "Double-click to zoom back out": "double_click_zoom_out",
    "Double-click on legend to isolate one trace": "double_click_legend",
    "Taking snapshot - this may take a few seconds": "snapshot_taking",
    "Snapshot succeeded": "snapshot_done",
    "Sorry, there was a problem downloading your image!": "snapshot_failed",
    "Share chart...": "share",
}
# The labels Dash 4 writes in English on the date picker's (and number inputs') buttons, and
# their catalogue words (picker_<key>).
PICKER_TEXTS = {
    "Previous month": "previous_month",
    "Next month": "next_month",
    "Clear date": "clear",
    "Close calendar": "close",
    # dcc.Input's number steppers (the picker's year box is one)
    "Decrease value": "decrease",
    "Increase value": "increase",
}


def _days(width: str, lang: str) -> list[str]:
    """Babel's day names from Sunday (date-fns and Plotly count from Sunday, Babel from Monday)."""
    names = get_day_names(width, locale=locale(lang))
    return [names[(i + 6) % 7] for i in range(7)]


def _months(width: str, lang: str) -> list[str]:
    names = get_month_names(width, locale=locale(lang))
    return [names[i] for i in range(1, 13)]


# The only chart toolbar buttons (issue 18: 11 buttons per chart crowded the tab order); no
# "share to Plotly Cloud" either (it would send the chart off this site).
MODEBAR_BUTTONS = ("toImage", "resetScale2d")


def graph_config(lang: str, **extra) -> dict:
    """The one `config` of every dcc.Graph, in `lang`: Plotly's locale (toolbar words from the
    catalogues, month and day names from Babel), no Plotly logo, a toolbar of MODEBAR_BUTTONS
    only, shown on hover; `extra` adds or overrides keys."""
    lang = language(lang)
    dictionary = {english: t(f"plotly_{key}", lang) for english, key in PLOTLY_TEXTS.items()}
    separators = grid_separators(lang)
    fmt = {
        "days": _days("wide", lang),
        "shortDays": _days("abbreviated", lang),
        "months": _months("wide", lang),
        "shortMonths": _months("abbreviated", lang),
        "date": "%d/%m/%Y",
        "decimal": separators["decimalSeparator"],
        "thousands": separators["thousandSeparator"],
    }
    config = {
        "displaylogo": False,
        "locale": lang,
        "locales": {lang: {"dictionary": dictionary, "format": fmt}},
        "displayModeBar": "hover",
        "modeBarButtons": [list(MODEBAR_BUTTONS)],
    }
    config.update(extra)
    return config


def grid_separators(lang: str) -> dict[str, str]:
    """Babel's thousands and decimal separators of `lang` (ag-grid's localeText keys)."""
    loc = locale(language(lang))
    return {"thousandSeparator": get_group_symbol(loc), "decimalSeparator": get_decimal_symbol(loc)}


def grid_locale_text(lang: str) -> dict[str, str]:
    """dash-ag-grid's `localeText` in `lang`: its words from the catalogues, Babel's separators
    (ag-grid writes its paging counts with them)."""
    words = {key: t(f"grid_{key}", lang) for key in GRID_TEXTS}
    return {**words, **grid_separators(lang)}


def locale_payload(lang: str) -> dict:
    """What dashboard/assets/locale.js needs for the date picker in `lang`."""
    lang = language(lang)
    return {
        "lang": lang,
        "months": _months("wide", lang),
        "monthsShort": _months("abbreviated", lang),
        "days": _days("wide", lang),
        "daysShort": _days("short", lang),
        "daysAbbreviated": _days("abbreviated", lang),
        "daysNarrow": _days("narrow", lang),
        "words": {english: t(f"picker_{key}", lang) for english, key in PICKER_TEXTS.items()},
    }


def locale_data():
    """The shell's hidden element with the reader's locale for dashboard/assets/locale.js."""
    return html.Div(html.Span(id="app-locale-data"), id="app-locale", hidden=True)


@callback(Output("app-locale-data", "children"), Input("url", "search"))
def _locale_for_url(search):
    lang = dict(parse_qsl((search or "").lstrip("?"))).get("lang")
    return json.dumps(locale_payload(language(lang)))
