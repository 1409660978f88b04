"""Marts turned into the documents every consumer shows: the one place that reads figures.

The command line (`report`, `cohorts`, `compliance`), the monthly report pack and the dashboard's
pages all read their figures here, so a figure is selected, ordered and put through disclosure
control (SPEC §9) the same way wherever it is shown:

- the monthly state of play (SPEC §6): per scheme, the total and the unassigned events, with the
  10/20/30-capsule split (`state_of_play`, `state_of_play_table`, `state_of_play_rows`);
- the cohort outcomes (§7, `cohorts`), the compliance counts per rule and the findings (§8,
  `compliance`, `compliance_counts`, `compliance_findings`), each finding's detail written out
  in the reader's language (`finding_detail`);
- the fees per CNK over a period with their total (§2, `fees_by_cnk`);
- and what the pages and the pack read besides (outcomes, regions, the load ledger, rejects,
  unmatched corrections, revisions, billing delay).

Every function takes a reader: any object with `rows(sql, params=()) -> list[dict]`. In the SQL,
a mart is written as a placeholder in braces, `{mart_state_of_play}`; the reader decides where
the mart is read from. `ConnectionReader` reads them on a plain DuckDB connection (bare names:
the connection's search path decides, see etl.outputs.report.open_for_export); the dashboard's
reader (dashboard/data.py) reads the published snapshot and caches the answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import duckdb

from etl.base.codes import FEE_CODES
from etl.base.disclosure import Disclosure, Line, csv_note, csv_note_header
from etl.base.i18n import EMPTY, fmt_date, fmt_int, t
from etl.base.registry import Metric, load_registry
from etl.base.warehouse import dict_rows

CONTRACT_GROUP = "state_of_play"  # SPEC §6 metrics: the keys of each scheme in the JSON
SPLIT_GROUP = "reduction_split"  # the 10/20/30-capsule split, an extra key
SPLIT_KEY = "reduction_steps_by_capsules"
SCHEMES_AND_TOTAL = ("5", "7", "10", "total")
UNASSIGNED_KEYS = (
    "reduction_steps_delivered",
    "stabilisation_steps_delivered",
    "follow_up_interviews",
    "fees_estimated_eur",
)
# SPEC §10: the compliance counts include R16-R18 (SPEC §14), which need BZRA deliveries; when
# the warehouse holds none, their counts are null ("not observable"), never 0.
NOT_OBSERVABLE_RULES = ("R16", "R17", "R18")
# SPEC §9: the disclosure rules each document applies (the state of play: all of them).
COHORT_RULES = ("primary", "complementary")
COMPLIANCE_RULES = ("primary",)


def holds_bzra_deliveries(reader: Reader) -> bool:
    """Does the warehouse hold a BZRA delivery on or before the as-of date (SPEC §14)?"""
    (row,) = reader.rows("select n_deliveries from {mart_bzra_window}")
    return bool(row["n_deliveries"])


FINDING_KEYS = (
    "rule",
    "severity",
    "programme_id",
    "patient_id",
    "pharmacy_id",
    "delivery_date",
    "cnk",
    "kind",
    "detail",
)


# --- readers ------------------------------------------------------------------------------


class Reader(Protocol):
    """Where figures are read from: rows of SQL in which marts are written `{mart_x}`."""

    def rows(self, sql: str, params: Sequence = ()) -> list[dict]:
        """The rows of `sql` as dicts keyed by column name."""
        ...


class _MartNames(dict):
    """str.format_map mapping: {mart_x} -> the name to read it from (schema-qualified or not)."""

    def __init__(self, schema: str | None):
        super().__init__()
        self.schema = schema

    def __missing__(self, key: str) -> str:
        if not key.startswith("mart_") or not key.replace("_", "").isalnum():
            raise KeyError(key)
        return f"{self.schema}.{key}" if self.schema else key


def resolve_marts(sql: str, schema: str | None = None) -> str:
    """`sql` with each `{mart_x}` placeholder replaced by `schema.mart_x` (None: `mart_x`)."""
    return sql.format_map(_MartNames(schema))


class ConnectionReader:
    """A reader on a DuckDB connection or cursor: marts by their bare names, so that the
    connection's search path (the published snapshot, else the views) decides."""

    def __init__(self, con: duckdb.DuckDBPyConnection):
        self.con = con

    def rows(self, sql: str, params: Sequence = ()) -> list[dict]:
        """The rows of `sql` (placeholders resolved) on the connection."""
        return dict_rows(self.con, resolve_marts(sql), params)


