"""SPEC §7 by hand: cohort outcomes by start month and scheme, rates, and disclosure control.

The scenario, read as of 2025-06-30:
- 2024-12, 7 steps: S1 and S2 complete (7 steps 10 days apart from 12-02 and 12-03: the
  7th, 60 days later, on 2025-01-31 and 02-01), S2 has a follow-up interview; S3 has one step on 12-04 (covered to
  12-13): stopped. Completion 2/3 = 0.6667; follow-up 1/3 = 0.3333.
- 2025-01, 5 steps: P1 completes (5 steps from 01-06, the 5th on 02-15) and has a follow-up;
  P2 one step 01-08: stopped; P3 a step 01-10 then a stabilisation 01-20 (covered to 02-18)
  and a follow-up 01-25: stopped; P4 only its initiation 01-15: stopped.
  Completion 1/4 = 0.25; stabilisation 1 (P3) / 3 with a reduction = 0.3333; follow-up
  2 (P1, P3) / 4 closed = 0.5.
- 2025-01, 10 steps: Q1, 30-day steps every 30 days from 01-20 (the 6th on 06-19, covered
  to 07-18): in progress. Completion null (none closed); stabilisation 0/1 = 0.0;
  follow-up null.
- 2025-02, 7 steps: R1, only a stabilisation 02-03 (R10): stopped. Completion 0/1 = 0.0;
  stabilisation null (no programme with a reduction step; v2 counts in the numerator only
  programmes of the denominator); follow-up 0/1 = 0.0.
- 2025-03, 10 steps: T1..T6, one step each on 03-03: all stopped; T1 has a follow-up.
  Completion 0/6 = 0.0, stabilisation 0/6 = 0.0, follow-up 1/6 = 0.1667.
"""

from __future__ import annotations

import pytest

from tests.sqlcase import (
    FOLLOW,
    INIT5,
    INIT7,
    INIT10,
    RED10,
    RED30,
    STAB,
    build,
    cli_json,
    every,
    line,
    programme,
    query,
    run_cli,
)

KEYS = [
    "initiation_month",
    "scheme",
    "programmes",
    "completed",
    "stopped",
    "in_progress",
    "completion_rate",
    "stabilisation_rate",
    "follow_up_rate",
]
# SPEC v2 §10: cohort rows add, per N, the BZRA-free fields (tests/test_bzra.py by hand).
BZRA_KEYS = [f"bzra_free_{n}d{s}" for n in (90, 180, 365) for s in ("_observable", "", "_rate")]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    lines = (
        programme("S1", "2024-12-02", INIT7, every("2024-12-02", 10, 7, RED10))
        + programme("S2", "2024-12-03", INIT7, every("2024-12-03", 10, 7, RED10))
        + [line("S2", "2025-01-02", FOLLOW)]
        + programme("S3", "2024-12-04", INIT7, [("2024-12-04", RED10)])
        + programme("P1", "2025-01-06", INIT5, every("2025-01-06", 10, 5, RED10))
        + [line("P1", "2025-02-15", FOLLOW)]
        + programme("P2", "2025-01-08", INIT5, [("2025-01-08", RED10)])
        + programme("P3", "2025-01-10", INIT5, [("2025-01-10", RED10), ("2025-01-20", STAB)])
        + [line("P3", "2025-01-25", FOLLOW)]
        + [line("P4", "2025-01-15", INIT5)]
        + programme("Q1", "2025-01-20", INIT10, every("2025-01-20", 30, 6, RED30))
        + programme("R1", "2025-02-03", INIT7, [("2025-02-03", STAB)])
        + [
            row
            for t in range(1, 7)
            for row in programme(f"T{t}", "2025-03-03", INIT10, [("2025-03-03", RED10)])
        ]
        + [line("T1", "2025-03-03", FOLLOW)]
        # A delivery on 2025-06-30 so that the default as-of date is 2025-06-30.
        + [line("Z", "2025-06-30", INIT10)]
    )
    return build(tmp_path_factory.mktemp("cohorts"), lines)


