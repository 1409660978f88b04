"""SPEC v2 §8 by hand: compliance rules R01-R15, one or more patients per rule.

Working days: Monday to Saturday except Belgian public holidays. R08's earliest allowed date
is the previous reduction step's step end stepped back one day at a time, skipping non-working
days, three times; a delivery on that date is allowed. A step end carries early collection
forward: a reduction right after a reduction q starts on max(its delivery, step end of q + 1)
and ends start + capsules - 1 (with a single early step, as in most cases below, the previous
step's end is its delivery date + capsules - 1).
"""

from __future__ import annotations

import json
import re
import string

import pytest

from etl.base import i18n
from etl.base.registry import load_registry
from etl.figures import finding_detail
from sql import read_sql
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
    findings,
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
    # R01: a 10-step programme (covered to 01-15, running to 02-14), then an initiation on
    # 03-03 that opens programme 2 (no step: running to 04-02) and one on 05-05 that opens
    # programme 3.
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
    # R06 and R01: two initiations the same day at PH2 and PH1 are one programme; PH1's comes
    # first in the order (it opens the programme), PH2's last (the programme's pharmacy is
    # PH2): PH1's initiation is R06, PH2's is a repeat initiation (R01).
    + [line("R06b", "2025-04-01", INIT5, pharmacy="PH2"), line("R06b", "2025-04-01", INIT5)]
    # R07: D1, the first reduction step, on Mon 2024-06-03 (day 1); day 360 is D1 + 359 =
    # 2025-05-28. R07a: a 10-capsule step delivered 2025-05-19 ends 05-28 (day 360): allowed.
    # R07b: delivered 05-20, it ends 05-29 (day 361): flagged.
    + programme("R07a", "2024-06-03", INIT10, [("2024-06-03", RED10), ("2025-05-19", RED10)])
    + programme("R07b", "2024-06-03", INIT10, [("2024-06-03", RED10), ("2025-05-20", RED10)])
    # R07c, the step end carries early collection forward: 20 capsules on Wed 2025-04-30 end
    # Mon 05-19; 10 capsules delivered on Thu 05-15, the earliest allowed date (Sat 05-17,
    # Fri 05-16, Thu 05-15: no R08), start on 05-20 and end 05-29, day 361: flagged (from its
    # own delivery it would end 05-24).
    + programme(
        "R07c",
        "2024-06-03",
        INIT10,
        [("2024-06-03", RED10), ("2025-04-30", RED20), ("2025-05-15", RED10)],
    )
    # R07d, R07e: a stabilisation delivered on day 360 (2025-05-28) is allowed, on day 361
    # (05-29) flagged.
    + programme("R07d", "2024-06-03", INIT10, [("2024-06-03", RED10), ("2025-05-28", STAB)])
    + programme("R07e", "2024-06-03", INIT10, [("2024-06-03", RED10), ("2025-05-29", STAB)])
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
    # R12: a 5-step programme, 10-capsule steps every 10 days from Mon 2025-04-07, completed
    # with step 5 on 05-17. A follow-up interview on 05-17 is on time (R12a); on 05-18 it is
    # after the completion (R12b).
    + programme("R12a", "2025-04-07", INIT5, every("2025-04-07", 10, 5, RED10))
    + [line("R12a", "2025-05-17", FOLLOW)]
    + programme("R12b", "2025-04-07", INIT5, every("2025-04-07", 10, 5, RED10))
    + [line("R12b", "2025-05-18", FOLLOW)]
    # R13a: 5-step and 10-step initiations the same day: one programme of scheme 10, opened by
    # the 5-step initiation (R13), the 10-step one a repeat initiation (R01).
    + [line("R13a", "2025-04-01", INIT5), line("R13a", "2025-04-01", INIT10)]
    # R13b: a 7-step programme with a step on 04-07 (covered to 04-16, running to 05-16); a
    # 10-step initiation on 04-20 is a repeat initiation of it (R01) with another scheme (R13).
    + programme("R13b", "2025-04-07", INIT7, [("2025-04-07", RED10)])
    + [line("R13b", "2025-04-20", INIT10)]
    # R13c: an initiation billed twice (quantity 2): the second unit is R01, not R13.
    + [line("R13c", "2025-04-07", INIT7, 2)]
    # R14, year of the delivery date - birth year of the opening initiation < 18: born 2008,
    # 2025 - 2008 = 17 (R14a, flagged); born 2007, 18 (R14b, not flagged). R14c: the lines of
    # the initiation carry 1950, none (the correction) and 2009: the event's value is the
    # largest, 2009 (16, flagged). R14d: the birth year 2010 is on a repeat initiation (04-10,
    # the programme of 04-01 runs to 05-01), which opens nothing: R01, not R14.
    + [line("R14a", "2025-04-01", INIT5, patient_birth_year=2008)]
    + [line("R14b", "2025-04-01", INIT5, patient_birth_year=2007)]
    + [line("R14c", "2025-04-01", INIT5, patient_birth_year=1950)]
    + [line("R14c", "2025-04-01", INIT5, -1)]
    + [line("R14c", "2025-04-01", INIT5, patient_birth_year=2009)]
    + [
        line("R14d", "2025-04-01", INIT5),
        line("R14d", "2025-04-10", INIT5, patient_birth_year=2010),
    ]
    # R15: initiated with prescriber DR1; steps by DR1 (04-01), DR2 (04-11: flagged) and an
    # unknown prescriber (04-21: not checked); a follow-up by DR3 (no prescription: not
    # checked). R15b: the initiation's prescriber is unknown: nothing to compare.
    + [line("R15a", "2025-04-01", INIT10, prescriber_id="DR1")]
    + [line("R15a", "2025-04-01", RED10, prescriber_id="DR1")]
    + [line("R15a", "2025-04-11", RED10, prescriber_id="DR2")]
    + [line("R15a", "2025-04-21", RED10), line("R15a", "2025-04-25", FOLLOW, prescriber_id="DR3")]
    + [line("R15b", "2025-04-01", INIT10), line("R15b", "2025-04-01", RED10, prescriber_id="DR2")]
    # Several rules on one event: initiated at PH1, a step at PH2 too early (10 capsules on
    # Mon 2025-09-01 end Wed 09-10; earliest Sat 09-06): R06 and R08.
    + [line("MULTI", "2025-09-01", INIT10), line("MULTI", "2025-09-01", RED10)]
    + [line("MULTI", "2025-09-03", RED10, pharmacy="PH2")]
)

