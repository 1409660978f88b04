"""SPEC §4-§5 by hand: netting, events, ordering, programmes, coverage, completion and stops.

Each test builds a few billing lines, works the expected figures out from the spec in the
comments, and checks them against the core views and the data-quality mart.
"""

from __future__ import annotations

import datetime as dt
import random

from etl.base.warehouse import connect
from tests.sqlcase import (
    INIT5,
    INIT7,
    INIT10,
    RED10,
    RED20,
    RED30,
    STAB,
    build,
    d,
    every,
    findings,
    line,
    one,
    programme,
    query,
)


def events(db, as_of=None):
    """(patient, delivery date, kind, programme_number) of every event, in event order."""
    rows = query(
        db,
        "select * from core_programme_events order by patient_id, patient_event_number",
        as_of,
    )
    return [
        (r["patient_id"], r["delivery_date"].isoformat(), r["kind"], r["programme_number"])
        for r in rows
    ]


def programmes(db, as_of=None):
    """core_programmes rows by programme_id."""
    rows = query(db, "select * from core_programmes", as_of)
    return {r["programme_id"]: r for r in rows}


# --- §4 netting and events ----------------------------------------------------------------


def test_a_line_with_quantity_2_is_two_events(tmp_path):
    # Two 10-capsule reduction steps billed on one line: 2 events, steps 1 and 2.
    db = build(tmp_path, [line("A", "2025-03-03", INIT10), line("A", "2025-03-03", RED10, 2)])
    rows = query(
        db,
        "select kind, kind_number, unit_number from core_programme_events "
        "where kind = 'reduction' order by patient_event_number",
    )
    assert [(r["kind_number"], r["unit_number"]) for r in rows] == [(1, 1), (2, 2)]


def test_cancelled_and_rebilled_line_is_one_event(tmp_path):
    # +1, -1 (cancellation), +1 (billed again) on the same day: net 1, one event.
    # +1, -1 on another day: net 0, no event and no data-quality finding.
    db = build(
        tmp_path,
        [
            line("A", "2025-03-03", INIT10),
            line("A", "2025-03-03", RED10),
            line("A", "2025-03-03", RED10, -1),
            line("A", "2025-03-03", RED10),
            line("A", "2025-03-13", RED10),
            line("A", "2025-03-13", RED10, -1),
        ],
    )
    assert events(db) == [
        ("A", "2025-03-03", "initiation", 1),
        ("A", "2025-03-03", "reduction", 1),
    ]
    assert query(db, "select * from mart_data_quality_unmatched_corrections") == []


def test_unmatched_correction_is_a_finding_not_an_event(tmp_path):
    # A correction (-1) on 2025-03-14 with no line to cancel that day: net -1, a data-quality
    # finding. Netting is per delivery date, so the +1 of 2025-03-13 stays an event.
    db = build(
        tmp_path,
        [
            line("A", "2025-03-03", INIT10),
            line("A", "2025-03-13", RED10),
            line("A", "2025-03-14", RED10, -1),
        ],
    )
    assert [e[2] for e in events(db)] == ["initiation", "reduction"]
    (finding,) = query(db, "select * from mart_data_quality_unmatched_corrections")
    assert finding["patient_id"] == "A"
    assert finding["delivery_date"] == d("2025-03-14")
    assert finding["net_quantity"] == -1
    assert finding["n_lines"] == 1
    assert finding["n_correction_lines"] == 1
    assert finding["kind"] == "reduction"
    month = one(db, "select * from mart_data_quality_months where month = '2025-03'")
    assert month["n_unmatched_corrections"] == 1
    assert month["n_lines"] == 3
    assert month["n_events"] == 2


def test_event_order_is_date_then_kind(tmp_path):
    # Same day: initiation, then reduction, then stabilisation, then follow-up, whatever the
    # order of the lines. The reduction on the initiation's day belongs to the programme.
    db = build(
        tmp_path,
        [
            line("A", "2025-03-03", "5522024"),
            line("A", "2025-03-03", STAB),
            line("A", "2025-03-03", RED10),
            line("A", "2025-03-03", INIT7),
        ],
    )
    assert [e[2] for e in events(db)] == ["initiation", "reduction", "stabilisation", "follow_up"]
    assert all(e[3] == 1 for e in events(db))


