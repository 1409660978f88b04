"""SPEC §15: the nowcast of provisional months, its backtest and the budget, worked by hand.

The method works on the figures as known at each vintage (C(m, k): month m at the vintage
ending month m + k); the first tests give it a history written out here, the last ones read it
from a warehouse through the command line.
"""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from etl import nowcast
from etl.base.config import load_config
from etl.base.warehouse import connect
from tests.sqlcase import cli_json, d, run_cli
from tests.test_vintages import warehouse

M = nowcast.month_index
PI = "patients_initiated"
FEES = "fees_estimated_eur"


def history_of(first: str, last: str, figures: dict, metric: str = PI) -> nowcast.VintageHistory:
    """A history of the total of `metric`: figures[month] = [C(m, 0), C(m, 1), ...]; the last
    value holds at every later vintage."""
    history = nowcast.VintageHistory(M(first), M(last), provisional_days=60)
    for month, known in figures.items():
        m = M(month)
        history.values[(m, "total", metric)] = {
            v: known[min(v - m, len(known) - 1)] for v in range(m, M(last) + 1)
        }
    return history


def config(n: int = 12):
    return dataclasses.replace(load_config(), nowcast_history_months=n)


def by_month(doc):
    return {(r["month"], r["metric"], r["scheme"]): r for r in doc["months"]}


def test_completion_factors_and_nowcast_of_one_month():
    """As of 2025-04-30 (provisional_days 60): January is final (2025-01-31 + 60 = 2025-04-01),
    February too (2025-02-28 + 60 = 2025-04-29), March (lag 1) and April (lag 0) are
    provisional.

    Programme starts known: January 6, 9, 10, 10 at lags 0-3; February 4, 8, 10; March 5, 9;
    April 3. Finals now: January 10, February 10 (sum 20).
    April, lag 0: share known = (6 + 4) / 20 = 0.5, nowcast 3 / 0.5 = 6. Log ratios
    ln(10/6) = 0.5108, ln(10/4) = 0.9163: sd 0.2867, n = 2, x sqrt(1.5) = 0.3511;
    80 %: t(0.90, 1) = 3.078 -> 6 x exp(-+1.0808) = 2.04 and 17.68 (one decimal: 2.0, 17.7).
    March, lag 1: share (9 + 8) / 20 = 0.85, nowcast 9 / 0.85 = 10.588 (10.6); log ratios
    ln(10/9) = 0.1054, ln(10/8) = 0.2231: sd 0.0833 x 1.2247 = 0.1020; 80 %: x 3.078 = 0.3140,
    10.588 x exp(-+0.3140) = 7.73 and 14.49 (7.7, 14.5)."""
    history = history_of(
        "2025-01",
        "2025-04",
        {"2025-01": [6, 9, 10], "2025-02": [4, 8, 10], "2025-03": [5, 9], "2025-04": [3]},
    )
    doc = nowcast.nowcast_document(history, d("2025-04-30"), config())
    rows = by_month(doc)
    assert sorted({r["month"] for r in doc["months"]}) == ["2025-03", "2025-04"]
    april = rows[("2025-04", PI, "total")]
    assert april["observed"] == 3
    assert april["share_known"] == 0.5
    assert april["nowcast"] == 6
    assert (april["lower_80"], april["upper_80"]) == (2.0, 17.7)
    march = rows[("2025-03", PI, "total")]
    assert march["share_known"] == 0.85
    assert march["nowcast"] == 10.6
    assert (march["lower_80"], march["upper_80"]) == (7.7, 14.5)
    # A scheme with nothing known in the history: no factor, no nowcast.
    assert rows[("2025-04", PI, "5")]["nowcast"] is None
    assert doc["method"].startswith("chain ladder")


def test_the_history_is_the_last_n_complete_months():
    """With nowcast_history_months = 1 only February counts: share 4 / 10 = 0.4, nowcast of
    April 3 / 0.4 = 7.5; one log ratio: no interval."""
    history = history_of(
        "2025-01",
        "2025-04",
        {"2025-01": [6, 9, 10], "2025-02": [4, 8, 10], "2025-03": [5, 9], "2025-04": [3]},
    )
    april = by_month(nowcast.nowcast_document(history, d("2025-04-30"), config(1)))[
        ("2025-04", PI, "total")
    ]
    assert (april["share_known"], april["nowcast"], april["lower_80"]) == (0.4, 7.5, None)


BACKTEST_FIGURES = {
    "2025-01": [6, 8, 10],
    "2025-02": [4, 8, 10],
    "2025-03": [5, 8, 10],
    "2025-04": [5, 8, 10],
    "2025-05": [5, 8, 10],
    "2025-06": [5, 8, 14],
    "2025-07": [5, 8],
    "2025-08": [5],
}


