"""SPEC v2 §14 by hand: BZRA deliveries around the programme (R16, R17, R18, BZRA-free at N days).

Dates worked out by hand (2024 is a leap year, 2025 is not):
- S = 2025-03-01: S - 1 = 2025-02-28; S - 90 = 2024-12-01 (Dec 31 + Jan 31 + Feb 28 = 90 days
  back); S - 91 = 2024-11-30; S - 180 = 2024-09-02 (Sep 2..30 is 29 days, + Oct 31, Nov 30,
  Dec 31, Jan 31, Feb 28 = 180); S - 181 = 2024-09-01.
- A 5-step programme started 2025-01-06 with a 10-capsule reduction every 10 days (01-06,
  01-16, 01-26, 02-05, 02-15) is completed on 2025-02-15 and covered until T = 2025-02-24.
  T + 1 = 2025-02-25; T + 90 = 2025-05-25 (Feb 25..28 is 4 days, + Mar 31, Apr 30 = 65, + 25);
  T + 91 = 2025-05-26; T + 180 = 2025-08-23; T + 365 = 2026-02-24.
- A programme started 2025-03-01 with one 10-capsule step that day is covered until
  T = 2025-03-10 and stopped once as-of > 2025-04-09.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from etl.base import i18n
from etl.base.warehouse import connect
from etl.figures import finding_detail
from tests.sqlcase import INIT5, RED10, build, cli_json, every, line, programme, query

DIAZEPAM = "N05BA01"
LORMETAZEPAM = "N05CD06"
AS_OF = "2026-06-30"


def bzra(patient: str, date: str, atc: str = DIAZEPAM, pharmacy: str = "PH1", cnk: str = "1000001",
         quantity: int = 1) -> dict:  # fmt: skip
    """One BZRA line (a pack of a benzodiazepine or Z-drug)."""
    return {
        "patient_id": patient,
        "pharmacy_id": pharmacy,
        "delivery_date": date,
        "cnk": cnk,
        "atc": atc,
        "quantity": quantity,
    }


def build_with_bzra(tmp_path: Path, lines: list[dict], bzra_lines: list[dict], name="w.duckdb"):
    """A warehouse holding these programme lines and these BZRA lines (load 1)."""
    db = build(tmp_path, lines, name)
    con = connect(db)
    try:
        con.executemany(
            "insert into bzra_lines values (?, 1, 1, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, i + 2, b["patient_id"], b["pharmacy_id"], b["delivery_date"], b["cnk"],
                 b["atc"], b["quantity"])
                for i, b in enumerate(bzra_lines)
            ],
        )  # fmt: skip
    finally:
        con.close()
    return db


def completed_five(patient: str, pharmacy: str = "PH1") -> list[dict]:
    """A 5-step programme started 2025-01-06, completed 2025-02-15, T = 2025-02-24."""
    return programme(patient, "2025-01-06", INIT5, every("2025-01-06", 10, 5, RED10), pharmacy)


def one_step(patient: str, start: str = "2025-03-01", pharmacy: str = "PH1") -> list[dict]:
    """A 5-step programme with one 10-capsule step on its start day."""
    return programme(patient, start, INIT5, [(start, RED10)], pharmacy)


# The observed window: the frame patient's deliveries at PH1 on 2024-01-01 and 2026-06-30.
FRAME = [bzra("FRAME", "2024-01-01"), bzra("FRAME", AS_OF)]

LINES = (
    one_step("P16a") + one_step("P16b") + one_step("P16c") + one_step("P16d")
    + one_step("P17a") + one_step("P17b") + one_step("P18a")
    + completed_five("PF1") + completed_five("PF2") + completed_five("PF3")
    + completed_five("PF4", pharmacy="PH9")
    + [line("LAST", AS_OF, INIT5, pharmacy="PH3")]
)  # fmt: skip
BZRA_LINES = FRAME + [
    # R16: S - 181 only (flagged), S - 180 (not), S - 1 (not), S only (flagged; and R18).
    bzra("P16a", "2024-09-01"),
    bzra("P16b", "2024-09-02"),
    bzra("P16c", "2025-02-28"),
    bzra("P16d", "2025-03-01"),
    # R17: two ATC codes in [S - 90, S - 1] (flagged); one of them at S - 91 (not).
    bzra("P17a", "2024-12-01", DIAZEPAM),
    bzra("P17a", "2025-02-28", LORMETAZEPAM),
    bzra("P17b", "2024-11-30", DIAZEPAM),
    bzra("P17b", "2025-02-28", LORMETAZEPAM),
    # R18: diazepam before at another pharmacy; during [S, T] = [03-01, 03-10]: diazepam at
    # the programme's pharmacy (the pack for the preparation: not flagged), diazepam at PH2
    # (flagged), lormetazepam at PH1 (flagged), diazepam at PH2 on T (flagged) and on T + 1
    # (after the programme: not flagged).
    bzra("P18a", "2025-02-01", DIAZEPAM, "PH2"),
    bzra("P18a", "2025-03-05", DIAZEPAM, "PH1"),
    bzra("P18a", "2025-03-06", DIAZEPAM, "PH2"),
    bzra("P18a", "2025-03-07", LORMETAZEPAM, "PH1", cnk="1000002"),
    bzra("P18a", "2025-03-10", DIAZEPAM, "PH2"),
    bzra("P18a", "2025-03-11", DIAZEPAM, "PH2"),
    # BZRA-free: PF1 relapses on T + 90, PF2 on T + 91, PF3 never; PF4's pharmacy (PH9) has
    # no BZRA delivery at all: not observable.
    bzra("PF1", "2025-05-25"),
    bzra("PF2", "2025-05-26"),
    bzra("PF4", "2025-03-01", pharmacy="PH2"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_with_bzra(tmp_path_factory.mktemp("bzra"), LINES, BZRA_LINES)


def rule_rows(db: Path, rule: str, as_of: str = AS_OF) -> list[tuple[str, str]]:
    rows = query(db, "select * from mart_compliance_findings where rule_id = ?", as_of, [rule])
    return sorted((r["patient_id"], r["delivery_date"].isoformat()) for r in rows)


def test_r16_window_is_s_minus_180_to_s_minus_1(db):
    """P16a (only S - 181) and P16d (only S) have no delivery in [S - 180, S - 1]; the opening
    initiation (2025-03-01) is flagged. PF1-PF3 start 2025-01-06: S - 180 = 2024-07-10 is inside
    the window (from 2024-01-01) and they have no delivery before: flagged too. PF4 is at PH9
    (no BZRA deliveries): not observable, not flagged. P18a, P17a/b, P16b/c: deliveries."""
    assert rule_rows(db, "R16") == [
        ("P16a", "2025-03-01"),
        ("P16d", "2025-03-01"),
        ("PF1", "2025-01-06"),
        ("PF2", "2025-01-06"),
        ("PF3", "2025-01-06"),
    ]


def test_r16_finding_is_on_the_opening_initiation(db):
    rows = query(db, "select * from mart_compliance_findings where rule_id = 'R16'", AS_OF)
    p16a = next(r for r in rows if r["patient_id"] == "P16a")
    assert (p16a["kind"], p16a["cnk"], p16a["severity"]) == ("initiation", INIT5, "warning")
    assert p16a["detail_values"] == {
        "window_start_date": "2024-09-02",
        "window_end_date": "2025-02-28",
    }


def test_r17_two_molecules_in_s_minus_90_to_s_minus_1(db):
    """P17a: N05BA01 on S - 90 and N05CD06 on S - 1: flagged. P17b: the first on S - 91."""
    assert rule_rows(db, "R17") == [("P17a", "2025-03-01")]
    (row,) = query(db, "select * from mart_compliance_findings where rule_id = 'R17'", AS_OF)
    assert row["detail_values"]["atc_codes"] == "N05BA01, N05CD06"
    assert row["kind"] == "initiation" and row["severity"] == "warning"


def test_r18_deliveries_during_the_programme(db):
    """P18a: 03-06 (PH2), 03-07 (other ATC at PH1), 03-10 (= T, PH2) flagged; 03-05 (same ATC
    at the programme's pharmacy) and 03-11 (T + 1) not. P16d's delivery on S: no ATC before,
    flagged. PF4's delivery on 2025-03-01 is after its T (2025-02-24): not flagged."""
    assert rule_rows(db, "R18") == [
        ("P16d", "2025-03-01"),
        ("P18a", "2025-03-06"),
        ("P18a", "2025-03-07"),
        ("P18a", "2025-03-10"),
    ]
    rows = query(db, "select * from mart_compliance_findings where rule_id = 'R18'", AS_OF)
    assert {r["severity"] for r in rows} == {"error"} and {r["kind"] for r in rows} == {"bzra"}
    assert {r["event_id"] for r in rows} == {None}


def test_r18_in_progress_window_ends_at_as_of(tmp_path):
    """A programme in progress on 2025-03-20 (T = 03-10, stopped only after 04-09): its window
    is [S, as-of]; a delivery at PH2 on 03-15 is flagged, one on 03-21 is after the as-of."""
    lines = one_step("PIP") + [line("LAST", "2025-03-20", INIT5, pharmacy="PH3")]
    db = build_with_bzra(
        tmp_path,
        lines,
        [bzra("PIP", "2024-01-01"), bzra("PIP", "2025-03-15", pharmacy="PH2"),
         bzra("PIP", "2025-03-21", pharmacy="PH2")],
    )  # fmt: skip
    assert rule_rows(db, "R18", "2025-03-20") == [("PIP", "2025-03-15")]


def test_bzra_free_cohort_columns(db):
    """Cohort 2025-01 scheme 5: PF1-PF4 completed; PF4 not observable (PH9). Observable at
    90/180/365 days: 3 (T + 365 = 2026-02-24 <= as-of 2026-06-30 = last window date).
    BZRA-free at 90: PF2 and PF3 (2 of 3, 0.6667); at 180 and 365: PF3 only (0.3333)."""
    (row,) = query(
        db, "select * from mart_cohorts where initiation_month = '2025-01' and scheme = 5", AS_OF
    )
    assert row["completed"] == 4
    assert [row[f"bzra_free_{n}d_observable"] for n in (90, 180, 365)] == [3, 3, 3]
    assert [row[f"bzra_free_{n}d"] for n in (90, 180, 365)] == [2, 1, 1]
    assert [row[f"bzra_free_{n}d_rate"] for n in (90, 180, 365)] == [0.6667, 0.3333, 0.3333]


def test_bzra_free_needs_t_plus_n_on_or_before_as_of(db):
    """As of 2025-05-25 = T + 90 (the window's last date is then PF1's 05-25 delivery): PF1-PF3
    observable at 90 days; PF2's relapse on 05-26 is after the as-of, so PF2 and PF3 are free.
    As of 2025-05-24: T + 90 is later, nothing observable: null, never 0."""
    sql = "select * from mart_cohorts where initiation_month = '2025-01' and scheme = 5"
    (row,) = query(db, sql, "2025-05-25")
    assert (row["bzra_free_90d_observable"], row["bzra_free_90d"]) == (3, 2)
    assert row["bzra_free_90d_rate"] == 0.6667
    assert row["bzra_free_180d_observable"] == 0 and row["bzra_free_180d"] is None
    (row,) = query(db, sql, "2025-05-24")
    assert row["bzra_free_90d_observable"] == 0
    assert row["bzra_free_90d"] is None and row["bzra_free_90d_rate"] is None


@pytest.mark.parametrize(
    ("first", "last", "observable"),
    [
        ("2025-02-25", "2025-05-25", 1),  # [T + 1, T + 90] exactly the observed window
        ("2025-02-26", "2025-05-25", 0),  # window starts on T + 2
        ("2025-02-25", "2025-05-24", 0),  # window ends on T + 89
    ],
)
def test_bzra_free_window_edges(tmp_path, first, last, observable):
    """One completed programme at PH1 (T = 2025-02-24), as of 2025-06-30; the only BZRA
    deliveries are another patient's at PH1 on `first` and `last` (the observed window)."""
    lines = completed_five("PW") + [line("LAST", "2025-06-30", INIT5, pharmacy="PH3")]
    db = build_with_bzra(tmp_path, lines, [bzra("OTHER", first), bzra("OTHER", last)])
    (row,) = query(db, "select * from mart_cohorts where initiation_month = '2025-01'")
    assert row["bzra_free_90d_observable"] == observable
    assert row["bzra_free_90d"] == (1 if observable else None)


@pytest.mark.parametrize(("first", "flagged"), [("2024-09-02", True), ("2024-09-03", False)])
def test_r16_observable_only_inside_the_window(tmp_path, first, flagged):
    """A programme started 2025-03-01 with no delivery to its patient: R16 applies only when
    the observed window starts on or before S - 180 = 2024-09-02."""
    lines = one_step("PO") + [line("LAST", "2025-06-30", INIT5, pharmacy="PH3")]
    db = build_with_bzra(tmp_path, lines, [bzra("OTHER", first), bzra("OTHER", "2025-06-30")])
    assert rule_rows(db, "R16", "2025-06-30") == ([("PO", "2025-03-01")] if flagged else [])


def test_netting_makes_one_delivery_per_group(tmp_path):
    """Two packs and a correction of one on the same day and CNK: net 1, one delivery; a
    cancelled delivery (net 0) is none, so the programme's patient stays free."""
    lines = completed_five("PN") + [line("LAST", "2025-06-30", INIT5, pharmacy="PH3")]
    db = build_with_bzra(
        tmp_path,
        lines,
        [bzra("OTHER", "2024-01-01"), bzra("OTHER", "2025-06-30"),
         bzra("PN", "2025-03-03", quantity=2), bzra("PN", "2025-03-03", quantity=-1),
         bzra("PN", "2025-04-01", quantity=1), bzra("PN", "2025-04-01", quantity=-1)],
    )  # fmt: skip
    rows = query(db, "select * from core_bzra_deliveries where patient_id = 'PN'")
    assert [(r["delivery_date"].isoformat(), r["net_quantity"]) for r in rows] == [
        ("2025-03-03", 1)
    ]


def test_compliance_json_r16_r18_null_without_bzra(tmp_path):
    """SPEC §10: with no BZRA delivery in the warehouse, R16-R18 are null; with some, counts."""
    db = build(tmp_path, one_step("PX"), "none.duckdb")
    rules = cli_json(db, "compliance", "--no-suppress")["rules"]
    assert [rules[r] for r in ("R16", "R17", "R18")] == [None, None, None]
    assert rules["R01"] == 0


def test_compliance_json_counts_r16_r18(db):
    rules = cli_json(db, "compliance", "--as-of", AS_OF, "--no-suppress")["rules"]
    assert [rules[r] for r in ("R16", "R17", "R18")] == [5, 1, 4]


def test_every_bzra_detail_has_its_words(db):
    """R16-R18's sentences (detail_key) exist in the three languages with exactly the values
    the mart gives; no English left in the French or Dutch sentences."""
    rows = query(
        db, "select * from mart_compliance_findings where rule_id in ('R16', 'R17', 'R18')", AS_OF
    )
    assert {r["detail_key"] for r in rows} == {
        "r16_no_prior_use",
        "r17_several_molecules",
        "r18_bzra_same_pharmacy",
        "r18_bzra_other_pharmacy",
    }
    english = re.compile(r"\b(delivered|before|programme of|pharmacy|molecules)\b")
    for row in rows:
        for lang in i18n.LANGUAGES:
            words = i18n.catalogue(lang)["finding_" + row["detail_key"]]
            names = {n for _, n, _, _ in string.Formatter().parse(words) if n}
            assert names == set(row["detail_values"]), (row["detail_key"], lang)
            detail = finding_detail(row, lang)
            assert "{" not in detail and "None" not in detail
            if lang != "en":
                assert not english.search(detail), detail
    (p18,) = [
        r for r in rows if r["detail_key"] == "r18_bzra_same_pharmacy" and r["patient_id"] == "P18a"
    ]
    assert finding_detail(p18, "en", machine=True) == (
        "N05CD06 delivered at the programme's pharmacy PH1 during the programme (started "
        "2025-03-01, until 2025-03-10), not a molecule of the 90 days before"
    )


def test_r18_judged_once_in_the_first_programme(tmp_path):
    """Programme 1 (5 steps from 2025-01-06) is completed on 02-15, covered until T1 = 02-24; an
    initiation on 02-20 opens programme 2 (S2 = 02-20, within [S1, T1]). Diazepam at PH1 on
    02-10 (in programme 1's window, nothing before: flagged) and on 02-22 (in both windows:
    judged in programme 1, where no diazepam came before S1, so flagged; in programme 2 it
    would have been the pack for the preparation, diazepam having come on 02-10)."""
    lines = completed_five("PR") + [line("PR", "2025-02-20", INIT5)]
    lines += [line("LAST", "2025-06-30", INIT5, pharmacy="PH3")]
    db = build_with_bzra(
        tmp_path,
        lines,
        [bzra("OTHER", "2024-01-01"), bzra("PR", "2025-02-10"), bzra("PR", "2025-02-22")],
    )
    rows = query(db, "select * from mart_compliance_findings where rule_id = 'R18'")
    assert sorted((r["delivery_date"].isoformat(), r["programme_id"]) for r in rows) == [
        ("2025-02-10", "PR#1"),
        ("2025-02-22", "PR#1"),
    ]


def test_scan_keeps_reference_codes_and_file_order(tmp_path):
    """The scan's CNK test for the product reference (a binary search of comparisons) keeps
    exactly the reference's BZRA CNKs, and the line numbers stay those of the file."""
    import duckdb

    from etl.ingest.load import code_in_sql

    codes = [f"{i * 7919 % 9_999_999:07d}" for i in range(1, 400)]
    probe = sorted(set(codes[::3] + [f"{i:07d}" for i in range(0, 9_999_999, 99_991)]))
    con = duckdb.connect()
    con.execute("create table p as select unnest(?::varchar[]) as c", [probe])
    kept = {
        r[0] for r in con.execute(f"select c from p where {code_in_sql('c', codes)}").fetchall()
    }
    assert kept == set(probe) & set(codes)
    assert code_in_sql("c", []) == "false"


def test_bzra_free_mart_completed_and_closed(db):
    """Start year 2025, scheme 5. Completed: PF1-PF4 (PF4 not observable), as in the cohort
    row. Closed adds the stopped one-step programmes started 2025-03-01 at PH1 (T = 03-10,
    T + 365 = 2026-03-10 <= as-of): P16a-d, P17a-b, P18a, all observable. Of those, BZRA-free
    at 90 days ([03-11, 06-08]): all but P18a (diazepam on 03-11); at 180 and 365 the same.
    Closed at 90: observable 3 + 7 = 10, free 2 + 6 = 8 (0.8); at 180: 1 + 6 = 7 (0.7)."""
    rows = query(db, "select * from mart_bzra_free where start_year = 2025 and scheme = 5", AS_OF)
    got = {(r["programmes_group"], r["days"]): r for r in rows}
    completed = got[("completed", 90)]
    assert (completed["programmes"], completed["observable"], completed["bzra_free"]) == (4, 3, 2)
    closed = got[("closed", 90)]
    assert (closed["programmes"], closed["observable"], closed["bzra_free"]) == (11, 10, 8)
    assert closed["bzra_free_rate"] == 0.8
    assert (got[("closed", 180)]["bzra_free"], got[("closed", 180)]["bzra_free_rate"]) == (7, 0.7)