EXPECTED = {
    "R01": [
        ("R01a", "2025-03-03"),
        ("R01a", "2025-05-05"),
        ("R06b", "2025-04-01"),
        ("R13a", "2025-04-01"),
        ("R13b", "2025-04-20"),
        ("R13c", "2025-04-07"),
        ("R14d", "2025-04-10"),
    ],
    "R02": [("R02a", "2025-02-01"), ("R02b", "2025-02-10"), ("R11b", "2023-01-20")],
    "R03": [("R03a", "2025-02-25")],
    "R04": [("R04a", "2025-04-06")],
    "R05": [("R05a", "2025-01-12")],
    "R06": [
        ("MULTI", "2025-09-03"),
        ("R06a", "2025-01-06"),
        ("R06a", "2025-01-20"),
        ("R06b", "2025-04-01"),
    ],
    "R07": [("R07b", "2025-05-20"), ("R07c", "2025-05-15"), ("R07e", "2025-05-29")],
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
    "R12": [("R12b", "2025-05-18")],
    "R13": [("R13a", "2025-04-01"), ("R13b", "2025-04-20")],
    "R14": [("R14a", "2025-04-01"), ("R14c", "2025-04-01")],
    "R15": [("R15a", "2025-04-11")],
}
# SPEC §10: R16-R18 (SPEC §14, BZRA deliveries) are null while the warehouse holds none.
NOT_OBSERVABLE = ("R16", "R17", "R18")
CAUSAL_FINDINGS_SQL = "core/95_core_compliance_findings_causal.sql"  # R01, R03-R15
N_FINDINGS = sum(len(found) for found in EXPECTED.values())


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
        "select patient_id, detail_key, detail_values from mart_compliance_findings "
        "where rule_id = 'R08'",
    )
    assert {r["detail_key"] for r in rows} == {"r08_early_delivery"}
    details = {r["patient_id"]: r["detail_values"] for r in rows}
    assert details["E25b"]["earliest_date"] == "2025-04-17"
    assert details["E24b"]["earliest_date"] == "2024-03-28"
    assert details["HOLb"]["earliest_date"] == "2023-11-09"
    assert details["Q2"]["earliest_date"] == "2025-06-06"
    assert (details["STBb"]["kind"], details["STBb"]["delivery_date"]) == (
        "stabilisation",
        "2025-05-09",
    )


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
    # R01a's initiations open programmes 2 and 3; the other repeat initiations belong to the
    # programme that runs (SPEC v2 §5).
    assert sorted(r["programme_id"] for r in rows) == [
        "R01a#2", "R01a#3", "R06b#1", "R13a#1", "R13b#1", "R13c#1", "R14d#1",
    ]  # fmt: skip


