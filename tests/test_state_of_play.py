"""SPEC §6 by hand: the monthly state of play, per scheme and total, with the as-of date.

Fees with the default configuration (P = 2.2193): an interview round(2.2193 x 10.47, 2) =
23.24, a preparation round(2.2193 x 7.08, 2) = 15.71.

The scenario (as of 2025-07-15, the latest delivery):
- A: 5-step initiation 2025-05-20; 10-capsule steps 05-20, 05-30, 06-09, 06-19, 06-29
  (step 5: completed 06-29); follow-up interview 06-29.
- B: 7-step initiation 06-02; 20-capsule steps 06-02 (covers to 06-21) and 06-22 (to 07-11).
- C: 10-step initiation 06-10; a 30-capsule step 06-10 (covers to 07-09).
- D: 10-step initiation 03-03; a 10-capsule step 03-03 (covers to 03-12): stopped (07-15 is
  more than 30 days after 03-12), stop date 03-12.
- E: 10-step initiation 02-03, a 10-capsule step 02-03 (covers to 02-12): stopped, stop date
  02-12; then a 7-step initiation 06-16 (E#1 no longer runs: 06-16 > 02-12 + 30), which
  opens the repeat programme E#2 (R01), and a 10-capsule step 06-16 (covers to 06-25, in
  progress on 07-15: the limit is 07-25). Every event of E#2 is in fees_flagged_eur.
- F: no initiation: a 10-capsule step 06-05, a stabilisation 06-06, a follow-up 06-07
  (unassigned).
- G: 5-step initiation 07-05, a 10-capsule step 07-15.
"""

from __future__ import annotations

import pytest

from tests.sqlcase import (
    FOLLOW,
    INIT5,
    INIT7,
    INIT10,
    RED10,
    RED20,
    RED30,
    SPEC_STATE_OF_PLAY_METRICS,
    STAB,
    build,
    cli_json,
    line,
    programme,
    query,
    state,
)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    lines = (
        programme(
            "A",
            "2025-05-20",
            INIT5,
            [(day, RED10) for day in ("2025-05-20", "2025-05-30", "2025-06-09", "2025-06-19")]
            + [("2025-06-29", RED10), ("2025-06-29", FOLLOW)],
        )
        + programme("B", "2025-06-02", INIT7, [("2025-06-02", RED20), ("2025-06-22", RED20)])
        + programme("C", "2025-06-10", INIT10, [("2025-06-10", RED30)])
        + programme("D", "2025-03-03", INIT10, [("2025-03-03", RED10)])
        + programme("E", "2025-02-03", INIT10, [("2025-02-03", RED10)])
        + programme("E", "2025-06-16", INIT7, [("2025-06-16", RED10)])
        + [line("F", "2025-06-05", RED10), line("F", "2025-06-06", STAB)]
        + [line("F", "2025-06-07", FOLLOW)]
        + programme("G", "2025-07-05", INIT5, [("2025-07-15", RED10)])
    )
    return build(tmp_path_factory.mktemp("state"), lines)


FEES = ("fees_estimated_eur", "fees_flagged_eur")
METRICS = tuple(m for m in SPEC_STATE_OF_PLAY_METRICS if m not in FEES)  # fees apart


def figures(row: dict) -> tuple:
    """The counts of SPEC §6 in the order of its table, then the two fees as floats."""
    return tuple(row[m] for m in METRICS) + tuple(float(row[m]) for m in FEES)


def split(row: dict) -> tuple:
    return tuple(row[f"reduction_steps_{n}_capsules"] for n in (10, 20, 30))


