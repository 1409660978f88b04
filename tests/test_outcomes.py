"""SPEC §16 by hand: cumulative incidence of completion and of stop (Aalen–Johansen, completion
and stop as competing events, programmes in progress censored), mart_outcome_times and
`benzo-monitor outcomes`.

The Aalen–Johansen estimator, at each distinct time t_j with n_j programmes at risk (time ≥ t_j),
d_cj completions and d_sj stops:
    S(t_j) = S(t_j−1) · (1 − (d_cj + d_sj) / n_j)          (everything-free, Kaplan–Meier)
    F_c(t) = Σ_{t_j ≤ t} S(t_j−1) · d_cj / n_j,  F_s(t) likewise with d_sj.
Programmes censored at t_j are still at risk at t_j.
"""

from __future__ import annotations

import pytest

from etl.outcomes import cumulative_incidence
from tests.sqlcase import (
    INIT5,
    INIT10,
    RED10,
    RED30,
    build,
    cli_json,
    every,
    line,
    programme,
    run_cli,
)
from tests.sqlcase import query as sql_rows


def at(rows: list[dict], day: int, event: str) -> dict:
    (row,) = [r for r in rows if r["day"] == day and r["event"] == event]
    return row


def test_worked_table_six_programmes():
    """Six programmes: completions at days 100 and 200, a stop at 150, censored at 50, 250, 300.

    | t   | n at risk | event       | S(t−) | F_c              | F_s             | S(t)  |
    | 50  | 6         | censored    | 1     | 0                | 0               | 1     |
    | 100 | 5         | completion  | 1     | 1·1/5 = 0.2      | 0               | 0.8   |
    | 150 | 4         | stop        | 0.8   | 0.2              | 0.8·1/4 = 0.2   | 0.6   |
    | 200 | 3         | completion  | 0.6   | 0.2+0.6/3 = 0.4  | 0.2             | 0.4   |
    | 250 | 2         | censored    |       | 0.4              | 0.2             | 0.4   |
    | 300 | 1         | censored    |       | 0.4              | 0.2             | 0.4   |
    Read at 90 days: F_c = F_s = 0, at risk 5 (times ≥ 90: 100, 150, 200, 250, 300).
    At 180: F_c 0.2, F_s 0.2, at risk 3. At 270: F_c 0.4, F_s 0.2, at risk 1 (300).
    At 360: past the last time (300, censored, S = 0.4 > 0): not known, null; at risk 0.
    (A naive rate over the closed ones, 2/3, would ignore the three still running.)
    """
    rows = cumulative_incidence(
        [100, 200, 150, 50, 250, 300],
        ["completion", "completion", "stop", "censored", "censored", "censored"],
    )
    assert [(r["day"], r["event"]) for r in rows] == [
        (d, e) for d in (90, 180, 270, 360) for e in ("completion", "stop")
    ]
    expected = {
        (90, "completion"): (0.0, 5),
        (90, "stop"): (0.0, 5),
        (180, "completion"): (0.2, 3),
        (180, "stop"): (0.2, 3),
        (270, "completion"): (0.4, 1),
        (270, "stop"): (0.2, 1),
        (360, "completion"): (None, 0),
        (360, "stop"): (None, 0),
    }
    for (day, event), (cif, at_risk) in expected.items():
        row = at(rows, day, event)
        assert row["cumulative_incidence"] == cif, (day, event)
        assert row["at_risk"] == at_risk, (day, event)
        if cif:
            assert row["lower_95"] < cif < row["upper_95"]
        elif cif is None:
            assert row["lower_95"] is None and row["upper_95"] is None


def test_confidence_interval_at_the_first_event_by_hand():
    """The 95 % interval of F_c at 180 days in the six-programme table: one event so far.

    Aalen's variance (Pintilie 2006, eq. 4.5) after the first event, at t = 100 with n = 5,
    d = 1: only the term S(t−)² · d (n − d) / ((n − 1) n²) = 1 · 1 · 4 / (4 · 25) = 0.04, so
    SE = 0.2. On the log(−log) scale: θ = ln(−ln 0.2) = ln 1.609438 = 0.475885,
    SE_θ = SE / (F · |ln F|) = 0.2 / (0.2 · 1.609438) = 0.621335; 1.96 · SE_θ = 1.217817.
    Bounds exp(−exp(θ ± 1.217817)): exp(−exp(1.693702)) = exp(−5.43967) = 0.0043 and
    exp(−exp(−0.741932)) = exp(−0.476183) = 0.6212 (rounded to 4 decimals: 0.6211 from the
    unrounded figures; we accept ±0.0001).
    """
    rows = cumulative_incidence(
        [100, 200, 150, 50, 250, 300],
        ["completion", "completion", "stop", "censored", "censored", "censored"],
    )
    row = at(rows, 180, "completion")
    assert row["lower_95"] == pytest.approx(0.0043, abs=1e-4)
    assert row["upper_95"] == pytest.approx(0.6212, abs=1e-4)