def test_findings_respect_the_as_of_date(db):
    # As of 2025-03-31: R01a's third programme (05-05), the R01 cases of April and the later
    # R08 cases do not exist.
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
    assert doc["rules"] == {
        **{rule: len(found) for rule, found in sorted(EXPECTED.items())},
        **dict.fromkeys(NOT_OBSERVABLE),
    }
    assert list(doc["rules"]) == [f"R{n:02d}" for n in range(1, 19)]
    assert len(doc["findings"]) == N_FINDINGS
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
        "detail": "opens programme 2 of the patient (first programme started 2025-01-06)",
    }
    r08 = [f for f in doc["findings"] if f["rule"] == "R08"]
    assert {f["severity"] for f in r08} == {"warning"}
    # Sorted by rule, then delivery date.
    assert [f["delivery_date"] for f in r08] == sorted(f["delivery_date"] for f in r08)


def test_compliance_counts_are_suppressed_by_default(db):
    # R01 has 7 findings and R08 8 (shown); every other rule 1 to 4 ("<5"); R16-R18 null.
    doc = cli_json(db, "compliance")
    assert (doc["rules"]["R01"], doc["rules"]["R08"]) == (7, 8)
    shown = {"R01", "R08", *NOT_OBSERVABLE}
    assert {doc["rules"][r] for r in doc["rules"] if r not in shown} == {"<5"}
    assert [doc["rules"][r] for r in NOT_OBSERVABLE] == [None, None, None]
    # The findings are the analysts' work list: listed in full.
    assert len(doc["findings"]) == N_FINDINGS


def test_all_rules_present_with_zero_findings(tmp_path):
    db = build(tmp_path, [line("A", "2025-03-03", INIT5)])
    doc = cli_json(db, "compliance")
    rules = {**{f"R{n:02d}": 0 for n in range(1, 16)}, **dict.fromkeys(NOT_OBSERVABLE)}
    disclosure = {"applied": True, "threshold": 5, "rules": ["primary"], "stock_rounding": 5}
    assert doc == {"as_of": "2025-03-03", "rules": rules, "findings": [], "disclosure": disclosure}


def test_compliance_csv(db, tmp_path):
    status, out = run_cli("--db", str(db), "compliance", "--format", "csv")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == (
        "as_of,rule,severity,programme_id,patient_id,pharmacy_id,delivery_date,cnk,kind,detail"
    )
    assert len(lines) == 1 + N_FINDINGS
    assert lines[1].startswith("2025-09-03,R01,error,R01a#2,R01a,PH1,2025-03-03,5521950,")
    # The JSON and CSV list the same findings.
    doc = json.loads(run_cli("--db", str(db), "compliance")[1])
    assert len(doc["findings"]) == len(lines) - 1


# --- SPEC v2 §8: the step end carries early collection forward (R08, R07) ------------------


