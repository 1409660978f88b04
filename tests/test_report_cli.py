"""The command-line contract of SPEC §10 for report, cohorts and compliance, and SPEC §9.

JSON keys and types exactly as the spec names them; disclosure control on by default; CSV
layouts; plain messages (exit status 2, no traceback) when there is nothing to report.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from tests.sqlcase import (
    FOLLOW,
    INIT5,
    INIT7,
    INIT10,
    RED10,
    RED20,
    SPEC_STATE_OF_PLAY_METRICS,
    build,
    cli_json,
    every,
    line,
    programme,
    run_cli,
)

METRIC_KEYS = list(SPEC_STATE_OF_PLAY_METRICS)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    # June 2025: seven 10-step programmes started (P0..P6) with a 10-capsule step each on
    # their start day; two 5-step programmes (Q0, Q1) with 20-capsule steps; one 7-step
    # programme (R0) with a follow-up. One unassigned step (U, 06-20).
    lines = []
    for i in range(7):
        lines += programme(f"P{i}", f"2025-06-0{i + 1}", INIT10, [(f"2025-06-0{i + 1}", RED10)])
    for i in range(2):
        lines += programme(f"Q{i}", "2025-06-10", INIT5, every("2025-06-10", 20, 2, RED20))
    lines += programme("R0", "2025-06-12", INIT7, [("2025-06-12", RED10), ("2025-06-20", FOLLOW)])
    lines += [line("U", "2025-06-20", RED10)]
    return build(tmp_path_factory.mktemp("cli"), lines)


def test_report_json_shape_and_types(db):
    doc = cli_json(db, "report", "--month", "2025-06", "--no-suppress")
    assert list(doc) == ["month", "as_of", "provisional", "schemes", "unassigned"]
    assert doc["month"] == "2025-06"
    assert dt.date.fromisoformat(doc["as_of"]) == dt.date(2025, 6, 30)
    assert isinstance(doc["provisional"], bool)
    for scheme in ("5", "7", "10", "total"):
        figures = doc["schemes"][scheme]
        assert list(figures) == [*METRIC_KEYS, "reduction_steps_by_capsules"]
        counts = [k for k in METRIC_KEYS if not k.startswith("fees_")]
        assert all(type(figures[k]) is int for k in counts)
        assert isinstance(figures["fees_estimated_eur"], int | float)
        assert isinstance(figures["fees_flagged_eur"], int | float)
    assert list(doc["unassigned"]) == [
        "reduction_steps_delivered",
        "stabilisation_steps_delivered",
        "follow_up_interviews",
        "fees_estimated_eur",
        "reduction_steps_by_capsules",
    ]
    # 10 steps: 7 initiations (7 x 23.24) + 7 steps (7 x 15.71) = 162.68 + 109.97 = 272.65.
    ten = doc["schemes"]["10"]
    assert (ten["patients_initiated"], ten["reduction_steps_delivered"]) == (7, 7)
    assert ten["fees_estimated_eur"] == 272.65
    # 5 steps: Q0, Q1 each a 20-capsule step on 06-10 and 06-30: 4 steps.
    assert doc["schemes"]["5"]["reduction_steps_by_capsules"] == {"10": 0, "20": 4, "30": 0}


def test_report_suppresses_small_counts_by_default(db):
    """SPEC §9 v2 on June 2025 (as-of 06-30), worked by hand from the fixture.

    Exact (5, 7, 10 -> total): patients 2, 1, 7 -> 10; reduction steps 4, 1, 7 -> 12 (scheme 5:
    20 capsules; 7 and 10: 10 capsules); follow-ups 0, 1, 0 -> 1; cumulative and active 2, 1,
    7 -> 10; unassigned: 1 reduction step (10 capsules).
    1. primary: 2, 1, 4, 1 and the follow-ups' 1s are "<5".
    2. complementary: patients and reduction steps have two masked schemes: nothing more. The
       10-capsule split across schemes (0, "<5", 7 -> 8) has one masked part: the 7 of scheme
       10 becomes "x"; the capsules of the total column (8, "<5", 0 -> 12) have one: the 8
       becomes "x"; scheme 10's column ("x", 0, 0 -> 7) then has one, and no non-zero part
       left: its reduction steps (7) become "x" (else 10-capsule steps of scheme 10 = 7).
    3. stocks: 7 -> 5 (nearest 5), 10 -> 10.
    4. fees: scheme 10's reduction steps are masked -> null; the total's follow-ups ("<5")
       -> null; the unassigned reduction steps ("<5") -> null (v1 showed 15.71 = one step).
    """
    doc = cli_json(db, "report", "--month", "2025-06")
    ten, five, seven, total = (doc["schemes"][s] for s in ("10", "5", "7", "total"))
    assert (five["patients_initiated"], seven["patients_initiated"]) == ("<5", "<5")
    assert (ten["patients_initiated"], total["patients_initiated"]) == (7, 10)
    assert [b["reduction_steps_delivered"] for b in (five, seven, ten, total)] == [
        "<5",
        "<5",
        "x",
        12,
    ]
    assert five["reduction_steps_by_capsules"] == {"10": 0, "20": "<5", "30": 0}
    assert seven["reduction_steps_by_capsules"] == {"10": "<5", "20": 0, "30": 0}
    assert ten["reduction_steps_by_capsules"] == {"10": "x", "20": 0, "30": 0}
    assert total["reduction_steps_by_capsules"] == {"10": "x", "20": "<5", "30": 0}
    assert (seven["follow_up_interviews"], total["follow_up_interviews"]) == ("<5", "<5")
    assert ten["stabilisation_steps_delivered"] == 0
    assert (ten["patients_initiated_cumulative"], total["patients_initiated_cumulative"]) == (5, 10)
    assert (ten["active_programmes_end_of_month"], total["active_programmes_end_of_month"]) == (
        5,
        10,
    )
    for block in (five, seven, ten, total, doc["unassigned"]):
        assert block["fees_estimated_eur"] is None
    assert doc["unassigned"]["reduction_steps_delivered"] == "<5"
    assert doc["disclosure"] == {
        "applied": True,
        "threshold": 5,
        "rules": ["primary", "complementary", "rounded_stocks", "fees"],
        "stock_rounding": 5,
    }


def test_suppression_threshold_is_configuration(db, tmp_path):
    """Threshold 3: 1 and 2 become "<3"; reduction steps 4, "<3", 7 -> 12 have one masked
    scheme, so the smallest other non-zero, scheme 5's 4, becomes "x"."""
    config = tmp_path / "t.toml"
    config.write_text("[reporting]\nsuppression_threshold = 3\n", encoding="utf-8")
    doc = cli_json(db, "--config", str(config), "report", "--month", "2025-06")
    assert doc["schemes"]["5"]["patients_initiated"] == "<3"
    assert doc["schemes"]["7"]["reduction_steps_delivered"] == "<3"
    assert doc["schemes"]["5"]["reduction_steps_delivered"] == "x"
    assert doc["schemes"]["7"]["follow_up_interviews"] == "<3"
    assert doc["disclosure"]["threshold"] == 3