def as_of_date(reader: Reader) -> dt.date:
    """The as-of date the views compute for (the reader's session settings)."""
    (row,) = reader.rows("select as_of_date from stg_settings")
    return row["as_of_date"]


# --- the monthly state of play (SPEC §6) --------------------------------------------------


def state_of_play_rows(reader: Reader, up_to: str | None = None) -> list[dict]:
    """The rows of mart_state_of_play by month and scheme order, up to month `up_to`
    ('YYYY-MM', None: every month)."""
    if up_to is None:
        return reader.rows("select * from {mart_state_of_play} order by month, scheme_order")
    return reader.rows(
        "select * from {mart_state_of_play} where month <= ? order by month, scheme_order",
        [up_to],
    )


def state_of_play(
    reader: Reader, month: str, disclosure: Disclosure, rows: list[dict] | None = None
) -> dict:
    """SPEC §6 for `month` (YYYY-MM): the JSON document of `benzo-monitor report`.

    {"month", "as_of", "provisional", "schemes": {"5", "7", "10", "total"}, "unassigned"}.
    The reader's month spine must reach `month` (etl.outputs.report.set_report_month).
    `rows`: the month's rows of mart_state_of_play when the caller has read them already, in
    scheme order.
    """
    registry = load_registry()
    contract = registry.group(CONTRACT_GROUP)
    split = registry.group(SPLIT_GROUP)
    if rows is None:
        rows = reader.rows(
            "select * from {mart_state_of_play} where month = ? order by scheme_order", [month]
        )
    (unassigned,) = reader.rows("select * from {mart_unassigned_by_month} where month = ?", [month])
    exact = {}
    for row in rows:
        figures = {m.id: row[m.column] for m in contract}
        figures[SPLIT_KEY] = {str(m.capsules): row[m.column] for m in split}
        exact[row["scheme"]] = figures
    exact["unassigned"] = {key: unassigned[registry.metric(key).column] for key in UNASSIGNED_KEYS}
    exact["unassigned"][SPLIT_KEY] = {str(m.capsules): unassigned[m.column] for m in split}
    # SPEC §9: the whole policy at once (the schemes' totals, the split, stocks and fees).
    shown = disclosure.state_of_play(
        exact,
        counts=[m.id for m in contract if m.disclosure == "count"],
        amounts=[m.id for m in contract if m.disclosure == "amount"],
    )
    unassigned_figures = shown.pop("unassigned")
    return {
        "month": month,
        "as_of": rows[0]["as_of_date"].isoformat(),
        "provisional": bool(rows[0]["is_provisional"]),
        "schemes": shown,
        "unassigned": unassigned_figures,
        **disclosure.header(),
    }


def state_of_play_table(doc: dict, missing=None) -> list[tuple[Metric, list]]:
    """The §6 table of a `state_of_play` document: (metric, [5, 7, 10, total, unassigned]) per
    metric, then per capsule split; `missing` where the unassigned events have no such figure
    (patients, programmes)."""
    registry = load_registry()
    table = []
    for metric in [*registry.group(CONTRACT_GROUP), *registry.group(SPLIT_GROUP)]:
        cells = []
        for figures in [*(doc["schemes"][s] for s in SCHEMES_AND_TOTAL), doc["unassigned"]]:
            if metric.capsules:
                cells.append(figures[SPLIT_KEY][str(metric.capsules)])
            else:
                cells.append(figures.get(metric.id, missing))
        table.append((metric, cells))
    return table