def test_cohort_rows(db):
    doc = cli_json(db, "cohorts", "--as-of", "2025-06-30", "--no-suppress")
    assert doc["as_of"] == "2025-06-30"
    rows = [[c[k] for k in KEYS] for c in doc["cohorts"]]
    assert rows == [
        ["2024-12", "7", 3, 2, 1, 0, 0.6667, 0.0, 0.3333],
        ["2025-01", "5", 4, 1, 3, 0, 0.25, 0.3333, 0.5],
        ["2025-01", "10", 1, 0, 0, 1, None, 0.0, None],
        ["2025-02", "7", 1, 0, 1, 0, 0.0, None, 0.0],
        ["2025-03", "10", 6, 0, 6, 0, 0.0, 0.0, 0.1667],
        ["2025-06", "10", 1, 0, 0, 1, None, None, None],
    ]
    assert all(list(c) == KEYS + BZRA_KEYS for c in doc["cohorts"])
    # No BZRA delivery in this warehouse: nothing observable, the counts null, never 0.
    assert {(c["bzra_free_90d_observable"], c["bzra_free_90d"]) for c in doc["cohorts"]} == {
        (0, None)
    }


def test_cohorts_sorted_by_month_then_scheme_numerically(db):
    doc = cli_json(db, "cohorts", "--no-suppress")
    order = [(c["initiation_month"], c["scheme"]) for c in doc["cohorts"]]
    # "5" before "10" in 2025-01 (a string sort would put "10" first).
    assert order[1:3] == [("2025-01", "5"), ("2025-01", "10")]


def test_cohorts_depend_on_the_as_of_date(db):
    # As of 2025-01-31: P1 has 3 steps (not completed), P2 is covered to 01-17 (limit 02-16),
    # P3 to 02-18, P4 started 01-15 (limit 02-14): all four in progress. S3 (covered to
    # 12-13, limit 2025-01-12) is stopped; S1 completed on 01-31, its last day; S2, due on
    # 02-01, is in progress. Later cohorts do not exist.
    doc = cli_json(db, "cohorts", "--as-of", "2025-01-31", "--no-suppress")
    rows = {(c["initiation_month"], c["scheme"]): c for c in doc["cohorts"]}
    assert set(rows) == {("2024-12", "7"), ("2025-01", "5"), ("2025-01", "10")}
    p = rows[("2025-01", "5")]
    assert (p["completed"], p["stopped"], p["in_progress"]) == (0, 0, 4)
    assert p["completion_rate"] is None
    s = rows[("2024-12", "7")]
    assert (s["completed"], s["stopped"], s["in_progress"]) == (1, 1, 1)
    assert s["completion_rate"] == 0.5


def test_disclosure_control_by_default(db):
    # Threshold 5: counts 1..4 become "<5", 0 stays 0; a rate whose denominator is below 5
    # is null. 2025-01/5: 4 programmes, 1 completed, 3 stopped; its rates have denominators
    # 4 (closed) and 3 (with a reduction): null. 2025-03/10: 6 programmes, 6 closed and 6
    # with a reduction: completion 0/6 and stabilisation 0/6 are shown; the follow-up rate
    # 1/6 is null (SPEC §9 v2: a numerator from 1 to 4; v1 showed 0.1667).
    doc = cli_json(db, "cohorts", "--as-of", "2025-06-30")
    rows = {(c["initiation_month"], c["scheme"]): c for c in doc["cohorts"]}
    p = rows[("2025-01", "5")]
    assert [p[k] for k in KEYS[2:]] == ["<5", "<5", "<5", 0, None, None, None]
    t = rows[("2025-03", "10")]
    assert [t[k] for k in KEYS[2:]] == [6, 0, 6, 0, 0.0, 0.0, None]


def test_cohorts_mart_denominators(db):
    rows = query(
        db,
        "select * from mart_cohorts where initiation_month = '2025-01' and scheme = 5",
        as_of="2025-06-30",
    )
    (row,) = rows
    assert (row["n_closed"], row["n_with_reduction"]) == (4, 3)
    assert row["n_with_reduction_and_stabilisation"] == 1
    assert row["n_closed_with_follow_up"] == 2