def test_same_day_initiations_at_two_pharmacies_are_one_programme(tmp_path):
    # SPEC v2 §5 (v1 opened two programmes here). Two 5-step initiations on the same day at
    # PH2 and PH1: one programme. In the order of §4.3 (same CNK, then pharmacy) PH1's comes
    # first and opens it (its opening initiation); PH2's is a repeat initiation, and as the
    # last initiation of the start day it sets the programme's pharmacy: PH2.
    db = build(
        tmp_path,
        [line("A", "2025-03-03", INIT5, pharmacy="PH2"), line("A", "2025-03-03", INIT5)],
    )
    found = programmes(db)
    assert set(found) == {"A#1"}
    assert found["A#1"]["pharmacy_id"] == "PH2"
    rows = query(
        db,
        "select pharmacy_id, is_opening_initiation, is_repeat_initiation "
        "from core_programme_events order by patient_event_number",
    )
    assert [tuple(r.values()) for r in rows] == [("PH1", True, False), ("PH2", False, True)]


def test_events_after_the_as_of_date_do_not_exist(tmp_path):
    db = build(tmp_path, programme("A", "2025-03-03", INIT5, every("2025-03-03", 10, 3, RED10)))
    # Deliveries 03-03 (initiation and step 1), 03-13, 03-23; as of 03-20: three events.
    assert len(events(db, as_of="2025-03-20")) == 3
    assert len(events(db)) == 4


# --- §5 programmes -------------------------------------------------------------------------


def test_an_initiation_after_a_stop_opens_a_repeat_programme(tmp_path):
    # 10-step initiation on 01-06 with two steps (covered to 01-25), then a 5-step initiation
    # on 03-03: programme 1 is no longer running (03-03 > 01-25 + 30 = 02-24), so 03-03 opens
    # programme 2, a repeat programme. Programme 1 (10 steps) holds 2 reductions, programme 2
    # (5 steps) holds 3.
    db = build(
        tmp_path,
        programme("A", "2025-01-06", INIT10, every("2025-01-06", 10, 2, RED10))
        + programme("A", "2025-03-03", INIT5, every("2025-03-03", 10, 3, RED10)),
    )
    found = programmes(db)
    assert set(found) == {"A#1", "A#2"}
    assert (found["A#1"]["scheme"], found["A#1"]["n_reduction_events"]) == (10, 2)
    assert (found["A#2"]["scheme"], found["A#2"]["n_reduction_events"]) == (5, 3)
    assert found["A#2"]["start_date"] == d("2025-03-03")
    assert found["A#2"]["is_repeat_programme"]
    assert not found["A#1"]["is_repeat_programme"]
    # Step numbers restart in the new programme: 1, 2 then 1, 2, 3.
    rows = query(
        db,
        "select kind_number from core_programme_events where kind = 'reduction' "
        "order by patient_event_number",
    )
    assert [r["kind_number"] for r in rows] == [1, 2, 1, 2, 3]


def test_events_before_the_first_initiation_are_unassigned(tmp_path):
    db = build(
        tmp_path,
        [
            line("A", "2025-03-01", RED10),  # before A's initiation: unassigned
            line("A", "2025-03-03", INIT5),
            line("A", "2025-03-03", RED10),
            line("B", "2025-03-05", STAB),  # B never initiates: unassigned
        ],
    )
    assert events(db) == [
        ("A", "2025-03-01", "reduction", 0),
        ("A", "2025-03-03", "initiation", 1),
        ("A", "2025-03-03", "reduction", 1),
        ("B", "2025-03-05", "stabilisation", 0),
    ]
    rows = query(db, "select * from core_programme_events where is_unassigned")
    assert all(r["programme_id"] is None and r["kind_number"] is None for r in rows)
    # The programme's step 1 is the reduction of 03-03, not the unassigned one.
    assert programmes(db)["A#1"]["n_reduction_events"] == 1


def test_completed_on_the_delivery_of_reduction_number_scheme(tmp_path):
    # 5-step scheme, a reduction every 10 days from 2025-01-06: step 5 on 2025-02-15. A sixth
    # reduction (2025-02-25, rule R03) does not move the completion date.
    db = build(tmp_path, programme("A", "2025-01-06", INIT5, every("2025-01-06", 10, 6, RED10)))
    found = programmes(db)["A#1"]
    assert found["completed_date"] == d("2025-02-15")
    assert found["status"] == "completed"
    assert found["stop_date"] is None
    # As of the day before step 5, it is in progress.
    assert programmes(db, as_of="2025-02-14")["A#1"]["status"] == "in_progress"