def state_of_play_revisions(reader: Reader) -> list[dict]:
    """mart_state_of_play_revisions by month and scheme order."""
    return reader.rows(
        "select * from {mart_state_of_play_revisions} order by month_start_date, scheme_order"
    )


def billing_delay(reader: Reader) -> list[dict]:
    """mart_state_of_play_billing_delay, by number of billing months (1: M, 2: M+1, ...)."""
    return reader.rows("select * from {mart_state_of_play_billing_delay} order by n_billing_months")


def report_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per scheme (5, 7, 10, total) and one for unassigned events; the §6 metrics and
    the 10/20/30-capsule split as columns (empty where a figure does not apply); the flag
    `provisional` written true or false, as in the JSON; when the document was suppressed, a
    last column `disclosure` (SPEC §9: the threshold and the rules applied, the same on every
    row, e.g. `threshold=5;primary;complementary;rounded_stocks;fees`)."""
    registry = load_registry()
    contract = [m.id for m in registry.group(CONTRACT_GROUP)]
    split = registry.group(SPLIT_GROUP)
    header = [
        "month",
        "as_of",
        "provisional",
        "scheme",
        *contract,
        *(m.id for m in split),
        *csv_note_header(doc),
    ]
    note = csv_note(doc)
    amounts = {m.id for m in registry.group(CONTRACT_GROUP) if m.disclosure == "amount"}
    provisional = "true" if doc["provisional"] else "false"
    rows = []
    for scheme, figures in [*doc["schemes"].items(), ("unassigned", doc["unassigned"])]:
        cells = [
            f"{figures[key]:.2f}"
            if key in amounts and figures.get(key) is not None
            else figures.get(key)
            for key in contract
        ]
        rows.append(
            [doc["month"], doc["as_of"], provisional, scheme, *cells]
            + [figures[SPLIT_KEY][str(m.capsules)] for m in split]
            + note
        )
    return header, rows


# --- cohorts and outcomes (SPEC §7) -------------------------------------------------------


def cohorts(reader: Reader, disclosure: Disclosure) -> dict:
    """SPEC §7: the JSON document of `benzo-monitor cohorts`, {"as_of", "cohorts": [...]}
    (and "disclosure" when suppressed) sorted by initiation month, then scheme 5, 7, 10. Each row goes through
    disclosure control as a whole (programmes = completed + stopped + in progress, SPEC §9)."""
    metrics = load_registry().group("cohorts")
    rates = [m for m in metrics if m.disclosure == "rate"]
    rows = reader.rows("select * from {mart_cohorts} order by start_month_date, scheme")
    cohort_docs = []
    for row in rows:
        shown = disclosure.cohort(row, rates)
        cohort_docs.append(
            {
                "initiation_month": row["initiation_month"],
                "scheme": str(row["scheme"]),
                **{
                    m.id: shown[m.id] if m.id in shown else disclosure.metric(m, row)
                    for m in metrics
                },
            }
        )
    return {
        "as_of": as_of_date(reader).isoformat(),
        "cohorts": cohort_docs,
        **disclosure.header(COHORT_RULES),
    }


def cohorts_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per cohort (initiation month x scheme), after an as_of column; last, the
    `disclosure` column when suppressed (SPEC §9, as in `report_csv_rows`)."""
    keys = ["initiation_month", "scheme", *(m.id for m in load_registry().group("cohorts"))]
    note = csv_note(doc)
    return ["as_of", *keys, *csv_note_header(doc)], [
        [doc["as_of"], *(c[k] for k in keys), *note] for c in doc["cohorts"]
    ]


