"""Methodology: every metric and compliance rule of the registry, with the configuration in force.

Generated like docs/methodology.md (etl/outputs/methodology.py) from the metric registry (sql/registry/)
and the configuration the dashboard runs with: labels in the reader's language, definitions as
the registry writes them (English), the settings and the key-letter value P table. The whole
English document, rendered for the same configuration, follows for reference.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import dcc, html

from dashboard.app import warehouse
from dashboard.i18n import fmt_date, fmt_int, fmt_number, register, t
from dashboard.ui import page_title, publication_note, view_state
from etl.base.codes import FEE_CODES
from etl.base.config import DEFAULTS_PATH, Config
from etl.base.publish import config_fingerprint
from etl.base.registry import METRIC_GROUPS, load_registry
from etl.outputs.methodology import render, setting_meanings

dash.register_page(__name__, path="/methodology", name="methodology", order=95)

register(
    {
        "methodology": {"fr": "Méthodologie", "nl": "Methodologie", "en": "Methodology"},
        "methodology_intro": {
            "fr": "Chaque chiffre du tableau de bord suit les définitions ci-dessous, générées "
            "du registre des indicateurs (sql/registry/) et de la configuration en vigueur "
            "({source}).",
            "nl": "Elk cijfer van het dashboard volgt de definities hieronder, gegenereerd uit "
            "het register van indicatoren (sql/registry/) en de geldende configuratie "
            "({source}).",
            "en": "Every figure of the dashboard follows the definitions below, generated from "
            "the metric registry (sql/registry/) and the configuration in force ({source}).",
        },
        "methodology_english_note": {
            "fr": "Les libellés sont en français ; les définitions du registre n'existent qu'en "
            "anglais et sont reproduites telles quelles.",
            "nl": "De labels zijn in het Nederlands; de definities van het register bestaan "
            "enkel in het Engels en worden ongewijzigd weergegeven.",
            "en": "Labels and definitions as written in the registry.",
        },
        "methodology_group_state_of_play": {
            "fr": "État des lieux mensuel",
            "nl": "Maandelijkse stand van zaken",
            "en": "Monthly state of play",
        },
        "methodology_group_reduction_split": {
            "fr": "Paliers de diminution par nombre de gélules",
            "nl": "Afbouwstappen per aantal capsules",
            "en": "Reduction steps by capsule count",
        },
        "methodology_group_cohorts": {
            "fr": "Résultats par cohorte",
            "nl": "Resultaten per cohorte",
            "en": "Cohort outcomes",
        },
        "methodology_group_revisions": {
            "fr": "Révisions : comment les mois récents bougent encore",
            "nl": "Herzieningen: hoe recente maanden nog bewegen",
            "en": "Revisions: how recent months still move",
        },
        "methodology_metrics": {"fr": "Indicateurs", "nl": "Indicatoren", "en": "Metrics"},
        "methodology_col_metric": {"fr": "Indicateur", "nl": "Indicator", "en": "Metric"},
        "methodology_col_definition": {
            "fr": "Définition (anglais)",
            "nl": "Definitie (Engels)",
            "en": "Definition",
        },
        "methodology_col_ratio": {
            "fr": "Numérateur / dénominateur",
            "nl": "Teller / noemer",
            "en": "Numerator / denominator",
        },
        "methodology_col_source": {
            "fr": "Table / colonne",
            "nl": "Tabel / kolom",
            "en": "Table / column",
        },
        "methodology_col_rule": {"fr": "Règle", "nl": "Regel", "en": "Rule"},
        "methodology_col_severity": {"fr": "Gravité", "nl": "Ernst", "en": "Severity"},
        "methodology_col_decree": {
            "fr": "Dans l'arrêté",
            "nl": "In het besluit",
            "en": "In the decree",
        },
        "methodology_severity_error": {"fr": "erreur", "nl": "fout", "en": "error"},
        "methodology_severity_warning": {
            "fr": "avertissement",
            "nl": "waarschuwing",
            "en": "warning",
        },
        "methodology_rules": {
            "fr": "Règles de conformité à l'arrêté",
            "nl": "Regels van conformiteit met het besluit",
            "en": "Compliance rules of the decree",
        },
        "methodology_rules_intro": {
            "fr": "Chaque règle signale des événements (délivrés au plus tard à la date de "
            "situation) ; les comptes sont des nombres d'événements signalés.",
            "nl": "Elke regel signaleert gebeurtenissen (afgeleverd uiterlijk op de standdatum); "
            "de aantallen zijn aantallen gesignaleerde gebeurtenissen.",
            "en": "Each rule flags events (delivered on or before the as-of date); the counts "
            "are numbers of flagged events.",
        },
        "methodology_config": {
            "fr": "Configuration en vigueur",
            "nl": "Geldende configuratie",
            "en": "Configuration in force",
        },
        "methodology_col_setting": {"fr": "Paramètre", "nl": "Parameter", "en": "Setting"},
        "methodology_col_value": {"fr": "Valeur", "nl": "Waarde", "en": "Value"},
        "methodology_col_meaning": {
            "fr": "Signification (anglais)",
            "nl": "Betekenis (Engels)",
            "en": "Meaning",
        },
        "methodology_setting_grace_days": {
            "fr": "Jours de grâce avant l'arrêt",
            "nl": "Respijtdagen vóór stopzetting",
            "en": "Grace days before a stop",
        },
        "methodology_setting_stabilisation_days": {
            "fr": "Jours couverts par un palier de stabilisation",
            "nl": "Dagen gedekt door een stabilisatiestap",
            "en": "Days covered by a stabilisation step",
        },
        "methodology_setting_max_programme_days": {
            "fr": "Durée maximale d'un programme (jours)",
            "nl": "Maximale duur van een programma (dagen)",
            "en": "Longest programme (days)",
        },
        "methodology_setting_early_delivery_working_days": {
            "fr": "Délivrance anticipée permise (jours ouvrables)",
            "nl": "Toegelaten vroege aflevering (werkdagen)",
            "en": "Early delivery allowed (working days)",
        },
        "methodology_setting_programme_start": {
            "fr": "Début du projet pilote",
            "nl": "Start van het pilootproject",
            "en": "Start of the pilot",
        },
        "methodology_setting_structural_start": {
            "fr": "Début de la phase structurelle",
            "nl": "Start van de structurele fase",
            "en": "Start of the structural phase",
        },
        "methodology_setting_provisional_days": {
            "fr": "Jours après la fin du mois avant qu'il soit définitif",
            "nl": "Dagen na het einde van de maand tot ze definitief is",
            "en": "Days after a month's end until it is final",
        },
        "methodology_setting_suppression_threshold": {
            "fr": "Seuil de secret statistique",
            "nl": "Drempel voor statistische geheimhouding",
            "en": "Disclosure control threshold",
        },
        "methodology_setting_interview_coefficient": {
            "fr": "Coefficient des entretiens",
            "nl": "Coëfficiënt van de gesprekken",
            "en": "Interview coefficient",
        },
        "methodology_setting_preparation_coefficient": {
            "fr": "Coefficient des préparations (paliers)",
            "nl": "Coëfficiënt van de bereidingen (stappen)",
            "en": "Preparation coefficient (steps)",
        },
        "methodology_setting_key_letter_value": {
            "fr": "Valeur de la lettre-clé P à partir du {date}",
            "nl": "Waarde van de sleutelletter P vanaf {date}",
            "en": "Key-letter value P from {date}",
        },
        "methodology_p_table": {
            "fr": "Valeur de la lettre-clé P et honoraires",
            "nl": "Waarde van de sleutelletter P en honoraria",
            "en": "Key-letter value P and fees",
        },
        "methodology_col_valid_from": {
            "fr": "Valable à partir du",
            "nl": "Geldig vanaf",
            "en": "Valid from",
        },
        "methodology_p_note": {
            "fr": "Honoraire d'un événement = arrondi(P valable à la date de délivrance × "
            "coefficient, 2). Aucune valeur officielle de P pour 2025–2026 n'a été trouvée : les "
            "honoraires sont estimés ; configurez la valeur officielle. L'article 6/3 §2 de "
            "l'arrêté indique 7,8 pour les préparations, son annexe 7,08 : le coefficient en "
            "vigueur est {prep}.",
            "nl": "Honorarium van een gebeurtenis = afgerond(P geldig op de afleverdatum × "
            "coëfficiënt, 2). Er werd geen officiële waarde van P voor 2025–2026 gevonden: de "
            "honoraria zijn geschat; stel de officiële waarde in. Artikel 6/3 §2 van het besluit "
            "vermeldt 7,8 voor de bereidingen, de bijlage 7,08: de geldende coëfficiënt is "
            "{prep}.",
            "en": "Fee of one event = round(P valid on the delivery date × coefficient, 2). No "
            "official 2025–2026 value of P was found: fees are estimated; set the official "
            "value. The decree's article 6/3 §2 says 7.8 for the preparations while its annex "
            "says 7.08: the coefficient in force is {prep}.",
        },
        "methodology_col_cnk": {"fr": "CNK", "nl": "CNK", "en": "CNK"},
        "methodology_col_billed": {
            "fr": "Ce qui est facturé",
            "nl": "Wat gefactureerd wordt",
            "en": "What is billed",
        },
        "methodology_col_fee": {"fr": "Honoraire", "nl": "Honorarium", "en": "Fee"},
        "methodology_full": {
            "fr": "Le document complet (anglais), pour cette configuration",
            "nl": "Het volledige document (Engels), voor deze configuratie",
            "en": "The full document, for this configuration",
        },
    }
)

NUMBER_SETTINGS = ("interview_coefficient", "preparation_coefficient")
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
            ratio = f"{m.numerator} / {m.denominator}" if m.numerator and m.denominator else ""
            rows.append(
                [
                    html.Strong(m.label(lang), id=f"methodology-label-{m.id}"),
                    m.definition,
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
            r.definition,
            html.Span(
                t(f"methodology_severity_{r.severity}", lang),
                className=f"severity {r.severity}",
                id=f"methodology-severity-{r.id}",
            ),
            r.source,
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
    for name, value, meaning in setting_meanings(config):
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
                meaning,
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
            html.P(t("methodology_english_note", lang), className="note"),
            _metrics(lang),
            _rules(lang),
            _config(config, lang),
            _fees(config, lang),
            html.Details(
                [
                    html.Summary(t("methodology_full", lang)),
                    dcc.Markdown(
                        _document(config),
                        id="methodology-document",
                        className="methodology-document",
                    ),
                ],
                className="section",
            ),
        ]
    )