def test_june_per_scheme(db):
    # Figures: patients initiated, of whom repeat, initiations billed, cumulative patients,
    # active at the end of the month, reductions, stabilisations, follow-ups, completed,
    # stopped; fees; fees flagged.
    # Scheme 5: no programme starts in June (A's started in May); A counts in the cumulative
    # (1); A completed on 06-29 so it is not active at 06-30; reductions 06-09, 06-19, 06-29
    # (3); A's follow-up on its completion day (1, on time); completed 1; fees 3 x 15.71 +
    # 23.24 = 70.37; nothing flagged.
    assert figures(state(db, "2025-06", "5")) == (0, 0, 0, 1, 0, 3, 0, 1, 1, 0, 70.37, 0.0)
    # Scheme 7 (SPEC v2: v1 counted B only): B's programme and E's repeat programme E#2 start
    # in June: 2 patients, 1 of them repeat; cumulative 1 (B: E's first programme is 10-step);
    # active at 06-30: B and E#2; reductions B 2 + E#2 1; fees 2 x 23.24 + 3 x 15.71 = 93.61,
    # of which E#2's events (a repeat programme) 23.24 + 15.71 = 38.95.
    assert figures(state(db, "2025-06", "7")) == (2, 1, 2, 1, 2, 3, 0, 0, 0, 0, 93.61, 38.95)
    # Scheme 10: C initiated (1); cumulative E, D, C (3); active C only (D and E#1 stopped in
    # March and February); one 30-capsule step; fees 23.24 + 15.71 = 38.95.
    assert figures(state(db, "2025-06", "10")) == (1, 0, 1, 3, 1, 1, 0, 0, 0, 0, 38.95, 0.0)


def test_june_total_is_the_sum_of_the_schemes(db):
    total = state(db, "2025-06", "total")
    assert figures(total) == (3, 1, 3, 5, 3, 7, 0, 1, 1, 0, 202.93, 38.95)
    parts = [state(db, "2025-06", s) for s in ("5", "7", "10")]
    for metric in METRICS + FEES:
        assert total[metric] == sum(p[metric] for p in parts)


def test_split_of_reduction_steps_by_capsules(db):
    # June: scheme 5 three 10-capsule steps; scheme 7 one 10 (E#2) and two 20 (B); scheme 10
    # one 30 (C).
    assert split(state(db, "2025-06", "5")) == (3, 0, 0)
    assert split(state(db, "2025-06", "7")) == (1, 2, 0)
    assert split(state(db, "2025-06", "10")) == (0, 0, 1)
    assert split(state(db, "2025-06", "total")) == (4, 2, 1)


def test_unassigned_events_are_reported_apart(db):
    # F's three events: a 10-capsule step, a stabilisation step, a follow-up interview;
    # fees 15.71 + 15.71 + 23.24 = 54.66. They are in no scheme and not in total.
    (row,) = query(db, "select * from mart_unassigned_by_month where month = '2025-06'")
    assert (
        row["reduction_steps_delivered"],
        row["stabilisation_steps_delivered"],
        row["follow_up_interviews"],
        float(row["fees_estimated_eur"]),
    ) == (1, 1, 1, 54.66)
    assert split(row) == (1, 0, 0)
    assert state(db, "2025-06", "total")["stabilisation_steps_delivered"] == 0


def test_stops_are_counted_in_the_month_of_their_stop_date(db):
    # E#1 stop date 02-12, D stop date 03-12 (both 10-step).
    assert state(db, "2025-02", "10")["programmes_stopped"] == 1
    assert state(db, "2025-03", "10")["programmes_stopped"] == 1
    assert state(db, "2025-03", "10")["active_programmes_end_of_month"] == 0
    # End of May: A (scheme 5) is active; cumulative patients E, D, A = 3.
    may = state(db, "2025-05", "total")
    assert (may["active_programmes_end_of_month"], may["patients_initiated_cumulative"]) == (1, 3)