def test_coverage_is_carried_forward_after_an_early_delivery(tmp_path):
    # 30-capsule step on 2025-01-01 covers 01-01..01-30. The next one, delivered early on
    # 01-25, starts on 01-31 (the day after) and covers 01-31..03-01 (30 days).
    # Without carrying forward it would end on 02-23 and the programme would be stopped from
    # 03-26 (02-23 + 30 + 1); carried forward, the limit is 03-01 + 30 = 03-31.
    db = build(
        tmp_path,
        programme("A", "2025-01-01", INIT7, [("2025-01-01", RED30), ("2025-01-25", RED30)]),
    )
    rows = query(
        db,
        "select coverage_start_date, covered_until_date from core_programme_events "
        "where is_step order by patient_event_number",
    )
    assert [(r["coverage_start_date"], r["covered_until_date"]) for r in rows] == [
        (d("2025-01-01"), d("2025-01-30")),
        (d("2025-01-31"), d("2025-03-01")),
    ]
    assert programmes(db, as_of="2025-03-26")["A#1"]["status"] == "in_progress"
    assert programmes(db, as_of="2025-03-31")["A#1"]["status"] == "in_progress"
    stopped = programmes(db, as_of="2025-04-01")["A#1"]
    assert (stopped["status"], stopped["stop_date"]) == ("stopped", d("2025-03-01"))


def test_coverage_after_a_late_delivery_and_a_stabilisation(tmp_path):
    # 10 capsules on 01-06 -> 01-06..01-15; early on 01-13 -> 01-16..01-25; late on 02-02
    # (20 capsules) -> 02-02..02-21; stabilisation (30 days) on 02-20 -> 02-22..03-23.
    db = build(
        tmp_path,
        programme(
            "A",
            "2025-01-06",
            INIT10,
            [
                ("2025-01-06", RED10),
                ("2025-01-13", RED10),
                ("2025-02-02", RED20),
                ("2025-02-20", STAB),
            ],
        ),
    )
    rows = query(
        db,
        "select covered_until_date from core_programme_events where is_step "
        "order by patient_event_number",
    )
    assert [r["covered_until_date"] for r in rows] == [
        d("2025-01-15"),
        d("2025-01-25"),
        d("2025-02-21"),
        d("2025-03-23"),
    ]
    assert programmes(db)["A#1"]["covered_until_date"] == d("2025-03-23")
    # Each step's previous reduction/stabilisation step (rules R08-R10 read it).
    rows = query(
        db,
        "select previous_step_kind, previous_step_delivery_date, previous_step_capsules, "
        "n_prior_reductions from core_programme_events where is_step "
        "order by patient_event_number",
    )
    assert [tuple(r.values()) for r in rows] == [
        (None, None, None, 0),
        ("reduction", d("2025-01-06"), 10, 1),
        ("reduction", d("2025-01-13"), 10, 2),
        ("reduction", d("2025-02-02"), 20, 3),
    ]


def test_stop_exactly_at_the_grace_limit_and_one_day_past_it(tmp_path):
    # One 20-capsule step on 2025-05-05: covered until 05-24. grace_days 30: the limit is
    # 06-23. As of 06-23 (as-of = covered_until + 30) still in progress; as of 06-24 stopped,
    # stop date 05-24.
    db = build(tmp_path, programme("A", "2025-05-05", INIT5, [("2025-05-05", RED20)]))
    at_limit = programmes(db, as_of="2025-06-23")["A#1"]
    assert (at_limit["status"], at_limit["stop_date"]) == ("in_progress", None)
    past = programmes(db, as_of="2025-06-24")["A#1"]
    assert (past["status"], past["stop_date"]) == ("stopped", d("2025-05-24"))
    assert past["end_date"] == d("2025-05-24")


def test_stop_without_any_step_is_dated_at_the_start(tmp_path):
    # Only the initiation on 2025-05-05: stopped when as-of > 05-05 + 30 = 06-04.
    db = build(tmp_path, [line("A", "2025-05-05", INIT10)])
    assert programmes(db, as_of="2025-06-04")["A#1"]["status"] == "in_progress"
    past = programmes(db, as_of="2025-06-05")["A#1"]
    assert (past["status"], past["stop_date"]) == ("stopped", d("2025-05-05"))


