"""SPEC §8 by hand: compliance rules R01-R11, one or more patients per rule.

Working days: Monday to Saturday except Belgian public holidays. R08's earliest allowed date
is the previous reduction step's end (delivery date + capsules - 1) stepped back one day at a
time, skipping non-working days, three times; a delivery on that date is allowed.
"""

from __future__ import annotations

import json

import pytest

from tests.sqlcase import (
    FOLLOW,
    INIT5,
    INIT7,
    INIT10,
    RED10,
    RED20,
    STAB,
    build,
    cli_json,
    every,
    line,
    programme,
    query,
    run_cli,
)


def early(patient: str, previous: tuple[str, str], delivered: str, cnk: str = RED10):
    """A 10-step programme started with its first step `previous` (date, cnk), then a step
    `cnk` delivered on `delivered`."""
    start = previous[0]
    return programme(patient, start, INIT10, [previous, (delivered, cnk)])


LINES = (
    # R01: a 10-step programme, then two repeat initiations.
    programme("R01a", "2025-01-06", INIT10, [("2025-01-06", RED10)])
    + [line("R01a", "2025-03-03", INIT5), line("R01a", "2025-05-05", INIT7)]
    # R02: a step before the first initiation; a follow-up with no initiation at all.
    + [line("R02a", "2025-02-01", RED10), line("R02a", "2025-02-05", INIT5)]
    + [line("R02b", "2025-02-10", FOLLOW)]
    # R03: a 6th reduction step in a 5-step scheme; 7 steps in a 7-step scheme are fine.
    + programme("R03a", "2025-01-06", INIT5, every("2025-01-06", 10, 6, RED10))
    + programme("R03b", "2025-01-06", INIT7, every("2025-01-06", 10, 7, RED10))
    # R04: reduction, stabilisation three times: the third stabilisation (04-06).
    + programme(
        "R04a",
        "2025-01-06",
        INIT10,
        [("2025-01-06", RED10), ("2025-01-16", STAB), ("2025-02-15", RED10)]
        + [("2025-02-25", STAB), ("2025-03-27", RED10), ("2025-04-06", STAB)],
    )
    # R05: a second follow-up interview (01-12).
    + programme("R05a", "2025-01-06", INIT5, [("2025-01-06", RED10), ("2025-01-10", FOLLOW)])
    + [line("R05a", "2025-01-12", FOLLOW)]
    # R06: initiated at PH1; a step at PH2 and a follow-up at PH3.
    + [line("R06a", "2025-01-06", INIT5), line("R06a", "2025-01-06", RED10, pharmacy="PH2")]
    + [line("R06a", "2025-01-16", RED10), line("R06a", "2025-01-20", FOLLOW, pharmacy="PH3")]
    # R07: started 2024-01-01 (2024 is a leap year): 2024-12-26 is day 360, 12-27 day 361.
    + programme("R07a", "2024-01-01", INIT10, [("2024-12-26", RED10), ("2024-12-27", FOLLOW)])
    # R08, Easter Monday 2025-04-21: 20 capsules on Thu 04-03 end Tue 04-22; back: Mon 04-21
    # (holiday) and Sun 04-20 skipped, Sat 04-19 (1), Fri 04-18 (2), Thu 04-17 (3).
    + early("E25a", ("2025-04-03", RED20), "2025-04-17")
    + early("E25b", ("2025-04-03", RED20), "2025-04-16")
    # R08, Easter Monday 2024-04-01: 10 capsules on Sun 2024-03-24 end Tue 04-02; back: Mon
    # 04-01 (holiday), Sun 03-31 skipped, Sat 03-30 (1), Fri 03-29 (2), Thu 03-28 (3).
    + early("E24a", ("2024-03-24", RED10), "2024-03-28")
    + early("E24b", ("2024-03-24", RED10), "2024-03-27")
    # R08, a Sunday: 10 capsules on Sat 2025-03-08 end Mon 03-17; back: Sun 03-16 skipped,
    # Sat 03-15 (1), Fri 03-14 (2), Thu 03-13 (3). (Counting the Sunday would give 03-14.)
    + early("SUNa", ("2025-03-08", RED10), "2025-03-13")
    + early("SUNb", ("2025-03-08", RED10), "2025-03-12")
    # R08, a Saturday is a working day: 10 capsules on Sun 2025-03-02 end Tue 03-11; back:
    # Mon 03-10 (1), Sun 03-09 skipped, Sat 03-08 (2), Fri 03-07 (3). (Skipping Saturdays
    # would give Thu 03-06.)
    + early("SATa", ("2025-03-02", RED10), "2025-03-07")
    + early("SATb", ("2025-03-02", RED10), "2025-03-06")
    # R08, a Saturday public holiday (Armistice, Sat 2023-11-11): 20 capsules on Thu
    # 2023-10-26 end Tue 11-14; back: Mon 11-13 (1), Sun 11-12 and Sat 11-11 skipped,
    # Fri 11-10 (2), Thu 11-09 (3).
    + early("HOLa", ("2023-10-26", RED20), "2023-11-09")
    + early("HOLb", ("2023-10-26", RED20), "2023-11-08")
    # R08 after a stabilisation is not checked: 10 capsules Mon 2025-05-05 end Wed 05-14;
    # earliest Sat 05-10 (Tue 05-13, Mon 05-12, Sat 05-10). The stabilisation on 05-12 is on
    # time; the reduction on 05-13 follows a stabilisation: no R08.
    + programme(
        "STBa",
        "2025-05-05",
        INIT10,
        [("2025-05-05", RED10), ("2025-05-12", STAB), ("2025-05-13", RED10)],
    )
    # A stabilisation delivered early after a reduction is flagged: 05-09 < 05-10.
    + early("STBb", ("2025-05-05", RED10), "2025-05-09", STAB)
    # A line with quantity 2: the second unit is step 2, delivered on the day of step 1
    # (10 capsules on Mon 2025-06-02 end Wed 06-11; earliest Fri 06-06, as Whit Monday 06-09
    # and Sunday 06-08 are skipped: Tue 06-10 (1), Sat 06-07 (2), Fri 06-06 (3)).
    + [line("Q2", "2025-06-02", INIT10), line("Q2", "2025-06-02", RED10, 2)]
    # R09: a stabilisation right after a stabilisation (02-15).
    + programme(
        "R09a",
        "2025-01-06",
        INIT10,
        [("2025-01-06", RED10), ("2025-01-16", STAB), ("2025-02-15", STAB)],
    )
    # R10: stabilisations with no reduction before them; the second is also R09.
    + programme("R10a", "2025-01-06", INIT7, [("2025-01-06", STAB), ("2025-02-05", STAB)])
    # R11: the initiation on 2023-01-31 is before the pilot's start, its step on 02-01 is not;
    # an unassigned step in January 2023 is R02 and R11.
    + programme("R11a", "2023-01-31", INIT10, [("2023-02-01", RED10)])
    + [line("R11b", "2023-01-20", RED10)]
    # Several rules on one event: initiated at PH1, a step at PH2 too early (10 capsules on
    # Mon 2025-09-01 end Wed 09-10; earliest Sat 09-06): R06 and R08.
    + [line("MULTI", "2025-09-01", INIT10), line("MULTI", "2025-09-01", RED10)]
    + [line("MULTI", "2025-09-03", RED10, pharmacy="PH2")]
)