def test_no_suppress_gives_exact_figures(db):
    doc = cli_json(db, "report", "--month", "2025-06", "--no-suppress")
    assert doc["schemes"]["5"]["patients_initiated"] == 2
    assert doc["schemes"]["7"]["follow_up_interviews"] == 1


def test_report_csv(db):
    status, out = run_cli("--db", str(db), "report", "--month", "2025-06", "--format", "csv")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == ",".join(
        ["month", "as_of", "provisional", "scheme", *METRIC_KEYS]
        + ["reduction_steps_10_capsules", "reduction_steps_20_capsules"]
        + ["reduction_steps_30_capsules", "disclosure"]
    )
    assert [row.split(",")[3] for row in lines[1:]] == ["5", "7", "10", "total", "unassigned"]
    # SPEC §9 (see test_report_suppresses_small_counts_by_default): 10 steps: 7 patients
    # initiated (0 repeat), 7 initiations, cumulative and active 7 rounded to 5, steps "x",
    # so the fees are empty; the last column says which disclosure rules were applied.
    note = "threshold=5;primary;complementary;rounded_stocks;fees"
    assert lines[3] == f"2025-06,2025-06-30,true,10,7,0,7,5,5,x,0,0,0,0,,,x,0,0,{note}"
    # The unassigned row: only steps, follow-ups and the estimated fees apply; suppressed
    # counts as "<5", the fees of a masked step empty.
    assert lines[5] == f"2025-06,2025-06-30,true,unassigned,,,,,,<5,0,0,,,,,<5,0,0,{note}"


def test_output_file(db, tmp_path):
    out = tmp_path / "june.json"
    status, printed = run_cli("--db", str(db), "report", "--month", "2025-06", "--output", str(out))
    assert (status, printed) == (0, "")
    assert json.loads(out.read_text(encoding="utf-8"))["month"] == "2025-06"