def test_backtest_error_and_coverage_at_lag_0():
    """As of 2025-08-31, January to June are final. At lag 0 each is nowcast at the end of its
    own month from the months final then: January to March have none (January is final only
    from 2025-04-01); April from January and February: share (6 + 4) / 20 = 0.5, nowcast
    5 / 0.5 = 10 = final; May from January-March: 15 / 30, nowcast 10 = final; June from
    January-April: 20 / 40, nowcast 10, final 14.
    Errors of the figure known: |5 - 10| / 10 = 50 %, 50 %, |5 - 14| / 14 = 64.3 %: median 50.0.
    Errors of the nowcast: 0, 0, 4 / 14 = 28.6 %: median 0.0.
    June's intervals: log ratios ln(10/6), ln(10/4), ln 2, ln 2: sd 0.1660, n = 4, x sqrt(1.25)
    = 0.1856; 80 %: t(0.90, 3) = 1.638 -> 10 x exp(0.3040) = 13.55 < 14, missed; 95 %: t(0.975,
    3) = 3.182 -> 10 x exp(0.5905) = 18.05, held. April and May are centred on their final:
    coverage 80 % = 2/3 = 0.667, 95 % = 1.0.
    Metrics with nothing known are reported with 0 months."""
    history = history_of("2025-01", "2025-08", BACKTEST_FIGURES)
    rows = nowcast.backtest(history, d("2025-08-31"), config())
    lag0 = next(r for r in rows if r["lag"] == 0 and r["metric"] == PI)
    assert lag0 == {
        "lag": 0,
        "metric": PI,
        "months": 3,
        "median_abs_pct_error_observed": 50.0,
        "median_abs_pct_error_nowcast": 0.0,
        "coverage_80": 0.667,
        "coverage_95": 1.0,
    }
    empty = next(r for r in rows if r["lag"] == 0 and r["metric"] == FEES)
    assert empty["months"] == 0 and empty["median_abs_pct_error_nowcast"] is None
    assert [(r["lag"], r["metric"]) for r in rows][:3] == [
        (0, "patients_initiated"),
        (0, "reduction_steps_delivered"),
        (0, "fees_estimated_eur"),
    ]


def test_backtest_reports_a_nowcast_that_loses():
    """June's final is 14 while every earlier month ends at 10: at lag 1 (vintage July, months
    final then: January-April, share 32 / 40 = 0.8) June is nowcast 8 / 0.8 = 10 while 8 was
    known. Months at lag 1: March (from Jan, Feb at 2025-04-30: 16/20, nowcast 10), April
    (Jan-Mar at 2025-05-31, nowcast 10), May (Jan-Apr at 2025-06-30, nowcast 10), June
    (Jan-May at 2025-07-31, share 40 / 50, nowcast 10 against 14): the nowcast's errors 0, 0,
    0, 28.6 -> median 0.0; the figure known's 20, 20, 20, 42.9 -> median 20.0.
    At lag 2 every figure known is already final: the nowcast (factor 1) cannot beat it, and the
    output says so (equal medians, 0.0)."""
    history = history_of("2025-01", "2025-08", BACKTEST_FIGURES)
    rows = nowcast.backtest(history, d("2025-08-31"), config())
    lag1 = next(r for r in rows if r["lag"] == 1 and r["metric"] == PI)
    assert (lag1["months"], lag1["median_abs_pct_error_observed"]) == (4, 20.0)
    assert lag1["median_abs_pct_error_nowcast"] == 0.0
    lag2 = next(r for r in rows if r["lag"] == 2 and r["metric"] == PI)
    assert lag2["median_abs_pct_error_nowcast"] == lag2["median_abs_pct_error_observed"] == 0.0