def cohort_rows(reader: Reader) -> list[dict]:
    """mart_cohorts by start month and scheme, each row with `row_id` (YYYY-MM-scheme), the
    share still in progress and whether most of the cohort still is."""
    return reader.rows(
        "select *, strftime(start_month_date, '%Y-%m') || '-' || scheme as row_id, "
        "round(in_progress / programmes, 4)::double as in_progress_share, "
        "in_progress * 2 > programmes as is_mostly_in_progress "
        "from {mart_cohorts} order by start_month_date, scheme"
    )


def programme_steps(reader: Reader, scheme: str) -> list[dict]:
    """mart_programme_steps of one scheme ('5', '7' or '10'), by step number."""
    return reader.rows(
        "select * from {mart_programme_steps} where scheme = ? order by step_number", [int(scheme)]
    )


def time_to_completion(reader: Reader) -> list[dict]:
    """mart_time_to_completion by scheme and bin."""
    return reader.rows("select * from {mart_time_to_completion} order by scheme, days_from")


def time_to_completion_summary(reader: Reader) -> list[dict]:
    """mart_time_to_completion_summary by scheme."""
    return reader.rows("select * from {mart_time_to_completion_summary} order by scheme")


def completion_by_days_since_start(reader: Reader) -> list[dict]:
    """mart_completion_by_days_since_start by scheme and day."""
    return reader.rows(
        "select * from {mart_completion_by_days_since_start} order by scheme, days_since_start"
    )


# --- after the programme: BZRA-free at N days (SPEC §14) ---------------------------------

BZRA_FREE_DAYS = (90, 180, 365)
# mart_bzra_free's programmes groups: completed programmes, and all closed ones.
BZRA_FREE_GROUPS = ("completed", "closed")


def bzra_free_years(reader: Reader) -> list[int]:
    """The start years of the closed programmes mart_bzra_free counts, in order."""
    rows = reader.rows("select distinct start_year from {mart_bzra_free} order by start_year")
    return [row["start_year"] for row in rows]


def bzra_free(reader: Reader, disclosure: Disclosure, start_year: int | None = None) -> dict:
    """BZRA-free at 90, 180 and 365 days after the programme (SPEC §14, mart_bzra_free), per
    scheme and programmes group (completed; all closed), for programmes started in
    `start_year` (None: every year), as published by `disclosure`.

    Each row: scheme, programmes_group, days, `observable` (the denominator: programmes
    observable at N days), `bzra_free` (of which BZRA-free) and `bzra_free_rate`; count and
    rate null when none is observable ("not observable", never 0). Published: the BZRA-free
    and relapsed programmes add up to the observable ones (a line of SPEC §9.2), the rate by
    rule 1. `observable` in the document: whether any programme is observable at all."""
    rows = reader.rows(
        """
        select
            scheme::varchar as scheme,
            any_value(scheme) as scheme_number,
            programmes_group,
            days,
            sum(observable)::integer as observable,
            sum(coalesce(bzra_free, 0))::integer as n_bzra_free,
            round(sum(coalesce(bzra_free, 0)) / nullif(sum(observable), 0), 4)::double as rate
        from {mart_bzra_free}
        where ?::integer is null or start_year = ?::integer
        group by scheme, programmes_group, days
        order by scheme_number, programmes_group desc, days
        """,
        [start_year, start_year],
    )
    out = []
    for row in rows:
        observable = row["observable"]
        if not observable:
            out.append({**_bzra_key(row), "observable": 0, "bzra_free": None,
                        "bzra_free_rate": None})  # fmt: skip
            continue
        free = row["n_bzra_free"]
        shown = disclosure.table(
            {"free": free, "relapsed": observable - free, "observable": observable},
            [Line(("free", "relapsed"), "observable")],
        )
        out.append(
            {
                **_bzra_key(row),
                "observable": shown["observable"],
                "bzra_free": shown["free"],
                "bzra_free_rate": disclosure.rate(row["rate"], observable, free),
            }
        )
    return {
        "start_year": start_year,
        "observable": any(row["observable"] for row in rows),
        "rows": out,
    }