def test_empty_warehouse_is_a_plain_error(tmp_path, capsys):
    db = build(tmp_path, [])
    for command in (["report", "--month", "2025-06"], ["cohorts"], ["compliance"]):
        status, out = run_cli("--db", str(db), *command)
        assert (status, out) == (2, "")
        err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
        assert "holds no billing lines" in err
        assert "Traceback" not in err


def test_missing_warehouse_is_a_plain_error(tmp_path, capsys):
    status, _ = run_cli("--db", str(tmp_path / "none.duckdb"), "cohorts")
    assert status == 2
    assert "no warehouse at" in " ".join(capsys.readouterr().err.split())


def test_outdated_views_are_refreshed(tmp_path):
    # A warehouse whose views were written by another version of sql/ (its fingerprint
    # differs): the command refreshes them before reading.
    db = build(tmp_path, [line("A", "2025-06-02", INIT5)])
    con = duckdb.connect(str(db))
    con.execute("drop view mart_state_of_play")
    con.execute("update warehouse_meta set value = 'old' where key = 'schema_fingerprint'")
    con.close()
    doc = cli_json(db, "report", "--month", "2025-06", "--no-suppress")
    assert doc["schemes"]["5"]["patients_initiated"] == 1


def test_report_as_of_before_the_data(db):
    # As of 2025-05-31 nothing exists yet: June is all zeros.
    doc = cli_json(db, "report", "--month", "2025-06", "--as-of", "2025-05-31")
    assert doc["as_of"] == "2025-05-31"
    assert doc["schemes"]["total"]["patients_initiated_cumulative"] == 0
    assert doc["schemes"]["total"]["fees_estimated_eur"] == 0


def test_bad_month_is_refused_by_the_parser(db, capsys):
    with pytest.raises(SystemExit) as exc:
        run_cli("--db", str(db), "report", "--month", "06/2025")
    assert exc.value.code == 2
    assert "not a month" in capsys.readouterr().err


def test_exports_read_the_published_snapshot_when_it_is_up_to_date(served, cli, tmp_path):
    """With an up-to-date snapshot (a dashboard is in use) the exports read its published
    marts; without one, the views. The documents must be identical, byte for byte."""
    import shutil

    from etl.base.config import load_config
    from etl.base.publish import current_snapshot_path
    from etl.outputs.report import open_for_export

    bare = tmp_path / "bare.duckdb"
    shutil.copyfile(served.db, bare)  # the same data, no snapshot beside it
    config = load_config()
    con = open_for_export(served.db, config, None, "2025-03")
    try:
        (path,) = con.execute("select path from duckdb_databases() where database_name = "
                              "current_database()").fetchone()  # fmt: skip
    finally:
        con.close()
    assert path == str(current_snapshot_path(served.db))
    con = open_for_export(bare, config, None, "2025-03")
    try:
        (path,) = con.execute("select path from duckdb_databases() where database_name = "
                              "current_database()").fetchone()  # fmt: skip
    finally:
        con.close()
    assert path == str(bare)
    for args in (["report", "--month", "2025-03"], ["report", "--month", "2024-11"],
                 ["cohorts"], ["compliance"], ["report", "--month", "2025-03", "--format", "csv"]):  # fmt: skip
        status, published, _ = cli("--db", served.db, *args)
        assert status == 0
        status, views, _ = cli("--db", bare, *args)
        assert status == 0
        assert published == views, args


def test_publish_command_then_loads_keep_the_snapshot_up_to_date(cli, tmp_path):
    from etl.base.publish import current_snapshot_path, open_snapshot
    from tests.conftest import CANONICAL_HEADER, write_delimited

    db = tmp_path / "w.duckdb"
    first = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER,
                            [["P1", "PH1", "03/03/2025", "5521950", "1", "23,24"]])  # fmt: skip
    second = write_delimited(tmp_path / "b.csv", CANONICAL_HEADER,
                             [["P2", "PH1", "04/03/2025", "5521950", "1", "23,24"]])  # fmt: skip
    assert cli("--db", db, "load", first)[0] == 0
    assert not (tmp_path / "w.snapshots").exists()
    status, out, _ = cli("--db", db, "publish")
    assert status == 0 and "published:" in out
    assert cli("--db", db, "load", second)[0] == 0
    report = json.loads(cli("--db", db, "report", "--month", "2025-03", "--no-suppress")[1])
    assert report["schemes"]["total"]["patients_initiated"] == 2
    con = open_snapshot(current_snapshot_path(db))
    try:
        assert con.execute("select max_load_id from published.snapshot_meta").fetchone() == (2,)
    finally:
        con.close()