def test_r08_early_collection_accumulates_around_a_public_holiday(tmp_path):
    # 10-step programme, 10-capsule steps. Step 1 on Mon 2025-05-12 ends Wed 05-21. Step 2 on
    # Sat 05-17, exactly 3 working days early (Tue 05-20 (1), Mon 05-19 (2), Sun skipped,
    # Sat 05-17 (3)): allowed; it starts on 05-22 and ends Sat 05-31 (from its own delivery
    # it would end 05-26). Step 3, from 05-31: Fri 05-30 (1), Thu 05-29 Ascension skipped,
    # Wed 05-28 (2), Tue 05-27 (3): earliest 05-27. ACCa collects it on 05-27 (allowed), ACCb
    # on Mon 05-26 (flagged; v1, from step 2's own end 05-26, allowed it from Thu 05-22).
    lines = []
    for patient, third in (("ACCa", "2025-05-27"), ("ACCb", "2025-05-26")):
        lines += programme(
            patient,
            "2025-05-12",
            INIT10,
            [("2025-05-12", RED10), ("2025-05-17", RED10), (third, RED10)],
        )
    db = build(tmp_path, lines)
    rows = query(
        db,
        "select patient_id, step_end_date from core_programme_events where kind = 'reduction' "
        "order by patient_id, patient_event_number",
    )
    assert [r["step_end_date"].isoformat() for r in rows if r["patient_id"] == "ACCa"] == [
        "2025-05-21",
        "2025-05-31",
        "2025-06-10",
    ]
    (finding,) = query(db, "select * from mart_compliance_findings")
    assert (finding["rule_id"], finding["patient_id"]) == ("R08", "ACCb")
    assert finding["delivery_date"].isoformat() == "2025-05-26"
    # Its detail in the reader's language (dates by Babel), and in the exports' English.
    assert finding_detail(finding, "fr") == (
        "palier de diminution délivré le 26 mai 2025, avant la date autorisée au plus tôt, "
        "le 27 mai 2025 (palier de diminution précédent de 10 gélules, délivré le 17 mai 2025 "
        "et se terminant le 31 mai 2025)"
    )
    assert finding_detail(finding, "nl") == (
        "afbouwstap afgeleverd op 26 mei 2025, ten vroegste toegestaan op 27 mei 2025 (de "
        "vorige afbouwstap van 10 capsules, afgeleverd op 17 mei 2025, eindigt op 31 mei 2025)"
    )
    assert finding_detail(finding, "en") == (
        "reduction step delivered 26 May 2025, earliest allowed 27 May 2025 (previous "
        "reduction step of 10 capsules delivered 17 May 2025 ends 31 May 2025)"
    )
    assert finding_detail(finding, "en", machine=True) == (
        "reduction delivered 2025-05-26, earliest allowed 2025-05-27 (previous reduction step "
        "of 10 capsules delivered 2025-05-17 ends 2025-05-31)"
    )
    (exported,) = cli_json(db, "compliance")["findings"]
    assert exported["detail"] == finding_detail(finding, "en", machine=True)


def test_r08_collecting_every_seven_days_is_flagged_from_the_third_step(tmp_path):
    # A 10-capsule step every 7 days from Mon 2025-09-01 (the case of issue 14; v1 never
    # flagged it). Step ends, carried forward: 09-10, 09-20, 09-30, 10-10, ... (10 days each).
    # Step 2 (Mon 09-08): earliest from Wed 09-10 is Sat 09-06 (Tue, Mon, Sat): allowed.
    # Step 3 (Mon 09-15): earliest from Sat 09-20 is Wed 09-17 (Fri, Thu, Wed): flagged, and
    # every later step is 3 days further ahead: steps 3 to 10 are flagged (8 events).
    db = build(tmp_path, programme("W", "2025-09-01", INIT10, every("2025-09-01", 7, 10, RED10)))
    rows = query(
        db,
        "select step_end_date from core_programme_events where kind = 'reduction' "
        "order by patient_event_number",
    )
    assert [r["step_end_date"].isoformat() for r in rows[:4]] == [
        "2025-09-10",
        "2025-09-20",
        "2025-09-30",
        "2025-10-10",
    ]
    assert findings(db) == [
        ("R08", day, RED10)
        for day in (
            "2025-09-15", "2025-09-22", "2025-09-29", "2025-10-06",
            "2025-10-13", "2025-10-20", "2025-10-27", "2025-11-03",
        )
    ]  # fmt: skip