EXPECTED = {
    "R01": [("R01a", "2025-03-03"), ("R01a", "2025-05-05")],
    "R02": [("R02a", "2025-02-01"), ("R02b", "2025-02-10"), ("R11b", "2023-01-20")],
    "R03": [("R03a", "2025-02-25")],
    "R04": [("R04a", "2025-04-06")],
    "R05": [("R05a", "2025-01-12")],
    "R06": [("MULTI", "2025-09-03"), ("R06a", "2025-01-06"), ("R06a", "2025-01-20")],
    "R07": [("R07a", "2024-12-27")],
    "R08": [
        ("E24b", "2024-03-27"),
        ("E25b", "2025-04-16"),
        ("HOLb", "2023-11-08"),
        ("MULTI", "2025-09-03"),
        ("Q2", "2025-06-02"),
        ("SATb", "2025-03-06"),
        ("STBb", "2025-05-09"),
        ("SUNb", "2025-03-12"),
    ],
    "R09": [("R09a", "2025-02-15"), ("R10a", "2025-02-05")],
    "R10": [("R10a", "2025-01-06"), ("R10a", "2025-02-05")],
    "R11": [("R11a", "2023-01-31"), ("R11b", "2023-01-20")],
}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return build(tmp_path_factory.mktemp("compliance"), LINES)


def flagged(db, rule: str, as_of=None) -> list[tuple[str, str]]:
    rows = query(db, "select * from mart_compliance_findings where rule_id = ?", as_of, [rule])
    return sorted((r["patient_id"], r["delivery_date"].isoformat()) for r in rows)