def test_a_follow_up_does_not_extend_coverage(tmp_path):
    # A follow-up interview covers no days: the stop limit stays covered_until + 30.
    db = build(
        tmp_path,
        programme("A", "2025-05-05", INIT5, [("2025-05-05", RED10), ("2025-06-10", "5522024")]),
    )
    # Covered until 05-14; limit 06-13; as of 06-14 stopped on 05-14.
    assert programmes(db, as_of="2025-06-14")["A#1"]["stop_date"] == d("2025-05-14")


def test_closed_form_coverage_matches_the_recursion(tmp_path):
    # The view uses a closed form of the coverage recursion (see 40_core_programme_events.sql);
    # check it against the recursion itself on random programmes.
    rng = random.Random(7)
    lines, expected = [], {}
    for p in range(40):
        patient = f"P{p:02d}"
        day = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(30))
        lines.append(line(patient, day.isoformat(), INIT10))
        covered_until = None
        for k in range(rng.randrange(1, 9)):
            cnk = rng.choice([RED10, RED20, RED30, STAB])
            duration = {RED10: 10, RED20: 20, RED30: 30, STAB: 30}[cnk]
            lines.append(line(patient, day.isoformat(), cnk))
            start = day if covered_until is None else max(day, covered_until + dt.timedelta(1))
            covered_until = start + dt.timedelta(days=duration - 1)
            expected[(patient, k)] = covered_until
            day += dt.timedelta(days=rng.randrange(1, 45))
    db = build(tmp_path, lines)
    rows = query(
        db,
        "select patient_id, covered_until_date from core_programme_events where is_step "
        "order by patient_id, patient_event_number",
    )
    found, seen = {}, {}
    for r in rows:
        k = seen.get(r["patient_id"], 0)
        seen[r["patient_id"]] = k + 1
        found[(r["patient_id"], k)] = r["covered_until_date"]
    assert found == expected


# --- §5 (v2): an initiation opens a programme only when none is running ----------------------


def initiations(db, as_of=None):
    """(patient, delivery date, programme_id, is_opening_initiation) of every initiation."""
    rows = query(
        db,
        "select * from core_programme_events where kind = 'initiation' "
        "order by patient_id, patient_event_number",
        as_of,
    )
    return [
        (r["patient_id"], r["delivery_date"].isoformat(), r["programme_id"],
         r["is_opening_initiation"])
        for r in rows
    ]  # fmt: skip


def test_an_initiation_on_the_grace_limit_is_a_repeat_initiation(tmp_path):
    # A and B: a 10-capsule step on 2025-01-06 covers 01-06..01-15; grace_days 30: the
    # programme runs up to 01-15 + 30 = 02-14 (the stop rule with d as the as-of date: stopped
    # only if d > 02-14). A initiates again on 02-14: still running, a repeat initiation of
    # A#1. B initiates again on 02-15, one day later: B#1 is stopped by then, B#2 opens.
    # C and D: only an initiation on 01-06 (no step): running up to 01-06 + 30 = 02-05.
    # C again on 02-05: repeat; D again on 02-06: opens D#2.
    db = build(
        tmp_path,
        programme("A", "2025-01-06", INIT10, [("2025-01-06", RED10)])
        + [line("A", "2025-02-14", INIT10)]
        + programme("B", "2025-01-06", INIT10, [("2025-01-06", RED10)])
        + [line("B", "2025-02-15", INIT10)]
        + [line("C", "2025-01-06", INIT5), line("C", "2025-02-05", INIT5)]
        + [line("D", "2025-01-06", INIT5), line("D", "2025-02-06", INIT5)],
    )
    assert initiations(db) == [
        ("A", "2025-01-06", "A#1", True),
        ("A", "2025-02-14", "A#1", False),
        ("B", "2025-01-06", "B#1", True),
        ("B", "2025-02-15", "B#2", True),
        ("C", "2025-01-06", "C#1", True),
        ("C", "2025-02-05", "C#1", False),
        ("D", "2025-01-06", "D#1", True),
        ("D", "2025-02-06", "D#2", True),
    ]
    found = programmes(db)
    assert sorted(found) == ["A#1", "B#1", "B#2", "C#1", "D#1", "D#2"]
    assert found["B#2"]["start_date"] == d("2025-02-15")
    assert found["B#2"]["is_repeat_programme"] and found["D#2"]["is_repeat_programme"]
    # A repeat initiation extends nothing: C#1 (no step) is stopped on its start as of 02-06
    # (> 01-06 + 30), although C initiated again on 02-05.
    stopped = programmes(db, as_of="2025-02-06")["C#1"]
    assert (stopped["status"], stopped["stop_date"]) == ("stopped", d("2025-01-06"))