def test_as_of_in_the_middle_of_a_month(db):
    # As of 2025-07-15 (the default), July: E = 07-15. G initiated (5-step) and its step of
    # 07-15; active at 07-15: G (5), B and E#2 (7), C (10, covered to 07-09, limit 08-08).
    july = {s: state(db, "2025-07", s) for s in ("5", "7", "10", "total")}
    assert july["5"]["patients_initiated"] == 1
    assert july["5"]["reduction_steps_delivered"] == 1
    assert [july[s]["active_programmes_end_of_month"] for s in ("5", "7", "10")] == [1, 2, 1]
    assert july["total"]["patients_initiated_cumulative"] == 6
    assert july["total"]["cutoff_date"].isoformat() == "2025-07-15"
    # As of 2025-06-15: later events do not exist. June then has A's step of 06-09 only for
    # scheme 5 (A not completed: 4 steps), B's initiation and first step, C's initiation and
    # step; E#2 does not exist yet. Active at 06-15: A, B, C.
    june = {s: state(db, "2025-06", s, as_of="2025-06-15") for s in ("5", "7", "10", "total")}
    assert figures(june["5"]) == (0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 15.71, 0.0)
    assert figures(june["7"]) == (1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 38.95, 0.0)
    assert figures(june["10"]) == (1, 0, 1, 3, 1, 1, 0, 0, 0, 0, 38.95, 0.0)
    assert june["total"]["cutoff_date"].isoformat() == "2025-06-15"
    assert june["total"]["is_provisional"]


@pytest.mark.parametrize(
    ("as_of", "provisional"),
    [
        ("2025-07-15", True),
        # June ends on 06-30; 60 days later is 08-29: provisional while as-of < 08-29.
        ("2025-08-28", True),
        ("2025-08-29", False),
        ("2025-09-30", False),
    ],
)
def test_provisional_until_60_days_after_the_end_of_the_month(db, as_of, provisional):
    assert state(db, "2025-06", "total", as_of=as_of)["is_provisional"] is provisional
    doc = cli_json(db, "report", "--month", "2025-06", "--as-of", as_of, "--no-suppress")
    assert doc["provisional"] is provisional
    assert doc["as_of"] == as_of


def test_report_json_for_june(db):
    doc = cli_json(db, "report", "--month", "2025-06", "--no-suppress")
    assert doc["month"] == "2025-06"
    assert doc["as_of"] == "2025-07-15"
    assert doc["provisional"] is True
    assert list(doc["schemes"]) == ["5", "7", "10", "total"]
    assert doc["schemes"]["total"] == {
        "patients_initiated": 3,
        "patients_initiated_repeat": 1,
        "initiations_billed": 3,
        "patients_initiated_cumulative": 5,
        "active_programmes_end_of_month": 3,
        "reduction_steps_delivered": 7,
        "stabilisation_steps_delivered": 0,
        "follow_up_interviews": 1,
        "programmes_completed": 1,
        "programmes_stopped": 0,
        "fees_estimated_eur": 202.93,
        "fees_flagged_eur": 38.95,
        "reduction_steps_by_capsules": {"10": 4, "20": 2, "30": 1},
    }
    assert doc["schemes"]["7"]["fees_estimated_eur"] == 93.61
    assert doc["schemes"]["7"]["fees_flagged_eur"] == 38.95
    assert doc["unassigned"] == {
        "reduction_steps_delivered": 1,
        "stabilisation_steps_delivered": 1,
        "follow_up_interviews": 1,
        "fees_estimated_eur": 54.66,
        "reduction_steps_by_capsules": {"10": 1, "20": 0, "30": 0},
    }


def test_month_without_data_gives_zeros(db):
    # April 2025: no event. Flows are 0; the cumulative patients (E, D: 10-step) still count;
    # nothing is active (E#1 and D stopped in February and March).
    doc = cli_json(db, "report", "--month", "2025-04", "--no-suppress")
    ten = doc["schemes"]["10"]
    assert ten["patients_initiated_cumulative"] == 2
    assert ten["active_programmes_end_of_month"] == 0
    assert ten["reduction_steps_delivered"] == 0
    assert ten["fees_estimated_eur"] == 0
    # Before any data (and before the programme start): zeros everywhere.
    for month in ("2024-06", "2022-01"):
        doc = cli_json(db, "report", "--month", month, "--no-suppress")
        for scheme in ("5", "7", "10", "total"):
            values = doc["schemes"][scheme]
            assert values["reduction_steps_by_capsules"] == {"10": 0, "20": 0, "30": 0}
            assert all(v == 0 for k, v in values.items() if k != "reduction_steps_by_capsules")
        assert doc["provisional"] is False