def test_ties_of_both_kinds_on_one_day_are_counted_together_and_deterministic():
    """Five programmes, nothing censored: a stop on day 19; two completions and a stop on day
    40; a completion on day 49.

    t = 19: n 5, F_s = 1/5 = 0.2, S = 0.8. t = 40: n 4, F_c = 0.8 · 2/4 = 0.4,
    F_s = 0.2 + 0.8 · 1/4 = 0.4, S = 0.8 · 1/4 = 0.2. t = 49: n 1, F_c = 0.4 + 0.2 · 1 = 0.6,
    S = 0. Everybody had an event: the curves are final, so at 360 days F_c = 0.6 = 3/5, the
    naive completion rate, and F_s = 0.4. The same input gives the same figures every time
    (no random jitter of tied days).
    """
    times = [19, 40, 40, 40, 49]
    events = ["stop", "completion", "completion", "stop", "completion"]
    first = cumulative_incidence(times, events, days=(30, 45, 360))
    assert at(first, 30, "stop")["cumulative_incidence"] == 0.2
    assert at(first, 45, "completion")["cumulative_incidence"] == 0.4
    assert at(first, 45, "stop")["cumulative_incidence"] == 0.4
    assert at(first, 360, "completion")["cumulative_incidence"] == 0.6
    assert at(first, 360, "stop")["cumulative_incidence"] == 0.4
    assert all(cumulative_incidence(times, events, days=(30, 45, 360)) == first for _ in range(3))


def test_one_kind_of_event_only_and_nothing_yet():
    """No stop at all: no competing event, F_c = 1 − Kaplan–Meier. Three programmes: completion
    at 10, censored at 20 and 30: at 25, F_c = 1/3 = 0.3333, F_s = 0. With nothing but
    censored programmes both curves are 0 while anyone is observed (day 25 ≤ 30), and unknown
    after (day 40)."""
    rows = cumulative_incidence([10, 20, 30], ["completion", "censored", "censored"], days=(25,))
    assert at(rows, 25, "completion")["cumulative_incidence"] == 0.3333
    assert at(rows, 25, "stop")["cumulative_incidence"] == 0.0
    rows = cumulative_incidence([10, 20, 30], ["censored"] * 3, days=(25, 40))
    assert at(rows, 25, "completion")["cumulative_incidence"] == 0.0
    assert at(rows, 40, "stop")["cumulative_incidence"] is None


# --- on a warehouse: mart_outcome_times and the command ---------------------------------------