@pytest.mark.parametrize("rule", sorted(EXPECTED))
def test_each_rule_flags_exactly_the_expected_events(db, rule):
    assert flagged(db, rule) == EXPECTED[rule]


def test_r08_details_give_the_earliest_allowed_date(db):
    rows = query(
        db,
        "select patient_id, detail from mart_compliance_findings where rule_id = 'R08'",
    )
    details = {r["patient_id"]: r["detail"] for r in rows}
    assert "earliest allowed 2025-04-17" in details["E25b"]
    assert "earliest allowed 2024-03-28" in details["E24b"]
    assert "earliest allowed 2023-11-09" in details["HOLb"]
    assert "earliest allowed 2025-06-06" in details["Q2"]
    assert details["STBb"].startswith("stabilisation delivered 2025-05-09")


def test_one_event_can_break_several_rules(db):
    rows = query(
        db,
        "select rule_id, event_id from mart_compliance_findings where patient_id = 'MULTI'",
    )
    assert sorted(r["rule_id"] for r in rows) == ["R06", "R08"]
    assert len({r["event_id"] for r in rows}) == 1


def test_unassigned_findings_have_no_programme(db):
    rows = query(db, "select * from mart_compliance_findings where rule_id = 'R02'")
    assert all(r["programme_id"] is None for r in rows)
    rows = query(db, "select * from mart_compliance_findings where rule_id = 'R01'")
    assert sorted(r["programme_id"] for r in rows) == ["R01a#2", "R01a#3"]


def test_findings_respect_the_as_of_date(db):
    # As of 2025-03-31: R01a's second repeat (05-05) and the later R08 cases do not exist.
    assert flagged(db, "R01", as_of="2025-03-31") == [("R01a", "2025-03-03")]
    assert [p for p, _ in flagged(db, "R08", as_of="2025-03-31")] == [
        "E24b",
        "HOLb",
        "SATb",
        "SUNb",
    ]


def test_compliance_json(db):
    doc = cli_json(db, "compliance", "--no-suppress")
    assert doc["as_of"] == "2025-09-03"
    assert doc["rules"] == {rule: len(found) for rule, found in sorted(EXPECTED.items())}
    assert list(doc["rules"]) == [f"R{n:02d}" for n in range(1, 12)]
    assert len(doc["findings"]) == sum(len(found) for found in EXPECTED.values())
    first = doc["findings"][0]
    assert list(first) == [
        "rule",
        "severity",
        "programme_id",
        "patient_id",
        "pharmacy_id",
        "delivery_date",
        "cnk",
        "kind",
        "detail",
    ]
    assert first == {
        "rule": "R01",
        "severity": "error",
        "programme_id": "R01a#2",
        "patient_id": "R01a",
        "pharmacy_id": "PH1",
        "delivery_date": "2025-03-03",
        "cnk": INIT5,
        "kind": "initiation",
        "detail": "initiation number 2 of the patient (first on 2025-01-06)",
    }
    r08 = [f for f in doc["findings"] if f["rule"] == "R08"]
    assert {f["severity"] for f in r08} == {"warning"}
    # Sorted by rule, then delivery date.
    assert [f["delivery_date"] for f in r08] == sorted(f["delivery_date"] for f in r08)


def test_compliance_counts_are_suppressed_by_default(db):
    # R08 has 8 findings (shown); every other rule 1 to 3 ("<5").
    doc = cli_json(db, "compliance")
    assert doc["rules"]["R08"] == 8
    assert {doc["rules"][r] for r in doc["rules"] if r != "R08"} == {"<5"}
    # The findings are the analysts' work list: listed in full.
    assert len(doc["findings"]) == 26


def test_all_rules_present_with_zero_findings(tmp_path):
    db = build(tmp_path, [line("A", "2025-03-03", INIT5)])
    doc = cli_json(db, "compliance")
    assert doc == {"as_of": "2025-03-03", "rules": {f"R{n:02d}": 0 for n in range(1, 12)},
                   "findings": []}  # fmt: skip


def test_compliance_csv(db, tmp_path):
    status, out = run_cli("--db", str(db), "compliance", "--format", "csv")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == (
        "as_of,rule,severity,programme_id,patient_id,pharmacy_id,delivery_date,cnk,kind,detail"
    )
    assert len(lines) == 1 + 26
    assert lines[1].startswith("2025-09-03,R01,error,R01a#2,R01a,PH1,2025-03-03,5521950,")
    # The JSON and CSV list the same findings.
    doc = json.loads(run_cli("--db", str(db), "compliance")[1])
    assert len(doc["findings"]) == len(lines) - 1