def test_a_line_with_two_initiations_is_one_programme(tmp_path):
    # An initiation billed with quantity 2 and a step the same day: both initiation events
    # belong to one programme (v1 opened an empty first programme, stopped on its start).
    db = build(tmp_path, [line("Q", "2025-03-03", INIT10, 2), line("Q", "2025-03-03", RED10)])
    assert initiations(db) == [
        ("Q", "2025-03-03", "Q#1", True),
        ("Q", "2025-03-03", "Q#1", False),
    ]
    found = programmes(db, as_of="2025-04-30")
    assert list(found) == ["Q#1"]
    # Covered 03-03..03-12, limit 04-11: stopped as of 04-30 on 03-12, the only stop.
    assert (found["Q#1"]["n_initiation_events"], found["Q#1"]["n_reduction_events"]) == (2, 1)
    assert (found["Q#1"]["status"], found["Q#1"]["stop_date"]) == ("stopped", d("2025-03-12"))


def test_two_schemes_billed_the_same_day_are_one_programme_of_the_last(tmp_path):
    # 5-step and 10-step initiations on 2025-03-03 (CNK 5521950 before 5521976 in the order of
    # §4.3): one programme. Its opening initiation is the 5-step one (the first of the day),
    # its scheme 10 (the last of the day). Ten 10-capsule steps every 10 days from 03-03: it is
    # completed on the 10th, 03-03 + 90 = 06-01, not on the 5th (04-12), and no step is beyond
    # its scheme (R03). R13 flags the 5-step initiation, R01 the 10-step one (it is not the
    # initiation that opened the patient's first programme).
    db = build(
        tmp_path,
        [line("S", "2025-03-03", INIT5), line("S", "2025-03-03", INIT10)]
        + [line("S", day, cnk) for day, cnk in every("2025-03-03", 10, 10, RED10)],
    )
    (found,) = programmes(db).values()
    assert (found["programme_id"], found["scheme"]) == ("S#1", 10)
    assert (found["status"], found["completed_date"]) == ("completed", d("2025-06-01"))
    assert findings(db) == [("R01", "2025-03-03", INIT10), ("R13", "2025-03-03", INIT5)]


def test_a_re_initiation_on_the_completion_day_is_a_repeat_initiation(tmp_path):
    # 5-step scheme, 10-capsule steps every 10 days from 2025-01-06: step 5, the completion,
    # on 02-15. C initiates again on 02-15: the programme is not completed BEFORE 02-15 (and
    # in the order of §4.3 that initiation comes before the step of the day), so it runs: a
    # repeat initiation of C#1. D initiates again on 02-16, the day after its completion: D#2
    # opens, a repeat programme.
    lines = []
    for patient, again in (("C", "2025-02-15"), ("D", "2025-02-16")):
        lines += programme(patient, "2025-01-06", INIT5, every("2025-01-06", 10, 5, RED10))
        lines += [line(patient, again, INIT5)]
    db = build(tmp_path, lines)
    assert initiations(db) == [
        ("C", "2025-01-06", "C#1", True),
        ("C", "2025-02-15", "C#1", False),
        ("D", "2025-01-06", "D#1", True),
        ("D", "2025-02-16", "D#2", True),
    ]
    found = programmes(db, as_of="2025-02-16")
    assert found["C#1"]["completed_date"] == found["D#1"]["completed_date"] == d("2025-02-15")
    assert (found["D#2"]["status"], found["D#2"]["n_reduction_events"]) == ("in_progress", 0)