START = "2025-01-06"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Scheme 5, all started 2025-01-06, closed by the as-of date 2025-06-30:
    - A, C: 5 reductions of 10 capsules every 10 days: the 5th on day 40 -> completed, day 40;
    - B: 2 reductions (days 0, 10), covered to day 19 -> stopped, stop date day 19;
    - D: reductions of 10 on day 1 (covers 1-10) and of 30 on day 11 (covers 11-40): stopped,
      day 40 (a tie with A and C's completions);
    - E: 5 reductions every 10 days from day 9: completed on day 49.
    Scheme 10, in progress on 2025-06-30 (censored at min(as-of, covered_until)):
    - F: start 2025-05-01, a 30-capsule step on 06-20, covered to 07-19 -> censored at the
      as-of date, day 60;
    - G: start 2025-06-01, a 10-capsule step on 06-01, covered to 06-10 (06-10 + 30 ≥ 06-30:
      in progress) -> censored at covered_until, day 9;
    - H: only an initiation on 2025-06-20 -> no covered_until, censored on its start, day 0.
    """
    lines = (
        programme("A", START, INIT5, every(START, 10, 5, RED10))
        + programme("C", START, INIT5, every(START, 10, 5, RED10))
        + programme("B", START, INIT5, every(START, 10, 2, RED10))
        + programme("D", START, INIT5, [("2025-01-07", RED10), ("2025-01-17", RED30)])
        + programme("E", START, INIT5, every("2025-01-15", 10, 5, RED10))
        + programme("F", "2025-05-01", INIT10, [("2025-06-20", RED30)])
        + programme("G", "2025-06-01", INIT10, [("2025-06-01", RED10)])
        + [line("H", "2025-06-20", INIT10)]
    )
    return build(tmp_path_factory.mktemp("outcomes"), lines)


def test_mart_outcome_times(db):
    rows = sql_rows(
        db,
        "select patient_id, outcome_event, days_since_start, start_year "
        "from mart_outcome_times join core_programmes using (programme_id) order by patient_id",
        "2025-06-30",
    )
    assert [(r["patient_id"], r["outcome_event"], r["days_since_start"]) for r in rows] == [
        ("A", "completion", 40),
        ("B", "stop", 19),
        ("C", "completion", 40),
        ("D", "stop", 40),
        ("E", "completion", 49),
        ("F", "censored", 60),
        ("G", "censored", 9),
        ("H", "censored", 0),
    ]
    assert {r["start_year"] for r in rows} == {2025}


def test_closed_cohort_at_360_days_equals_the_naive_rate(db):
    """Scheme 5 is closed (nothing censored): F_c(360) = 0.6 (worked in
    test_ties_of_both_kinds_on_one_day_are_counted_together_and_deterministic) = 3 completed
    / (3 + 2 stopped), the naive §7 completion rate of its one cohort (2025-01)."""
    doc = cli_json(db, "outcomes", "--as-of", "2025-06-30", "--no-suppress")
    assert doc["as_of"] == "2025-06-30"
    assert doc["days"] == [90, 180, 270, 360]
    assert "Aalen-Johansen" in doc["method"]
    curve = [c for c in doc["curves"] if c["scheme"] == "5" and c["start_year"] is None]
    completion_360 = at(curve, 360, "completion")
    assert completion_360["cumulative_incidence"] == 0.6
    assert at(curve, 360, "stop")["cumulative_incidence"] == 0.4
    assert completion_360["programmes"] == 5 and completion_360["at_risk"] == 0
    cohorts = cli_json(db, "cohorts", "--as-of", "2025-06-30", "--no-suppress")["cohorts"]
    (jan5,) = [c for c in cohorts if c["scheme"] == "5"]
    assert jan5["completion_rate"] == completion_360["cumulative_incidence"]
    # Per start year too: 2025 is the only one, the same figures.
    year = [c for c in doc["curves"] if c["scheme"] == "5" and c["start_year"] == 2025]
    assert at(year, 360, "completion")["cumulative_incidence"] == 0.6


def test_programmes_in_progress_are_censored(db):
    """Scheme 10: F, G, H censored at days 60, 9 and 0, no event. The last time is 60
    (censored, S = 1 > 0), so 90 days is past the follow-up: null, at risk 0."""
    doc = cli_json(db, "outcomes", "--as-of", "2025-06-30", "--no-suppress")
    curve = [c for c in doc["curves"] if c["scheme"] == "10" and c["start_year"] is None]
    assert at(curve, 90, "completion")["cumulative_incidence"] is None
    assert at(curve, 90, "completion")["programmes"] == 3
    # A scheme without programmes keeps its all-years rows (a stable layout), estimates null.
    seven = [c for c in doc["curves"] if c["scheme"] == "7"]
    assert len(seven) == 8 and {c["start_year"] for c in seven} == {None}
    assert {(c["programmes"], c["cumulative_incidence"]) for c in seven} == {(0, None)}


def test_disclosure_and_csv(db, tmp_path):
    """Under disclosure control (the default), scheme 10 has 3 programmes (< 5): counts shown
    as "<5"; scheme 5 has 5, its estimates stay. The CSV has one row per curve point."""
    doc = cli_json(db, "outcomes", "--as-of", "2025-06-30")
    ten = [c for c in doc["curves"] if c["scheme"] == "10"]
    assert {c["programmes"] for c in ten} == {"<5"}
    five = [c for c in doc["curves"] if c["scheme"] == "5" and c["start_year"] is None]
    assert at(five, 360, "completion")["cumulative_incidence"] == 0.6
    out = tmp_path / "outcomes.csv"
    status, _ = run_cli(
        "--db", str(db), "outcomes", "--as-of", "2025-06-30", "--format", "csv", "--output",
        str(out),
    )  # fmt: skip
    assert status == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].split(",")[:6] == ["as_of", "scheme", "start_year", "day", "event",
                                       "cumulative_incidence"]  # fmt: skip
    assert len(lines) == 1 + len(doc["curves"])


def test_agrees_with_the_step_by_step_formula_on_many_ties():
    """400 programmes on days 0-119 (seeded; many ties of completions, stops and censorings on one day):
    the estimates equal the module docstring's formula written out here, day by day, with the
    events of a day counted together and the censored of a day still at risk that day."""
    import random
    from collections import Counter

    rng = random.Random(20250702)
    times = [rng.randrange(0, 120) for _ in range(400)]
    events = [rng.choice(["completion", "stop", "censored", "censored"]) for _ in range(400)]
    by_day: dict[int, Counter] = {}
    for day, event in zip(times, events, strict=True):
        by_day.setdefault(day, Counter())[event] += 1
    survival, completion, stop, at_risk, expected = 1.0, 0.0, 0.0, 400, {}
    for day in sorted(by_day):
        counts = by_day[day]
        completion += survival * counts["completion"] / at_risk
        stop += survival * counts["stop"] / at_risk
        survival *= 1 - (counts["completion"] + counts["stop"]) / at_risk
        at_risk -= sum(counts.values())
        expected[day] = (round(completion, 4), round(stop, 4))
    last_day = max(times)
    days = (0, 17, 45, 90, last_day, last_day + 1)
    rows = cumulative_incidence(times, events, days)
    # Past the last day, with programmes still censored (S > 0): not known.
    assert survival > 0 and at(rows, last_day + 1, "completion")["cumulative_incidence"] is None
    for day in days[:-1]:
        last = max(d for d in expected if d <= day)
        assert at(rows, day, "completion")["cumulative_incidence"] == expected[last][0], day
        assert at(rows, day, "stop")["cumulative_incidence"] == expected[last][1], day