def test_r08_step_end_restarts_after_a_stabilisation(tmp_path):
    # Step 1 (10 capsules) Mon 2025-09-01 ends 09-10; step 2 on Sat 09-06 (the earliest) ends
    # 09-20 carried forward. A stabilisation on 09-17 (earliest from 09-20: Wed 09-17) is on
    # time. The reduction after it, on Fri 09-19, starts on its own delivery date (the
    # stabilisation's length is not in the export) and ends 09-28; the one after, on Thu
    # 09-25 (earliest from Sun 09-28: Sat 09-27, Fri 09-26, Thu 09-25), is on time.
    db = build(
        tmp_path,
        programme(
            "V",
            "2025-09-01",
            INIT10,
            [
                ("2025-09-01", RED10),
                ("2025-09-06", RED10),
                ("2025-09-17", STAB),
                ("2025-09-19", RED10),
                ("2025-09-25", RED10),
            ],
        ),
    )
    rows = query(
        db,
        "select step_end_date from core_programme_events where kind = 'reduction' "
        "order by patient_event_number",
    )
    assert [r["step_end_date"].isoformat() for r in rows] == [
        "2025-09-10",
        "2025-09-20",
        "2025-09-28",
        "2025-10-08",
    ]
    assert findings(db) == []


def test_details_of_the_v2_rules(db):
    """The `detail` of the JSON export: English, ISO dates (the machine contract)."""
    found = cli_json(db, "compliance", "--no-suppress")["findings"]
    details = {(f["patient_id"], f["rule"]): f["detail"] for f in found}
    assert details[("R13b", "R01")] == (
        "repeat initiation while programme 1 (started 2025-04-07) runs"
    )
    assert details[("R07b", "R07")] == (
        "reduction step ends 2025-05-29, day 361 from the first reduction step delivered "
        "2024-06-03 (limit day 360, 2025-05-28)"
    )
    assert details[("R07e", "R07")].startswith("stabilisation step delivered 2025-05-29, day 361")
    assert details[("R12b", "R12")] == (
        "follow-up interview delivered 2025-05-18, after the completion on 2025-05-17 "
        "(the scheme's last reduction step)"
    )
    assert details[("R13a", "R13")] == (
        "initiation for the 5-step scheme in a programme of the 10-step scheme (started 2025-04-01)"
    )
    assert details[("R14a", "R14")] == (
        "programme opened on 2025-04-01 for a patient born in 2008, aged 16 or 17 (adults only)"
    )
    assert details[("R15a", "R15")] == (
        "reduction prescribed by DR2, programme initiated with prescriber DR1"
    )


def test_every_finding_has_its_rules_severity(db):
    # R16-R18 need BZRA deliveries, which this warehouse does not hold (tests/test_bzra.py).
    registry = {
        rule.id: rule.severity for rule in load_registry().rules if rule.id not in NOT_OBSERVABLE
    }
    rows = query(db, "select distinct rule_id, severity from mart_compliance_findings")
    assert {r["rule_id"]: r["severity"] for r in rows} == registry


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_detail_has_its_words_with_the_values_it_names(db):
    """Each sentence the mart names (`detail_key`) has words in the three languages, whose
    {placeholders} are exactly the finding's `detail_values`; LINES meet every sentence."""
    sql_keys = {
        key
        for path in ("marts/mart_compliance_findings.sql", CAUSAL_FINDINGS_SQL)
        for key in re.findall(r"'(r\d\d_[a-z_]+)'", read_sql(path))
    }
    # R16-R18 need BZRA deliveries: their sentences are checked in tests/test_bzra.py.
    sql_keys = {k for k in sql_keys if not k.startswith(("r16_", "r17_", "r18_"))}
    rows = query(db, "select * from mart_compliance_findings")
    assert {r["detail_key"] for r in rows} == sql_keys
    for row in rows:
        for lang in i18n.LANGUAGES:
            words = i18n.catalogue(lang)["finding_" + row["detail_key"]]
            assert _placeholders(words) == set(row["detail_values"]), (row["detail_key"], lang)
            detail = finding_detail(row, lang)
            assert "{" not in detail and "None" not in detail


@pytest.mark.parametrize("lang", ["fr", "nl"])
def test_no_detail_in_french_or_dutch_has_english_words(db, lang):
    rows = query(db, "select * from mart_compliance_findings")
    english = re.compile(r"\b(step|delivered|programme of|interview|earliest|allowed|before)\b")
    assert [d for d in (finding_detail(r, lang) for r in rows) if english.search(d)] == []