def test_running_is_judged_on_the_programme_opened_last(tmp_path):
    # X: 10-step initiation and a 10-capsule step on 01-06 (covered to 01-15, runs to 02-14);
    # again on 02-10: running, a repeat initiation; a step 02-10 covers 02-10..02-19, so the
    # programme now runs to 03-21; a 7-step initiation on 03-15 is a repeat initiation too, of
    # a programme that stays a 10-step one. (v1 made three programmes of it.)
    # Y: initiation on 01-06 with no step (runs to 02-05); again on 03-03: Y#2 opens (runs to
    # 04-02); again on 03-20: a repeat initiation of Y#2, judged from Y#2's start, with the
    # step of 03-20 after it in Y#2.
    db = build(
        tmp_path,
        programme("X", "2025-01-06", INIT10, [("2025-01-06", RED10)])
        + programme("X", "2025-02-10", INIT10, [("2025-02-10", RED10)])
        + [line("X", "2025-03-15", INIT7, pharmacy="PH2")]
        + [line("Y", "2025-01-06", INIT10), line("Y", "2025-03-03", INIT10)]
        + programme("Y", "2025-03-20", INIT10, [("2025-03-20", RED10)]),
    )
    assert [i[2] for i in initiations(db)] == ["X#1", "X#1", "X#1", "Y#1", "Y#2", "Y#2"]
    found = programmes(db, as_of="2025-03-20")
    # A later repeat initiation changes neither the scheme nor the pharmacy.
    assert (found["X#1"]["scheme"], found["X#1"]["pharmacy_id"]) == (10, "PH1")
    assert found["X#1"]["n_reduction_events"] == 2
    assert (found["Y#2"]["start_date"], found["Y#2"]["n_reduction_events"]) == (
        d("2025-03-03"),
        1,
    )


# --- data quality ------------------------------------------------------------------------


def test_rejects_are_counted_by_reason(tmp_path):
    db = build(tmp_path, [line("A", "2025-03-03", INIT5)])
    con = connect(db)
    con.executemany(
        "insert into rejects values (?, 'f.csv', 'sha', ?, ?, ?, '{}')",
        [
            (1, 5, "date_unreadable", "delivery date unreadable: 31/02/2025"),
            (2, 9, "date_unreadable", "delivery date unreadable: 2025-13-01"),
            (2, 12, "quantity_zero", "quantity is 0"),
        ],
    )
    con.close()
    rows = {r["reason"]: r for r in query(db, "select * from mart_data_quality_rejects")}
    assert (rows["date_unreadable"]["n_rejects"], rows["date_unreadable"]["n_loads"]) == (2, 2)
    assert (rows["date_unreadable"]["first_load_id"], rows["date_unreadable"]["last_load_id"]) == (
        1,
        2,
    )
    assert rows["quantity_zero"]["n_rejects"] == 1


def test_months_still_filling_in(tmp_path):
    # Load 1 brought March lines; load 2 brought one more March line (late billing) and the
    # April lines. As of 2025-04-30: March is provisional until 03-31 + 60 = 05-30.
    db = build(
        tmp_path,
        [
            line("A", "2025-03-03", INIT5),
            line("A", "2025-03-03", RED10),
            line("A", "2025-03-13", RED10, load_id=2),
            line("A", "2025-04-30", RED10, load_id=2),
        ],
    )
    rows = {r["month"]: r for r in query(db, "select * from mart_data_quality_months")}
    march = rows["2025-03"]
    assert (march["n_lines"], march["n_events"], march["n_loads"]) == (3, 3, 2)
    assert (march["latest_load_id"], march["n_lines_latest_load"]) == (2, 1)
    assert march["is_provisional"]
    assert march["final_from_date"] == d("2025-05-30")
    assert rows["2025-04"]["n_lines_latest_load"] == 1
    # The months run from the programme start (2023-02) to the as-of month.
    assert min(rows) == "2023-02"
    assert max(rows) == "2025-04"
    assert not rows["2025-01"]["is_provisional"]


def test_a_programme_that_resumes_after_a_long_pause_is_not_stopped(tmp_path):
    # A step on 01-06 (covered to 01-15), nothing until a step on 03-20 (covered to 03-29).
    # Only the last covered-until date counts: as of 03-31 in progress. As of 03-10, inside
    # the pause (03-10 > 01-15 + 30 = 02-14), it is stopped on 01-15.
    db = build(
        tmp_path,
        programme("A", "2025-01-06", INIT10, [("2025-01-06", RED10), ("2025-03-20", RED10)]),
    )
    assert programmes(db, as_of="2025-03-31")["A#1"]["status"] == "in_progress"
    paused = programmes(db, as_of="2025-03-10")["A#1"]
    assert (paused["status"], paused["stop_date"]) == ("stopped", d("2025-01-15"))
