"""Methodology: every metric and compliance rule of the registry, with the configuration in force.

Generated like docs/methodology.md (etl/outputs/methodology.py) from the metric registry (sql/registry/)
and the configuration the dashboard runs with: labels, definitions, ratios and the decree's
sources in the reader's language (the registry holds them in the three languages), the settings
with their meaning from the catalogues, the key-letter value P table, and the release calendar
and revisions policy. The whole document (English, as docs/methodology.md), rendered for the
same configuration, follows for reference in the English view only.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import dcc, html

from dashboard.app import warehouse
from dashboard.ui import nested_headings, page_title, publication_note, view_state
from etl import figures
from etl.base.codes import FEE_CODES
from etl.base.config import DEFAULTS_PATH, Config
from etl.base.i18n import fmt_date, fmt_int, fmt_month, fmt_number, t
from etl.base.publish import config_fingerprint
from etl.base.registry import METRIC_GROUPS, load_registry
from etl.outputs.methodology import render, setting_meanings

dash.register_page(__name__, path="/methodology", name="methodology", order=95)

NUMBER_SETTINGS = ("interview_coefficient", "preparation_coefficient", "annual_budget_eur")
DATE_SETTINGS = ("programme_start", "structural_start")
# These tables hold words, not figures: read from the left, top-aligned.
TEXT_CELL = {"textAlign": "left", "verticalAlign": "top"}


_DOCUMENTS: dict[str, str] = {}


def _document(config: Config) -> str:
    """docs/methodology.md as rendered for `config` (cached per configuration)."""
    key = config_fingerprint(config)
    if key not in _DOCUMENTS:
        _DOCUMENTS[key] = render(config)
    return _DOCUMENTS[key]


def _table(header: list[str], rows: list[list], *, table_id: str, row_ids: list[str]):
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h, style=TEXT_CELL) for h in header])),
            html.Tbody(
                [
                    html.Tr([html.Td(c, style=TEXT_CELL) for c in cells], id=row_id)
                    for cells, row_id in zip(rows, row_ids, strict=True)
                ]
            ),
        ],
        id=table_id,
        className="figures methodology",
    )


def _metrics(lang: str):
    registry = load_registry()
    sections = [html.H3(t("methodology_metrics", lang))]
    header = [
        t("methodology_col_metric", lang),
        t("methodology_col_definition", lang),
        t("methodology_col_ratio", lang),
        t("methodology_col_source", lang),
    ]
    for group in METRIC_GROUPS:
        metrics = registry.group(group)
        if not metrics:
            continue
        rows = []
        for m in metrics:
            numerator, denominator = m.text("numerator", lang), m.text("denominator", lang)
            ratio = f"{numerator} / {denominator}" if numerator and denominator else ""
            rows.append(
                [
                    html.Strong(m.label(lang), id=f"methodology-label-{m.id}"),
                    m.text("definition", lang),
                    ratio,
                    html.Code(", ".join(f"{mart}.{m.column}" for mart in m.marts)),
                ]
            )
        sections += [
            html.H4(t(f"methodology_group_{group}", lang)),
            _table(
                header,
                rows,
                table_id=f"methodology-metrics-{group}",
                row_ids=[f"methodology-metric-{m.id}" for m in metrics],
            ),
        ]
    return html.Div(sections, className="section", id="methodology-metrics")


def _rules(lang: str):
    registry = load_registry()
    header = [
        t("methodology_col_rule", lang),
        t("methodology_col_definition", lang),
        t("methodology_col_severity", lang),
        t("methodology_col_decree", lang),
    ]
    rows = [
        [
            html.Span([html.Strong(r.id), " ", html.Span(r.label(lang))]),
            r.text("definition", lang),
            html.Span(
                t(f"methodology_severity_{r.severity}", lang),
                className=f"severity {r.severity}",
                id=f"methodology-severity-{r.id}",
            ),
            r.text("source", lang),
        ]
        for r in registry.rules
    ]
    return html.Div(
        [
            html.H3(t("methodology_rules", lang)),
            html.P(t("methodology_rules_intro", lang)),
            _table(
                header,
                rows,
                table_id="methodology-rules",
                row_ids=[f"methodology-rule-{r.id}" for r in registry.rules],
            ),
        ],
        className="section",
    )


def _setting_value(name: str, value, config: Config, lang: str) -> str:
    if name in NUMBER_SETTINGS:
        return fmt_number(getattr(config, name), lang, 2)
    if name in DATE_SETTINGS:
        return fmt_date(getattr(config, name), lang)
    if name.startswith("key_letter_value"):
        return fmt_number(float(value), lang, 4)
    return fmt_int(int(value), lang)


def _config(config: Config, lang: str):
    rows, ids = [], []
    values = iter(config.key_letter_values)
    for name, value, _meaning in setting_meanings(config):
        meaning_key = "key_letter_values" if name.startswith("key_letter_value") else name
        if name.startswith("key_letter_value"):
            kv = next(values)
            label = t(
                "methodology_setting_key_letter_value", lang, date=fmt_date(kv.valid_from, lang)
            )
            row_id = f"methodology-setting-key_letter_value-{kv.valid_from.isoformat()}"
        else:
            label = t(f"methodology_setting_{name}", lang)
            row_id = f"methodology-setting-{name}"
        rows.append(
            [
                html.Span([label, html.Br(), html.Code(name)]),
                html.Span(_setting_value(name, value, config, lang), id=row_id + "-value"),
                t(f"setting_meaning_{meaning_key}", lang),
            ]
        )
        ids.append(row_id)
    header = [
        t("methodology_col_setting", lang),
        t("methodology_col_value", lang),
        t("methodology_col_meaning", lang),
    ]
    return html.Div(
        [
            html.H3(t("methodology_config", lang)),
            _table(header, rows, table_id="methodology-config", row_ids=ids),
        ],
        className="section",
    )


def _fees(config: Config, lang: str):
    p_rows = [
        [fmt_date(kv.valid_from, lang), fmt_number(kv.value, lang, 4)]
        for kv in config.key_letter_values
    ]
    p_table = _table(
        [t("methodology_col_valid_from", lang), "P"],
        p_rows,
        table_id="methodology-p-table",
        row_ids=[f"methodology-p-{kv.valid_from.isoformat()}" for kv in config.key_letter_values],
    )
    coefficient = {
        "interview": config.interview_coefficient,
        "preparation": config.preparation_coefficient,
    }
    code_rows = [
        [
            code.cnk,
            getattr(code, f"label_{lang}"),
            f"P × {fmt_number(coefficient[code.coefficient], lang, 2)}",
        ]
        for code in FEE_CODES
    ]
    code_table = _table(
        [
            t("methodology_col_cnk", lang),
            t("methodology_col_billed", lang),
            t("methodology_col_fee", lang),
        ],
        code_rows,
        table_id="methodology-fee-codes",
        row_ids=[f"methodology-cnk-{code.cnk}" for code in FEE_CODES],
    )
    prep = fmt_number(config.preparation_coefficient, lang, 2)
    return html.Div(
        [
            html.H3(t("methodology_p_table", lang)),
            html.P(t("methodology_p_note", lang, prep=prep), id="methodology-p-note"),
            html.Div([p_table, code_table], className="methodology-fees"),
        ],
        className="section",
    )


def _full_document(config: Config):
    """docs/methodology.md, folded: English only, so offered in the English view only."""
    return html.Details(
        [
            html.Summary(t("methodology_full", "en")),
            dcc.Markdown(
                nested_headings(_document(config)),
                id="methodology-document",
                className="methodology-document",
            ),
        ],
        className="section",
    )


def _calendar(state, config: Config):
    """The release calendar and revisions policy (SPEC §6 provisional months, §15 vintages):
    when the state of play is produced, which months are still provisional and from which
    date each becomes final (figures.provisional_months), how revisions are shown."""
    lang = state.lang
    wh = warehouse()
    rows = figures.provisional_months(wh.reader(state.as_of)) if wh.snapshot() else []
    children = [
        html.H3(t("methodology_calendar", lang)),
        html.P(t("methodology_calendar_release", lang)),
        html.P(t("methodology_calendar_provisional", lang, days=config.provisional_days)),
    ]
    if rows:
        children.append(
            _table(
                [t("month", lang), t("data_col_final_from", lang)],
                [[fmt_month(r["month"], lang), fmt_date(r["final_from_date"], lang)] for r in rows],
                table_id="methodology-calendar",
                row_ids=[f"methodology-calendar-{r['month']}" for r in rows],
            )
        )
    children.append(html.P(t("methodology_calendar_revisions", lang)))
    return html.Div(children, className="section", id="methodology-calendar-section")


def layout(**params):
    state = view_state(params)
    lang = state.lang
    wh = warehouse()
    config = wh.config
    sources = ", ".join(
        "etl/base/config.toml" if Path(s) == DEFAULTS_PATH else Path(s).name for s in config.source
    )
    return html.Div(
        [
            page_title(t("methodology", lang), state, wh.default_as_of(), id_prefix="methodology"),
            publication_note(state, config.suppression_threshold, id_prefix="methodology"),
            html.P(t("methodology_intro", lang, source=sources or "etl/base/config.toml")),
            _metrics(lang),
            _rules(lang),
            _calendar(state, config),
            _config(config, lang),
            _fees(config, lang),
            _full_document(config) if lang == "en" else None,
        ]
    )