def test_month_after_the_as_of_date(db):
    # September 2025 as of 07-15: E = 07-15, so stocks are those of 07-15 and flows are 0.
    doc = cli_json(db, "report", "--month", "2025-09", "--no-suppress")
    total = doc["schemes"]["total"]
    assert total["patients_initiated_cumulative"] == 6
    assert total["active_programmes_end_of_month"] == 4
    assert total["initiations_billed"] == 0
    assert doc["provisional"] is True


def test_fees_round_each_event_then_sum(tmp_path):
    # Three 5-step initiations in one month: 3 x round(2.2193 x 10.47, 2) = 3 x 23.24 = 69.72
    # (rounding the sum, 3 x 23.236071 = 69.708, would give 69.71).
    db = build(tmp_path, [line(p, "2025-06-02", INIT5) for p in ("A", "B", "C")])
    assert float(state(db, "2025-06", "5")["fees_estimated_eur"]) == 69.72
    # Exact figures: with disclosure control (SPEC §9 v2) the fees of 3 initiations are null.
    doc = cli_json(db, "report", "--month", "2025-06", "--no-suppress")
    assert doc["schemes"]["total"]["fees_estimated_eur"] == 69.72


def test_fees_use_the_key_letter_value_valid_on_the_delivery_date(tmp_path):
    # P = 2.2193 from 2023-01-01 and 2.0 from 2025-06-15: from 06-15 an interview is
    # round(2.0 x 10.47, 2) = 20.94 and a preparation round(2.0 x 7.08, 2) = 14.16.
    # Scheme 5: initiation 06-14 (23.24), step 06-14 (15.71), step 06-24 (14.16),
    # follow-up 06-24 (20.94): 74.05.
    config = tmp_path / "p.toml"
    config.write_text(
        "[[fees.key_letter_values]]\nvalid_from = 2023-01-01\nvalue = 2.2193\n"
        "[[fees.key_letter_values]]\nvalid_from = 2025-06-15\nvalue = 2.0\n",
        encoding="utf-8",
    )
    db = build(
        tmp_path,
        programme("A", "2025-06-14", INIT5, [("2025-06-14", RED10), ("2025-06-24", RED10)])
        + [line("A", "2025-06-24", FOLLOW)],
    )
    doc = cli_json(
        db, "--config", str(config), "report", "--month", "2025-06", "--no-suppress"
    )  # exact figures: SPEC §9 v2 would leave the fees of these small counts null
    assert doc["schemes"]["5"]["fees_estimated_eur"] == 74.05
    rows = query(
        db,
        "select fees_estimated_eur from mart_fees_by_cnk_month where month = '2025-06' and cnk = ?",
        params=[RED10],
    )
    # Without the configuration file: 2 x 15.71.
    assert float(rows[0]["fees_estimated_eur"]) == 31.42


def test_fees_by_cnk_and_month(db):
    rows = {
        r["cnk"]: r
        for r in query(db, "select * from mart_fees_by_cnk_month where month = '2025-06'")
    }
    assert len(rows) == 8
    # June 10-capsule steps: A 3, E#2 1, F 1 (unassigned): 5 events, 5 x 15.71 = 78.55.
    assert (rows[RED10]["n_events"], rows[RED10]["n_unassigned_events"]) == (5, 1)
    assert float(rows[RED10]["fees_estimated_eur"]) == 78.55
    assert rows[INIT7]["n_events"] == 2
    assert rows[STAB]["n_events"] == 1
    assert rows[INIT5]["n_events"] == 0
    # The sum over CNKs is the state of play's total plus the unassigned events.
    total = sum(float(r["fees_estimated_eur"]) for r in rows.values())
    assert round(total, 2) == round(202.93 + 54.66, 2)