def test_budget_projection_of_a_tiny_year():
    """Fees of 2025 as of 2025-08-31. Final delivery months January-June: 90, 110, 100, 100,
    100, 100 (each known at half at lag 0 and 90 % at lag 1). July (lag 1) known 90, August
    (lag 0) known 50: every history month had 90 % and 50 %, so the nowcasts are 100 and 100
    with zero-width intervals.
    Run rate: mean of April-June = 100; September-December: 4 x 100 = 400.
    Projection: 600 + 100 + 100 + 400 = 1200.
    Spread: each final month over the mean of its 3 preceding final months: April 100/100 = 1,
    May 100/103.33 = 0.96774, June 100/100 = 1 (January-March have no 3 before them):
    sd 0.018624; variance 4 x (100 x 0.018624)^2 = 13.874, sd 3.7248; 95 %: +-1.96 x 3.7248 =
    +-7.30 -> 1192.70 to 1207.30; 80 %: +-1.2816 x 3.7248 = +-4.77 -> 1195.23 to 1204.77.
    Billing months: August booked S(Aug) - S(Jul) = (600 + 90 + 50) - (500 + 90 + 50) = 100;
    January booked C(Jan, 0) = 45; cumulative to August 740."""
    finals = {"2025-01": 90, "2025-02": 110, "2025-03": 100, "2025-04": 100, "2025-05": 100}
    figures = {m: [f / 2, f * 0.9, f] for m, f in finals.items()}
    figures |= {"2025-06": [50, 90, 100], "2025-07": [50, 90], "2025-08": [50]}
    history = history_of("2025-01", "2025-08", figures, metric=FEES)
    doc = nowcast.budget_document(history, 2025, d("2025-08-31"), load_config())
    projection = doc["projection"]
    assert projection["fees_year_end_eur"] == 1200.0
    assert projection["run_rate_eur"] == 100.0
    assert projection["months_remaining"] == 4
    assert (projection["lower_95"], projection["upper_95"]) == (1192.7, 1207.3)
    assert (projection["lower_80"], projection["upper_80"]) == (1195.23, 1204.77)
    assert projection["share_of_budget"] == round(1200 / 878000, 4)
    months = {r["month"]: r for r in doc["months"]}
    assert months["2025-08"]["fees_billed_eur"] == 100.0
    assert months["2025-01"]["fees_billed_eur"] == 45.0
    assert months["2025-08"]["fees_billed_cumulative_eur"] == 740.0
    assert months["2025-07"]["provisional"] is True
    assert months["2025-07"]["fees_known_eur"] == 90.0
    assert months["2025-07"]["fees_nowcast_eur"] == pytest.approx(100.0)
    assert months["2025-09"]["fees_known_eur"] is None
    assert doc["annual_budget_eur"] == 878000.0
    assert doc["backtest"] == []  # no past year


def test_budget_backtest_on_a_past_year():
    """2024 with every month at 100 (known in full at lag 0), as of 2025-08-31. At the end of
    April 2024 only January and February are final: no 3-month run rate, no projection (months
    1-4 left out). At the end of May (final: January-March, 300; April and May provisional,
    nowcast x 1, 200) the projection is 500 + 7 x 100 = 1200 = the year's 1200: error 0, and
    the (zero-width) intervals hold it."""
    figures = {f"2024-{m:02d}": [100] for m in range(1, 13)}
    history = history_of("2024-01", "2025-08", figures, metric=FEES)
    rows = nowcast.budget_backtest(history, 2025, d("2025-08-31"), load_config())
    assert [r["months_elapsed"] for r in rows] == list(range(5, 12))
    may = rows[0]
    assert (may["year"], may["projection_eur"], may["final_eur"]) == (2024, 1200.0, 1200.0)
    assert may["abs_pct_error"] == 0.0 and may["within_95"] and may["within_80"]


NOWCAST_KEYS = [
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
]
BACKTEST_KEYS = [
    "lag",
    "metric",
    "months",
    "median_abs_pct_error_observed",
    "median_abs_pct_error_nowcast",
    "coverage_80",
    "coverage_95",
]


def test_nowcast_command_json_contract(tmp_path):
    """SPEC §10's keys. As of 2025-05-31 (vintage May) March is final (from 2025-03-31 + 60 =
    2025-05-30), April and May are provisional. From the one final month, March, April at lag 1
    has share known C(March, 1) / C(March, now) = 3 / 2 = 1.5 (C's correction came later): the
    nowcast of April's 1 start (D, known at lag 1) is 1 / 1.5 = 0.7."""
    db = warehouse(tmp_path)
    doc = cli_json(db, "nowcast", "--as-of", "2025-05-31", "--no-suppress")
    assert list(doc) == ["as_of", "method", "months", "backtest"]
    assert doc["as_of"] == "2025-05-31"
    assert all(list(r) == NOWCAST_KEYS for r in doc["months"])
    assert all(list(r) == BACKTEST_KEYS for r in doc["backtest"])
    assert {r["scheme"] for r in doc["months"]} == {"5", "7", "10", "total"}
    assert sorted({r["month"] for r in doc["months"]}) == ["2025-04", "2025-05"]
    april = by_month(doc)[("2025-04", PI, "total")]
    assert (april["observed"], april["share_known"], april["nowcast"]) == (1, 1.5, 0.7)


def test_budget_command(tmp_path):
    """The year 2025 as of 2025-05-31: 12 months, the billing view of March is the fees billed
    in March (A and C's initiations, 46.48), of May C's correction, -23.24 plus D's initiation
    (known in May), +23.24: 0.00."""
    db = warehouse(tmp_path)
    doc = cli_json(db, "budget", "--as-of", "2025-05-31")
    assert doc["year"] == 2025
    assert len(doc["months"]) == 12
    months = {r["month"]: r for r in doc["months"]}
    assert months["2025-03"]["fees_billed_eur"] == 46.48
    assert months["2025-05"]["fees_billed_eur"] == 0.0
    assert months["2025-06"]["fees_billed_eur"] is None