def _bzra_key(row: dict) -> dict:
    return {k: row[k] for k in ("scheme", "programmes_group", "days")}


# --- compliance (SPEC §8) -----------------------------------------------------------------


def compliance_counts(reader: Reader) -> dict[str, int]:
    """Flagged events per rule id (rules without a finding are absent)."""
    rows = reader.rows(
        "select rule_id, count(*) as n_findings from {mart_compliance_findings} group by rule_id"
    )
    return {row["rule_id"]: row["n_findings"] for row in rows}


def compliance_rule_counts(reader: Reader) -> dict[str, int | None]:
    """Flagged events per rule of the registry, in its order: 0 where none, and null ("not
    observable", never 0) for R16-R18 when the warehouse holds no BZRA delivery (SPEC §10,
    §14). What the `compliance` JSON and the pack count."""
    counts = compliance_counts(reader)
    not_observable = () if holds_bzra_deliveries(reader) else NOT_OBSERVABLE_RULES
    return {
        rule.id: None if rule.id in not_observable else counts.get(rule.id, 0)
        for rule in load_registry().rules
    }


def compliance_findings(
    reader: Reader, rule: str | None = None, limit: int | None = None
) -> list[dict]:
    """Rows of mart_compliance_findings of `rule` (None: every rule), by rule, delivery date,
    patient and event; the first `limit` only when given."""
    sql = """
        select * from {mart_compliance_findings}
        where ?::varchar is null or rule_id = ?::varchar
        order by rule_id, delivery_date, patient_id, patient_event_number
    """
    if limit is None:
        return reader.rows(sql, [rule, rule])
    return reader.rows(sql + "limit ?", [rule, rule, limit])


def finding_detail(row: dict, lang: str, *, machine: bool = False) -> str:
    """Why the finding `row` (of mart_compliance_findings) is flagged, in `lang`: the words
    `finding_<detail_key>` with the row's `detail_values`.

    For a screen (the default), dates are written by Babel in the reader's language (26 mai
    2025), numbers with its separators and the event's kind in words (palier de diminution).
    `machine` (the compliance exports, in English): every value as the mart gives it, dates
    ISO and the kind as its code (reduction), the sentence the exports have always carried.
    """
    values = {}
    for name, value in row["detail_values"].items():
        if value is None:
            values[name] = EMPTY
        elif machine:
            values[name] = value
        elif name == "kind":
            values[name] = t(f"finding_kind_{value}", lang)
        elif name.endswith("_date"):
            values[name] = fmt_date(dt.date.fromisoformat(value), lang)
        elif value.isdigit() and not name.endswith(("_id", "_year")):  # not "2 008"
            values[name] = fmt_int(int(value), lang)
        else:
            values[name] = value
    return t(f"finding_{row['detail_key']}", lang, **values)


def finding_record(row: dict, severity: dict[str, str]) -> dict:
    """A finding as exported (FINDING_KEYS): `row` of mart_compliance_findings, `severity`
    by rule id; the detail in English with ISO dates (SPEC §10's machine contract)."""
    return {
        "rule": row["rule_id"],
        "severity": severity[row["rule_id"]],
        "programme_id": row["programme_id"],
        "patient_id": row["patient_id"],
        "pharmacy_id": row["pharmacy_id"],
        "delivery_date": row["delivery_date"].isoformat(),
        "cnk": row["cnk"],
        "kind": row["kind"],
        "detail": finding_detail(row, "en", machine=True),
    }


