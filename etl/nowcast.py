"""SPEC §15, the actuarial review: figures as known on a date, the reporting triangle, the
nowcast of provisional months and the budget. Part of the figures layer, beside etl.figures.

**Vintages.** A line is known from the last day of its billing month (or, without one, of the
month its file was loaded); the views see only the lines known on or before the session
variable `vintage_date` (etl.base.warehouse.set_vintage, sql/staging/10_stg_billing_lines.sql).
`vintage_history` gives the figures of `mart_vintage_figures` at the vintage ending each month t
(as of the last day of t) in one pass of the views (sql/vintages/; `vintage_history_reference`,
the mart read once per vintage, is the slow reference the tests compare it with): C(m, k) is
the figure of delivery month m at the vintage ending month m + k, the reporting triangle's cell
is C(m, k) - C(m, k - 1) (`triangle_rows`).

**Nowcast** of a month m provisional at the as-of date V, whose vintage ends month T (lag
k = T - m): with H the last `nowcast_history_months` delivery months that are final at V (not
provisional, SPEC §6) and F(j) = C(j, T - j) their figure as known now,

    completion share  s_k = sum_H C(j, k) / sum_H F(j)     (share_known)
    nowcast           N   = C(m, k) / s_k                   (chain ladder: the volume-weighted
                                                            link ratios of the same months
                                                            multiply to sum F / sum C(k))
    intervals         N x exp(+- t_q(n - 1) x sd x sqrt(1 + 1/n))

where sd is the standard deviation of the n log ratios ln(F(j) / C(j, k)) of H (both
positive): a log-normal remainder ratio, the prediction interval of one new ratio (Student t,
q = 0.90 for 80 %, 0.975 for 95 %). Fewer than two ratios: no interval.

Worked example (tests/test_nowcast.py): history months with C(j, 0) = 6, 4 and final 10, 10;
a month known at 3 after lag 0. s_0 = 10 / 20 = 0.5, N = 3 / 0.5 = 6. Log ratios ln(10/6) =
0.5108 and ln(10/4) = 0.9163, sd = 0.2867, n = 2: the 80 % interval is 6 x exp(+-3.078 x
0.2867 x 1.2247) = 6 x exp(+-1.0808) = 2.04 to 17.7.

**Backtest.** Every delivery month final at V is nowcast again at lags 0, 1, 2 from the vintage
ending month m + lag, with the months that were final then (as known then), and compared with
its figure now (scheme total): median absolute percentage error of the figure then known and
of the nowcast, share of the 80 % and 95 % intervals that held the figure now.

**Budget** (`budget`): fees per billing month of the year — the fees the lines billed in month b
added to the known total, S(b) - S(b - 1) with S(t) the total fees of every delivery month at
the vintage ending t — beside the fees per delivery month (known, and the nowcast of the
provisional ones), against `annual_budget_eur`; the year-end projection and its backtest on
past years (see `BUDGET_METHOD`).
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass, field

import duckdb

import sql as sql_pkg
from etl.base.config import Config
from etl.base.publish import PARTITIONED
from etl.base.warehouse import apply_settings, dict_rows, open_duckdb, set_as_of, set_vintage

METRICS = ("patients_initiated", "reduction_steps_delivered", "fees_estimated_eur")
SCHEMES = ("5", "7", "10", "total")
BACKTEST_LAGS = (0, 1, 2)
BACKTEST_SCHEME = "total"
RUN_RATE_MONTHS = 3
NOWCAST_METHOD = (
    "chain ladder: the figure known times the volume-weighted completion factor of the last "
    "{n} complete months at the same lag; 80 % and 95 % prediction intervals from the spread "
    "of their log ratios final / known (log-normal, Student t with n - 1 degrees of freedom, "
    "times sqrt(1 + 1/n))"
)
BUDGET_METHOD = (
    "year-end projection = fees of the year's complete delivery months as known + the nowcast "
    "of its provisional months + each remaining month at the run rate (mean fees) of the last "
    "3 complete months; interval: normal, variance = the nowcasts' (95 % half-width / 1.96)^2 "
    "+ per remaining month (run rate x sd of past months' ratio to their preceding 3-month "
    "run rate)^2"
)
Z = {80: 1.2815515655446004, 95: 1.959963984540054}
# Student t quantiles (0.90 and 0.975) for 1..30 degrees of freedom; beyond, the normal's.
T_90 = (3.078, 1.886, 1.638, 1.533, 1.476, 1.440, 1.415, 1.397, 1.383, 1.372, 1.363, 1.356,
        1.350, 1.345, 1.341, 1.337, 1.333, 1.330, 1.328, 1.325, 1.323, 1.321, 1.319, 1.318,
        1.316, 1.315, 1.314, 1.313, 1.311, 1.310)  # fmt: skip
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)  # fmt: skip


# --- months as numbers ------------------------------------------------------------------------


def month_index(month: str) -> int:
    """'YYYY-MM' as a number of months (year x 12 + month - 1)."""
    year, mon = month.split("-")
    return int(year) * 12 + int(mon) - 1


def month_text(index: int) -> str:
    """The 'YYYY-MM' of a month number."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_end(index: int) -> dt.date:
    """The last day of a month number."""
    nxt = index + 1
    return dt.date(nxt // 12, nxt % 12 + 1, 1) - dt.timedelta(days=1)


def vintage_month(as_of: dt.date) -> int:
    """The month whose vintage is known on `as_of`: its own if it is the last day, else the
    previous one (lines are known from the last day of their billing month)."""
    index = as_of.year * 12 + as_of.month - 1
    return index if month_end(index) == as_of else index - 1


def t_quantile(q: float, df: int) -> float:
    """Student t quantile for q in (0.90, 0.975) and df degrees of freedom (>= 1)."""
    table = T_90 if q == 0.90 else T_975
    if df <= len(table):
        return table[df - 1]
    return Z[80] if q == 0.90 else Z[95]


# --- the vintages and the reporting triangle ---------------------------------------------------


@dataclass
class VintageHistory:
    """The figures of every delivery month at the vintages ending months first..last.

    `values[(month, scheme, metric)][t]` is C(month, t - month): the figure as known at the
    vintage ending month t (month numbers). `first` is the first month with a line.
    """

    first: int
    last: int
    provisional_days: int
    values: dict[tuple[int, str, str], dict[int, float]] = field(default_factory=dict)

    def at(self, month: int, scheme: str, metric: str, vintage: int) -> float:
        """C(month, vintage - month): 0 before any line of it was known."""
        return self.values.get((month, scheme, metric), {}).get(vintage, 0)

    def is_final(self, month: int, as_of: dt.date) -> bool:
        """SPEC §6: the month is not provisional on `as_of`."""
        return as_of >= month_end(month) + dt.timedelta(days=self.provisional_days)

    def up_to(self, last: int) -> VintageHistory:
        """The history of the vintages ending months first..`last` only: the figure at a
        vintage does not depend on later vintages (each is computed as of its own last day,
        from the lines known then), so this is what `vintage_history(con, config, first,
        last)` computes, without a pass of the views (tests/test_nowcast_fast.py)."""
        last = min(last, self.last)
        values = {
            key: kept
            for key, by_vintage in self.values.items()
            if key[0] <= last and (kept := {v: x for v, x in by_vintage.items() if v <= last})
        }
        return VintageHistory(self.first, last, self.provisional_days, values)

    def final_months(self, vintage: int, as_of: dt.date, n: int) -> list[int]:
        """The last `n` months (from the first with a line, up to `vintage`) final on `as_of`."""
        months = [m for m in range(self.first, vintage + 1) if self.is_final(m, as_of)]
        return months[-n:]


def data_bounds(con: duckdb.DuckDBPyConnection) -> tuple[int, int] | None:
    """(first delivery month, last known billing month) of every line loaded; None if none, or
    if no line has a month it is known from (lines without a billing month and without a
    recorded load: a warehouse written by hand)."""
    set_vintage(con, None)
    (row,) = dict_rows(
        con,
        "select strftime(min(delivery_date), '%Y-%m') as first_month, "
        "max(known_billing_month) as last_month from stg_billing_lines",
    )
    if row["first_month"] is None or row["last_month"] is None:
        return None
    return month_index(row["first_month"]), month_index(row["last_month"])


def vintage_history(
    con: duckdb.DuckDBPyConnection, config: Config, first: int, last: int
) -> VintageHistory:
    """The figures of mart_vintage_figures at every vintage ending months first..last (each as
    of its last day), in one pass of the views (sql/vintages/): each patient's lines are
    copied once per month at which one of them becomes visible (a patient's figures depend on
    its own lines only), the views compute every copy at once, and the figure at vintage V
    sums the changes of the copies up to V. Same figures as `vintage_history_reference`
    (tests/test_nowcast_fast.py), many times faster on a national warehouse.

    Works in an in-memory database of its own, with the warehouse of `con` attached read-only
    and the settings of `config` (and the max_load_id of `con`); `con` is left as it was."""
    history = VintageHistory(first, last, config.provisional_days)
    (path, max_load_id) = con.execute(
        "select path, getvariable('max_load_id') from duckdb_databases() "
        "where database_name = current_database()"
    ).fetchone()
    scratch = open_duckdb()
    try:
        scratch.execute("attach ? as home (read_only)", [path])
        tables = scratch.execute(
            "select table_name from duckdb_tables() where database_name = 'home' and "
            "schema_name = 'main' union all select view_name from duckdb_views() where "
            "database_name = 'home' and schema_name = 'main' and list_contains(?, view_name)",
            [list(PARTITIONED)],  # in a snapshot, views over Parquet (etl/base/publish.py)
        ).fetchall()
        for (table,) in tables:
            name = '"' + table.replace('"', '""') + '"'
            if table != "billing_lines":
                scratch.execute(f"create view {name} as select * from home.main.{name}")
        scratch.execute("create view home_lines as select * from home.main.billing_lines")
        scratch.execute("create view home_loads as select * from home.main.loads")
        apply_settings(scratch, config, max_load_id=max_load_id)
        scratch.execute("set variable vintage_first = ?::date", [month_end(first).replace(day=1)])
        scratch.execute("set variable vintage_last = ?::date", [month_end(last).replace(day=1)])
        scratch.execute(sql_pkg.read_sql("vintages/replicated_lines.sql"))
        for view in _views_up_to_programmes():
            scratch.execute(view.read_text(encoding="utf-8"))
        rows = dict_rows(scratch, sql_pkg.read_sql("vintages/figures_by_vintage.sql"))
    finally:
        scratch.close()
    for row in rows:
        month, vintage = month_index(row["month"]), month_index(row["vintage"])
        for metric in METRICS:
            value = row[metric]
            value = float(value) if metric == "fees_estimated_eur" else int(value)
            history.values.setdefault((month, row["scheme"], metric), {})[vintage] = value
    return history


def _views_up_to_programmes() -> list:
    """The view files the figures of a vintage read: the staging layer and the core layer up
    to core_programmes (core_schemes, core_programme_events, core_programmes and what they
    read); the later core views and the marts are not needed (creating them costs seconds)."""
    return [
        path
        for path in sql_pkg.view_files()
        if path.parent.name == "staging"
        or (path.parent.name == "core" and path.name <= "60_core_programmes.sql")
    ]


def vintage_history_reference(
    con: duckdb.DuckDBPyConnection, config: Config, first: int, last: int
) -> VintageHistory:
    """The slow reference path of `vintage_history`: mart_vintage_figures read at each
    vintage ending months first..last (each as of its last day), the views run once per
    vintage. `con` must read the views (not materialised core tables); its vintage and as-of
    date are reset to the defaults afterwards. Kept for the tests, which check that
    `vintage_history` gives exactly the same figures."""
    history = VintageHistory(first, last, config.provisional_days)
    try:
        for vintage in range(first, last + 1):
            set_vintage(con, month_end(vintage))
            set_as_of(con, month_end(vintage))
            rows = dict_rows(
                con,
                "select month, scheme, patients_initiated, reduction_steps_delivered, "
                "fees_estimated_eur from mart_vintage_figures where month between ? and ?",
                [month_text(first), month_text(vintage)],
            )
            for row in rows:
                month = month_index(row["month"])
                for metric in METRICS:
                    value = row[metric]
                    value = float(value) if metric == "fees_estimated_eur" else int(value)
                    history.values.setdefault((month, row["scheme"], metric), {})[vintage] = value
    finally:
        set_vintage(con, None)
        set_as_of(con, None)
    return history


def triangle_rows(history: VintageHistory) -> list[dict]:
    """The reporting triangle (SPEC §15): per delivery month, scheme, metric and lag k = 0, 1,
    … (vintage ending month + k, up to the last vintage), the figure then known and the cell:
    known at lag k minus known at lag k - 1 (negative after a correction)."""
    rows = []
    for month in range(history.first, history.last + 1):
        for metric in METRICS:
            for scheme in SCHEMES:
                previous = 0
                for vintage in range(month, history.last + 1):
                    known = history.at(month, scheme, metric, vintage)
                    rows.append(
                        {
                            "month": month_text(month),
                            "scheme": scheme,
                            "metric": metric,
                            "lag": vintage - month,
                            "known": _rounded(metric, known),
                            "cell": _rounded(metric, known - previous),
                        }
                    )
                    previous = known
    return rows


# --- the nowcast ------------------------------------------------------------------------------


def _rounded(metric: str, value: float | None) -> float | int | None:
    if value is None:
        return None
    if metric == "fees_estimated_eur":
        return round(value, 2)
    return int(value) if float(value).is_integer() else round(value, 1)


@dataclass
class Nowcast:
    """One month's nowcast at one vintage (see the module's docstring)."""

    observed: float
    nowcast: float | None
    share_known: float | None
    bounds: dict[int, tuple[float, float]]  # level (80, 95) -> (lower, upper)
    n_history: int


def nowcast_month(
    history: VintageHistory, month: int, scheme: str, metric: str, vintage: int, final: list[int]
) -> Nowcast:
    """The chain-ladder nowcast of `month` at the vintage ending `vintage`, from the months
    `final` (final then; their figure then is taken as final)."""
    lag = vintage - month
    observed = history.at(month, scheme, metric, vintage)
    pairs = [
        (history.at(j, scheme, metric, j + lag), history.at(j, scheme, metric, vintage))
        for j in final
    ]
    sum_known = sum(known for known, _ in pairs)
    sum_final = sum(final_value for _, final_value in pairs)
    share = sum_known / sum_final if sum_final > 0 else None
    value = observed / share if share else None
    logs = [math.log(f / k) for k, f in pairs if k > 0 and f > 0]
    bounds = {}
    if value is not None and len(logs) >= 2:
        n = len(logs)
        spread = statistics.stdev(logs) * math.sqrt(1 + 1 / n)
        for level, q in ((80, 0.90), (95, 0.975)):
            half = t_quantile(q, n - 1) * spread
            bounds[level] = (value * math.exp(-half), value * math.exp(half))
    return Nowcast(observed, value, share, bounds, len(logs))


def nowcast_as_of(
    history: VintageHistory, as_of: dt.date, n_history: int
) -> tuple[int, list[int], list[int]]:
    """(vintage month T, the provisional months up to T, the history months) on `as_of`."""
    vintage = min(vintage_month(as_of), history.last)
    provisional = [m for m in range(history.first, vintage + 1) if not history.is_final(m, as_of)]
    return vintage, provisional, history.final_months(vintage, as_of, n_history)


def nowcast_document(history: VintageHistory, as_of: dt.date, config: Config) -> dict:
    """The JSON document of `benzo-monitor nowcast` (SPEC §10): the provisional months'
    nowcasts on `as_of` and the backtest of every final month at lags 0, 1, 2."""
    vintage, provisional, final = nowcast_as_of(history, as_of, config.nowcast_history_months)
    months = []
    for month in provisional:
        for metric in METRICS:
            for scheme in SCHEMES:
                cast = nowcast_month(history, month, scheme, metric, vintage, final)
                months.append(_month_record(month, metric, scheme, cast))
    return {
        "as_of": as_of.isoformat(),
        "method": NOWCAST_METHOD.format(n=config.nowcast_history_months),
        "months": months,
        "backtest": backtest(history, as_of, config),
    }


def _month_record(month: int, metric: str, scheme: str, cast: Nowcast) -> dict:
    lower_80, upper_80 = cast.bounds.get(80, (None, None))
    lower_95, upper_95 = cast.bounds.get(95, (None, None))
    return {
        "month": month_text(month),
        "metric": metric,
        "scheme": scheme,
        "observed": _rounded(metric, cast.observed),
        "nowcast": _rounded(metric, cast.nowcast),
        "lower_80": _rounded(metric, lower_80),
        "upper_80": _rounded(metric, upper_80),
        "lower_95": _rounded(metric, lower_95),
        "upper_95": _rounded(metric, upper_95),
        "share_known": None if cast.share_known is None else round(cast.share_known, 4),
    }


def backtest(history: VintageHistory, as_of: dt.date, config: Config) -> list[dict]:
    """Per lag (0, 1, 2) and metric, over every month final on `as_of` (scheme total, months
    whose figure now is not 0): the nowcast made at the vintage ending month + lag from the
    months final then, against the figure now. Errors in percent of the figure now."""
    vintage = min(vintage_month(as_of), history.last)
    finals = [m for m in range(history.first, vintage + 1) if history.is_final(m, as_of)]
    rows = []
    for lag in BACKTEST_LAGS:
        for metric in METRICS:
            errors_observed, errors_nowcast, held = [], [], {80: [], 95: []}
            for month in finals:
                then = month + lag
                truth = history.at(month, BACKTEST_SCHEME, metric, vintage)
                if then > vintage or truth == 0:
                    continue
                previous = history.final_months(
                    then, month_end(then), config.nowcast_history_months
                )
                cast = nowcast_month(history, month, BACKTEST_SCHEME, metric, then, previous)
                if cast.nowcast is None:
                    continue
                errors_observed.append(abs(cast.observed - truth) / abs(truth) * 100)
                errors_nowcast.append(abs(cast.nowcast - truth) / abs(truth) * 100)
                for level, (lower, upper) in cast.bounds.items():
                    held[level].append(lower <= truth <= upper)
            rows.append(
                {
                    "lag": lag,
                    "metric": metric,
                    "months": len(errors_nowcast),
                    "median_abs_pct_error_observed": _median(errors_observed),
                    "median_abs_pct_error_nowcast": _median(errors_nowcast),
                    "coverage_80": _share(held[80]),
                    "coverage_95": _share(held[95]),
                }
            )
    return rows


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


NOWCAST_CSV_COLUMNS = (
    "month",
    "metric",
    "scheme",
    "observed",
    "nowcast",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "share_known",
)


def nowcast_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """The CSV of `benzo-monitor nowcast`: one row per month x metric x scheme."""
    return list(NOWCAST_CSV_COLUMNS), [[r[c] for c in NOWCAST_CSV_COLUMNS] for r in doc["months"]]


# --- the budget ---------------------------------------------------------------------------------

FEES = "fees_estimated_eur"


def billed_fees(history: VintageHistory, month: int) -> float:
    """Fees booked in billing month `month`: what the lines billed then added to the total of
    every delivery month, S(month) - S(month - 1)."""

    def total(vintage: int) -> float:
        return sum(history.at(m, "total", FEES, vintage) for m in range(history.first, vintage + 1))

    return total(month) - total(month - 1)


@dataclass
class Projection:
    """A year-end projection of the fees (see BUDGET_METHOD)."""

    value: float | None
    bounds: dict[int, tuple[float, float]]
    run_rate: float | None
    months_remaining: int
    months: list[dict]


def project_year(history: VintageHistory, year: int, as_of: dt.date, config: Config) -> Projection:
    """The fees of `year` per delivery month (known, nowcast) and its year-end projection on
    `as_of` (BUDGET_METHOD), from the vintages up to `as_of`."""
    vintage, provisional, final = nowcast_as_of(history, as_of, config.nowcast_history_months)
    months, variance, total = [], 0.0, 0.0
    for month in range(year * 12, year * 12 + 12):
        record = {"month": month_text(month)}
        if month > vintage or month < history.first:
            record.update(provisional=None, known=None, nowcast=None, bounds={})
            if month < history.first and month <= vintage:
                record.update(provisional=False, known=0.0, nowcast=0.0)
        elif month in provisional:
            cast = nowcast_month(history, month, "total", FEES, vintage, final)
            record.update(
                provisional=True, known=cast.observed, nowcast=cast.nowcast, bounds=cast.bounds
            )
            total += cast.nowcast if cast.nowcast is not None else cast.observed
            if 95 in cast.bounds:
                lower, upper = cast.bounds[95]
                variance += ((upper - lower) / (2 * Z[95])) ** 2
        else:
            known = history.at(month, "total", FEES, vintage)
            record.update(provisional=False, known=known, nowcast=known, bounds={})
            total += known
        months.append(record)
    remaining = sum(1 for m in range(year * 12, year * 12 + 12) if m > vintage)
    complete = history.final_months(vintage, as_of, RUN_RATE_MONTHS)
    run_rate = (
        statistics.mean(history.at(m, "total", FEES, vintage) for m in complete)
        if len(complete) == RUN_RATE_MONTHS
        else None
    )
    if remaining and run_rate is None:
        return Projection(None, {}, None, remaining, months)
    if remaining:
        total += remaining * run_rate
        ratios = _run_rate_ratios(history, vintage, as_of, config.nowcast_history_months)
        if len(ratios) >= 2:
            variance += remaining * (run_rate * statistics.stdev(ratios)) ** 2
    spread = math.sqrt(variance)
    bounds = {level: (total - z * spread, total + z * spread) for level, z in Z.items()}
    return Projection(total, bounds, run_rate, remaining, months)


def _run_rate_ratios(history: VintageHistory, vintage: int, as_of: dt.date, n: int) -> list[float]:
    """Each of the last `n` final months' fees over the mean of its 3 preceding months."""
    finals = [m for m in range(history.first, vintage + 1) if history.is_final(m, as_of)]
    ratios = []
    for month in finals[-n:]:
        before = [m for m in finals if month - RUN_RATE_MONTHS <= m < month]
        if len(before) < RUN_RATE_MONTHS:
            continue
        base = statistics.mean(history.at(m, "total", FEES, vintage) for m in before)
        if base > 0:
            ratios.append(history.at(month, "total", FEES, vintage) / base)
    return ratios


def budget_document(history: VintageHistory, year: int, as_of: dt.date, config: Config) -> dict:
    """The JSON document of `benzo-monitor budget` (documented in docs/methodology.md)."""
    vintage = min(vintage_month(as_of), history.last)
    projection = project_year(history, year, as_of, config)
    months, cumulative = [], 0.0
    for record in projection.months:
        month = month_index(record["month"])
        billed = None
        if month <= vintage:
            billed = billed_fees(history, month) if month >= history.first else 0.0
            cumulative += billed
        lower_80, upper_80 = record["bounds"].get(80, (None, None))
        lower_95, upper_95 = record["bounds"].get(95, (None, None))
        months.append(
            {
                "month": record["month"],
                "fees_billed_eur": _money(billed),
                "fees_billed_cumulative_eur": _money(cumulative) if billed is not None else None,
                "provisional": record["provisional"],
                "fees_known_eur": _money(record["known"]),
                "fees_nowcast_eur": _money(record["nowcast"]),
                "lower_80": _money(lower_80),
                "upper_80": _money(upper_80),
                "lower_95": _money(lower_95),
                "upper_95": _money(upper_95),
            }
        )
    budget = config.annual_budget_eur
    return {
        "year": year,
        "as_of": as_of.isoformat(),
        "annual_budget_eur": _money(budget),
        "method": BUDGET_METHOD,
        "months": months,
        "projection": _projection_record(projection, budget),
        "backtest": budget_backtest(history, year, as_of, config),
    }


def _money(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _projection_record(projection: Projection, budget: float) -> dict:
    lower_80, upper_80 = projection.bounds.get(80, (None, None))
    lower_95, upper_95 = projection.bounds.get(95, (None, None))
    return {
        "fees_year_end_eur": _money(projection.value),
        "lower_80": _money(lower_80),
        "upper_80": _money(upper_80),
        "lower_95": _money(lower_95),
        "upper_95": _money(upper_95),
        "share_of_budget": (
            round(projection.value / budget, 4) if projection.value is not None and budget else None
        ),
        "run_rate_eur": _money(projection.run_rate),
        "months_remaining": projection.months_remaining,
    }


def budget_backtest(
    history: VintageHistory, year: int, as_of: dt.date, config: Config
) -> list[dict]:
    """The projection of each past year (before `year`, every month final on `as_of`) made at
    the end of each of its months 1..11, against the year's fees now."""
    vintage = min(vintage_month(as_of), history.last)
    rows = []
    for past in range(history.first // 12, year):
        if not history.is_final(past * 12 + 11, as_of) or past * 12 + 11 > vintage:
            continue
        final = sum(history.at(m, "total", FEES, vintage) for m in range(past * 12, past * 12 + 12))
        for elapsed in range(1, 12):
            cut = past * 12 + elapsed - 1
            if cut < history.first:
                continue
            projection = project_year(history, past, month_end(cut), config)
            if projection.value is None or final == 0:
                continue
            lower_80, upper_80 = projection.bounds[80]
            lower_95, upper_95 = projection.bounds[95]
            rows.append(
                {
                    "year": past,
                    "months_elapsed": elapsed,
                    "projection_eur": _money(projection.value),
                    "lower_95": _money(lower_95),
                    "upper_95": _money(upper_95),
                    "final_eur": _money(final),
                    "abs_pct_error": round(abs(projection.value - final) / final * 100, 1),
                    "within_80": lower_80 <= final <= upper_80,
                    "within_95": lower_95 <= final <= upper_95,
                }
            )
    return rows


BUDGET_CSV_COLUMNS = (
    "month",
    "fees_billed_eur",
    "fees_billed_cumulative_eur",
    "provisional",
    "fees_known_eur",
    "fees_nowcast_eur",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
)


def budget_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """The CSV of `benzo-monitor budget`: one row per month of the year."""
    return list(BUDGET_CSV_COLUMNS), [[r[c] for c in BUDGET_CSV_COLUMNS] for r in doc["months"]]


# --- disclosure control (SPEC §9) ---------------------------------------------------------------

COUNT_METRICS = ("patients_initiated", "reduction_steps_delivered")
ESTIMATE_KEYS = ("nowcast", "lower_80", "upper_80", "lower_95", "upper_95")


def disclose_nowcast(doc: dict, threshold: int) -> dict:
    """The nowcast document after SPEC §9, as every export unless --no-suppress: a count
    known (`observed`) from 1 to threshold - 1 is masked ("<5") and its nowcast and intervals
    are null (they would give it back through share_known); where exactly one scheme of a
    month's metric is masked, the smallest other non-zero scheme is masked too ("x", ties: the
    first of 5, 7, 10); fees are null where a count of the same month and scheme is masked.
    The backtest (errors and coverages over months) is not about people: unchanged."""
    mask = f"<{threshold}"
    rows = {(r["month"], r["metric"], r["scheme"]): dict(r) for r in doc["months"]}

    def hide(row: dict, shown) -> None:
        row["observed"] = shown
        for key in ESTIMATE_KEYS:
            row[key] = None

    for row in rows.values():
        if row["metric"] in COUNT_METRICS and 0 < row["observed"] < threshold:
            hide(row, mask)
    for month in {key[0] for key in rows}:
        for metric in COUNT_METRICS:
            parts = [rows.get((month, metric, s)) for s in SCHEMES[:3]]
            parts = [p for p in parts if p is not None]
            if sum(p["observed"] == mask for p in parts) != 1:
                continue
            others = [p for p in parts if p["observed"] != mask and p["observed"]]
            if others:
                hide(min(others, key=lambda p: p["observed"]), "x")
    for (month, metric, scheme), row in rows.items():
        if metric == "fees_estimated_eur" and any(
            rows.get((month, count, scheme), {}).get("observed") in (mask, "x")
            for count in COUNT_METRICS
        ):
            row["observed"] = None
            for key in ESTIMATE_KEYS:
                row[key] = None
    return {**doc, "months": [rows[(r["month"], r["metric"], r["scheme"])] for r in doc["months"]]}