def test_cohorts_csv(db, tmp_path):
    out = tmp_path / "cohorts.csv"
    status, _ = run_cli(
        "--db", str(db), "cohorts", "--as-of", "2025-06-30", "--format", "csv",
        "--output", str(out), "--no-suppress",
    )  # fmt: skip
    assert status == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "as_of," + ",".join(KEYS + BZRA_KEYS)
    no_bzra = ",0,," * 3  # observable 0, BZRA-free and rate empty, at 90, 180 and 365 days
    assert lines[1] == "2025-06-30,2024-12,7,3,2,1,0,0.6667,0.0,0.3333" + no_bzra
    assert lines[3] == "2025-06-30,2025-01,10,1,0,0,1,,0.0," + no_bzra


def test_same_day_initiations_do_not_lower_the_completion_rate(tmp_path):
    # Cohort 2025-01 (SPEC v2 §5; issue 14's reproduction): A's 5-step initiation is billed
    # with quantity 2, B's on two lines; A, B and C complete (5 steps every 10 days), D stops
    # (one step 01-09). One programme each: completed 3, stopped 1, completion 3/4 = 0.75 (v1
    # opened an empty programme for A and for B, stopped on its start: 3/6 = 0.5).
    # E bills the 5- and 10-step initiations the same day, then ten 10-capsule steps: one
    # 10-step programme, completed (v1: an empty 5-step one, stopped, and a 10-step one).
    lines = (
        [line("A", "2025-01-06", INIT5, 2)]
        + [line("A", day, cnk) for day, cnk in every("2025-01-06", 10, 5, RED10)]
        + [line("B", "2025-01-07", INIT5), line("B", "2025-01-07", INIT5)]
        + [line("B", day, cnk) for day, cnk in every("2025-01-07", 10, 5, RED10)]
        + programme("C", "2025-01-08", INIT5, every("2025-01-08", 10, 5, RED10))
        + programme("D", "2025-01-09", INIT5, [("2025-01-09", RED10)])
        + [line("E", "2025-01-10", INIT5), line("E", "2025-01-10", INIT10)]
        + [line("E", day, cnk) for day, cnk in every("2025-01-10", 10, 10, RED10)]
        + [line("Z", "2025-06-30", INIT10)]
    )
    db = build(tmp_path, lines)
    doc = cli_json(db, "cohorts", "--as-of", "2025-06-30", "--no-suppress")
    rows = {(c["initiation_month"], c["scheme"]): [c[k] for k in KEYS[2:7]] for c in doc["cohorts"]}
    assert rows[("2025-01", "5")] == [4, 3, 1, 0, 0.75]
    assert rows[("2025-01", "10")] == [1, 1, 0, 0, 1.0]


def test_stabilisation_rate_counts_only_programmes_with_a_reduction(tmp_path):
    # Cohort 2025-03, 10 steps: T1 a reduction step only; T2 and T3 a stabilisation step only
    # (R10); T4 a reduction and a stabilisation step. SPEC v2 §7: of the 2 programmes with a
    # reduction step (T1, T4), 1 has a stabilisation step: 0.5 (v1: 3 / 2 = 1.5).
    lines = (
        programme("T1", "2025-03-03", INIT10, [("2025-03-03", RED10)])
        + programme("T2", "2025-03-03", INIT10, [("2025-03-03", STAB)])
        + programme("T3", "2025-03-04", INIT10, [("2025-03-04", STAB)])
        + programme("T4", "2025-03-05", INIT10, [("2025-03-05", RED10), ("2025-03-15", STAB)])
    )
    db = build(tmp_path, lines)
    (row,) = query(db, "select * from mart_cohorts")
    assert (row["n_with_reduction"], row["n_with_reduction_and_stabilisation"]) == (2, 1)
    assert row["stabilisation_rate"] == 0.5
    rates = query(db, "select max(stabilisation_rate) as highest from mart_cohorts")
    assert rates[0]["highest"] <= 1