def compliance(reader: Reader, disclosure: Disclosure) -> dict:
    """SPEC §8: the JSON document of `benzo-monitor compliance`, {"as_of", "rules", "findings"}.

    Counts per rule go through disclosure control; the findings are the analysts' work list
    (pseudonymised identifiers, no figures) and are listed in full.
    """
    rules = load_registry().rules
    severity = {rule.id: rule.severity for rule in rules}
    counts = compliance_rule_counts(reader)
    return {
        "as_of": as_of_date(reader).isoformat(),
        "rules": {rule_id: disclosure.count(count) for rule_id, count in counts.items()},
        "findings": [finding_record(row, severity) for row in compliance_findings(reader)],
        **disclosure.header(COMPLIANCE_RULES),
    }


def compliance_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per finding (rule x event), after an as_of column; counts are not repeated."""
    return ["as_of", *FINDING_KEYS], [
        [doc["as_of"], *(f[k] for k in FINDING_KEYS)] for f in doc["findings"]
    ]


def compliance_per_month(reader: Reader) -> list[dict]:
    """Findings per delivery month: per rule, per severity and in all, by month. The flags
    `is_per_rule` and `is_per_severity` tell the rows apart (neither: the month's total)."""
    warnings = [rule.id for rule in load_registry().rules if rule.severity == "warning"]
    return reader.rows(
        """
        with findings as (
            select
                strftime(delivery_date, '%Y-%m') as month,
                rule_id,
                case when list_contains(string_split(?, ','), rule_id) then 'warning'
                    else 'error' end as severity
            from {mart_compliance_findings}
        )

        select
            month,
            rule_id,
            severity,
            grouping(rule_id) = 0 as is_per_rule,
            grouping(severity) = 0 as is_per_severity,
            count(*) as n_findings
        from findings
        group by grouping sets ((month, rule_id), (month, severity), (month))
        order by month
        """,
        [",".join(warnings)],
    )


# --- fees (SPEC §2) -----------------------------------------------------------------------


def fees_bounds(reader: Reader) -> dict | None:
    """The first and last month of mart_fees_by_cnk_month and whether the exports carry
    amounts billed: {"first_month", "last_month", "has_amounts"}; None when it is empty."""
    rows = reader.rows(
        """
        select
            min(month) as first_month,
            max(month) as last_month,
            count(amount_billed_eur) > 0 as has_amounts
        from {mart_fees_by_cnk_month}
        """
    )
    return rows[0] if rows and rows[0]["last_month"] is not None else None


def fees_by_cnk(reader: Reader, first_month: str, last_month: str) -> list[dict]:
    """Events and fees per CNK over the months `first_month` to `last_month` ('YYYY-MM'), in
    the order of the fee codes (etl/base/codes.py), then the total (`cnk` None).

    Each row: cnk, n_events, n_unassigned_events, fees_estimated_eur, amount_billed_eur (None
    when the exports carry no amounts) and difference_eur (billed - estimated over the months
    with amounts). The total of an empty period counts 0 events and 0 euros.
    """
    rows = reader.rows(
        """
        select
            cnk,
            coalesce(sum(n_events), 0) as n_events,
            coalesce(sum(n_unassigned_events), 0) as n_unassigned_events,
            coalesce(sum(fees_estimated_eur), 0) as fees_estimated_eur,
            sum(amount_billed_eur) as amount_billed_eur,
            sum(amount_billed_eur - fees_estimated_eur) as difference_eur
        from {mart_fees_by_cnk_month}
        where month between ? and ?
        group by grouping sets ((cnk), ())
        """,
        [first_month, last_month],
    )
    order = {code.cnk: i for i, code in enumerate(FEE_CODES)}
    per_cnk = sorted(
        (row for row in rows if row["cnk"] is not None),
        key=lambda row: (order.get(row["cnk"], len(order)), row["cnk"]),
    )
    return per_cnk + [row for row in rows if row["cnk"] is None]


def fees_by_month(reader: Reader, first_month: str, last_month: str) -> list[dict]:
    """Fees per month and kind of service, and per month with every kind (`kind` None), by
    month; `is_provisional` per month."""
    return reader.rows(
        """
        select
            month,
            kind,
            bool_or(is_provisional) as is_provisional,
            sum(fees_estimated_eur) as fees_estimated_eur,
            sum(amount_billed_eur) as amount_billed_eur
        from {mart_fees_by_cnk_month}
        where month between ? and ?
        group by grouping sets ((month, kind), (month))
        order by month
        """,
        [first_month, last_month],
    )


def fees_detail(reader: Reader, first_month: str, last_month: str) -> list[dict]:
    """Events and fees per month and CNK over the period, latest month first."""
    return reader.rows(
        """
        select month, cnk, n_events, fees_estimated_eur, amount_billed_eur
        from {mart_fees_by_cnk_month}
        where month between ? and ?
        order by month desc, cnk
        """,
        [first_month, last_month],
    )


# --- regions ------------------------------------------------------------------------------


def programmes_by_region(reader: Reader) -> list[dict]:
    """mart_programmes_by_region by region and scheme order."""
    return reader.rows(
        "select * from {mart_programmes_by_region} order by region_order, scheme_order"
    )


def programmes_by_province(reader: Reader) -> list[dict]:
    """mart_programmes_by_province by province and scheme order."""
    return reader.rows(
        "select * from {mart_programmes_by_province} order by province_order, scheme_order"
    )


def patients_by_profile(reader: Reader) -> list[dict]:
    """mart_patients_by_profile by dimension, category and scheme order."""
    return reader.rows(
        "select * from {mart_patients_by_profile} "
        "order by dimension_order, category_order, category, scheme_order"
    )


# --- the data: loads, rejects, corrections, provisional months ----------------------------


def load_ledger(reader: Reader) -> list[dict]:
    """The load ledger, latest load first, from the raw table (the staging view leaves out
    format, encoding and user); `finished_at` as text to the second."""
    return reader.rows(
        "select load_id, file_name, file_format, encoding, rows_read, rows_new, rows_present, "
        "rows_skipped, rows_rejected, min_delivery_date, max_delivery_date, "
        "strftime(finished_at, '%Y-%m-%d %H:%M:%S') as finished_at, loaded_by, file_sha256 "
        "from loads order by load_id desc"
    )


def loads_seen(reader: Reader) -> list[dict]:
    """The loads the views see (stg_loads: up to max_load_id when set), by load id."""
    return reader.rows("select * from stg_loads order by load_id")


def line_load_ids(reader: Reader) -> list[int]:
    """The ids of the loads whose billing lines the views see, in order."""
    rows = reader.rows("select distinct load_id from stg_billing_lines order by load_id")
    return [row["load_id"] for row in rows]


def rejects_by_reason(reader: Reader) -> list[dict]:
    """mart_data_quality_rejects, the most frequent reason first."""
    return reader.rows("select * from {mart_data_quality_rejects} order by n_rejects desc, reason")


def unmatched_corrections(reader: Reader) -> list[dict]:
    """mart_data_quality_unmatched_corrections, latest delivery first."""
    return reader.rows(
        "select * from {mart_data_quality_unmatched_corrections} "
        "order by delivery_date desc, patient_id, pharmacy_id, cnk"
    )


def unmatched_corrections_count(reader: Reader) -> int:
    """How many unmatched corrections there are."""
    (row,) = reader.rows("select count(*) as n from {mart_data_quality_unmatched_corrections}")
    return row["n"]


def provisional_months(reader: Reader) -> list[dict]:
    """The provisional months of mart_data_quality_months, latest first."""
    return reader.rows(
        "select * from {mart_data_quality_months} where is_provisional order by month desc"
    )


# --- the data's date range (h-dates) --------------------------------------------------------


def first_delivery_date(reader: Reader) -> dt.date | None:
    """The earliest delivery date of the billing lines loaded (None before any load): the
    first as-of date at which any event exists (SPEC §5)."""
    (row,) = reader.rows("select min(delivery_date) as first_date from billing_lines")
    return row["first_date"]