def test_nowcast_and_budget_csv(tmp_path):
    """The CSVs: the nowcast's header is the keys of a `months` row, one row per provisional
    month x metric x scheme (2 x 3 x 4 = 24); the budget's one row per month of the year (12)."""
    db = warehouse(tmp_path)
    status, out = run_cli("--db", str(db), "nowcast", "--as-of", "2025-05-31", "--format", "csv")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == NOWCAST_KEYS
    assert len(rows) == 1 + 24
    status, out = run_cli("--db", str(db), "budget", "--as-of", "2025-05-31", "--format", "csv")
    assert status == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:2] == ["month", "fees_billed_eur"]
    assert [r[0] for r in rows[1:]] == [f"2025-{m:02d}" for m in range(1, 13)]
    assert rows[3][1] == "46.48"  # March's billing


def test_nowcast_before_any_line_was_known_is_refused(tmp_path):
    """As of 2025-03-30 no line is known yet (the first ones from 2025-03-31): a plain error."""
    db = warehouse(tmp_path)
    status, _ = run_cli("--db", str(db), "nowcast", "--as-of", "2025-03-30")
    assert status == 2


def test_budget_and_history_from_the_configuration(tmp_path):
    """`annual_budget_eur` and `nowcast_history_months` come from the configuration file
    ([actuarial]); a history of fewer than 2 months is refused with a plain message."""
    db = warehouse(tmp_path)
    own = tmp_path / "own.toml"
    own.write_text("[actuarial]\nannual_budget_eur = 1000\n", encoding="utf-8")
    doc = cli_json(db, "--config", str(own), "budget", "--as-of", "2025-05-31")
    assert doc["annual_budget_eur"] == 1000.0
    bad = tmp_path / "bad.toml"
    bad.write_text("[actuarial]\nnowcast_history_months = 1\n", encoding="utf-8")
    status, _ = run_cli("--db", str(db), "--config", str(bad), "nowcast")
    assert status == 2


def test_nowcast_disclosure_control(tmp_path):
    """SPEC §9 by default. As of 2025-05-31 April has 1 programme start (D, scheme 10): the
    count known is masked "<5" with its nowcast and intervals (1 / 1.5 would give it back),
    the total (1) too; schemes 5 and 7 are 0, so there is no other part to mask; the fees of
    scheme 10 and of the total are null (a count they sum is masked), those of scheme 5: 0."""
    db = warehouse(tmp_path)
    rows = by_month(cli_json(db, "nowcast", "--as-of", "2025-05-31"))
    for scheme in ("10", "total"):
        row = rows[("2025-04", PI, scheme)]
        assert (row["observed"], row["nowcast"], row["upper_95"]) == ("<5", None, None)
        assert rows[("2025-04", FEES, scheme)]["observed"] is None
    assert rows[("2025-04", PI, "7")]["observed"] == 0
    assert rows[("2025-04", FEES, "5")]["observed"] == 0


def test_nowcast_complementary_suppression():
    """Programme starts known: scheme 5: 2, 7: 6, 10: 9, total 17 (threshold 5). Scheme 5 is
    masked "<5"; it is the only masked part, so the smallest other non-zero part, scheme 7
    (6), is masked "x"; 10 and the total stay. The fees of schemes 5 and 7 become null."""

    def row(metric, scheme, observed):
        return {"month": "2025-04", "metric": metric, "scheme": scheme, "observed": observed,
                "nowcast": observed * 2, "lower_80": 1, "upper_80": 2, "lower_95": 1,
                "upper_95": 2, "share_known": 0.5}  # fmt: skip

    starts = {"5": 2, "7": 6, "10": 9, "total": 17}
    doc = {
        "months": [row(PI, s, n) for s, n in starts.items()]
        + [row(FEES, s, 10.0 * n) for s, n in starts.items()]
    }
    rows = by_month(nowcast.disclose_nowcast(doc, 5))
    assert [rows[("2025-04", PI, s)]["observed"] for s in starts] == ["<5", "x", 9, 17]
    assert rows[("2025-04", PI, "7")]["nowcast"] is None
    assert [rows[("2025-04", FEES, s)]["observed"] for s in starts] == [None, None, 90.0, 170.0]


def test_data_bounds_without_a_known_month(tmp_path):
    """Lines with no billing month and no load row (a warehouse written by hand) have no month
    they are known from (SPEC §15): no bounds, None, instead of an AttributeError."""
    from tests.sqlcase import INIT5, build, line

    db = build(tmp_path, [line("A", "2025-03-10", INIT5)])
    con = connect(db, read_only=True)
    try:
        assert con.execute("select count(*) from loads").fetchone()[0] == 0
        assert nowcast.data_bounds(con) is None
    finally:
        con.close()