def test_amounts_billed_beside_estimated_fees(tmp_path):
    # Amounts from the export are summed as billed (a cancelled line counts -15.71).
    db = build(
        tmp_path,
        [
            line("A", "2025-06-02", INIT5, amount_eur=23.24),
            line("A", "2025-06-02", RED10, amount_eur=15.71),
            line("A", "2025-06-02", RED10, -1, amount_eur=-15.71),
            line("A", "2025-06-02", RED10, amount_eur=15.71),
        ],
    )
    rows = {
        r["cnk"]: r
        for r in query(db, "select * from mart_fees_by_cnk_month where month = '2025-06'")
    }
    assert (rows[RED10]["n_events"], float(rows[RED10]["amount_billed_eur"])) == (1, 15.71)
    assert float(rows[INIT5]["amount_billed_eur"]) == 23.24
    assert rows[RED20]["amount_billed_eur"] is None


def test_fees_flagged_are_the_error_findings_and_repeat_programmes(tmp_path):
    # July 2025 (SPEC v2 §6 fees_flagged_eur: events an ERROR rule flags and every event of a
    # repeat programme, each event once):
    # - P (5 steps): initiation 07-01, a step 07-01 and a step 07-03 at PH2: that step is both
    #   R06 (error) and R08 (warning, 10 capsules from 07-01 end 07-10): 15.71, once.
    # - Q (10 steps): initiation and step 07-01, a step 07-03: R08 only (a warning): nothing.
    # - S (10 steps): an initiation line of quantity 2 on 07-01: one programme, the second
    #   unit a repeat initiation (R01): 23.24. One programme, in progress, nothing stopped.
    # - R: a 10-step initiation on 2025-01-06 alone (stopped on it), then a 7-step initiation
    #   07-07 that opens the repeat programme R#2, a step 07-07 and a follow-up 07-10: every
    #   event of R#2, 23.24 + 15.71 + 23.24 = 62.19.
    # - U: a step 07-02 with no initiation (unassigned, R02): not in any scheme.
    lines = (
        programme("P", "2025-07-01", INIT5, [("2025-07-01", RED10)])
        + [line("P", "2025-07-03", RED10, pharmacy="PH2")]
        + programme("Q", "2025-07-01", INIT10, [("2025-07-01", RED10), ("2025-07-03", RED10)])
        + [line("S", "2025-07-01", INIT10, 2)]
        + [line("R", "2025-01-06", INIT10)]
        + programme("R", "2025-07-07", INIT7, [("2025-07-07", RED10), ("2025-07-10", FOLLOW)])
        + [line("U", "2025-07-02", RED10)]
    )
    db = build(tmp_path, lines)
    july = {s: state(db, "2025-07", s) for s in ("5", "7", "10", "total")}
    # Fees: 5: 23.24 + 2 x 15.71 = 54.66; 7: 62.19; 10: Q 23.24 + 2 x 15.71 and S 2 x 23.24
    # = 101.14; total 217.99. Flagged: 15.71, 62.19, 23.24; total 101.14.
    assert [float(july[s]["fees_estimated_eur"]) for s in july] == [54.66, 62.19, 101.14, 217.99]
    assert [float(july[s]["fees_flagged_eur"]) for s in july] == [15.71, 62.19, 23.24, 101.14]
    # R#2 starts in July: 7-step patients initiated 1, of whom 1 repeat; R counts once in the
    # cumulative, under the 10-step scheme of its first programme (January).
    assert (july["7"]["patients_initiated"], july["7"]["patients_initiated_repeat"]) == (1, 1)
    assert july["7"]["patients_initiated_cumulative"] == 0
    assert july["10"]["patients_initiated_cumulative"] == 3  # R, Q, S
    assert july["10"]["initiations_billed"] == 3  # Q and S's two
    assert (july["10"]["active_programmes_end_of_month"], july["10"]["programmes_stopped"]) == (
        2,
        0,
    )
    assert float(state(db, "2025-01", "10")["fees_flagged_eur"]) == 0.0
    doc = cli_json(db, "report", "--month", "2025-07", "--no-suppress")
    assert doc["schemes"]["total"]["fees_flagged_eur"] == 101.14
    assert "fees_flagged_eur" not in doc["unassigned"]
