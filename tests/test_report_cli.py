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
    doc = cli_json(db, "report", "--month", "2025-06")
    ten, five, seven = (doc["schemes"][s] for s in ("10", "5", "7"))
    # 7 patients and 7 steps are shown; 0 stays 0; fees are never suppressed.
    assert (ten["patients_initiated"], ten["reduction_steps_delivered"]) == (7, 7)
    assert ten["stabilisation_steps_delivered"] == 0
    assert ten["fees_estimated_eur"] == 272.65
    # 2 patients, 4 steps, 1 follow-up: "<5".
    assert five["patients_initiated"] == "<5"
    assert five["reduction_steps_delivered"] == "<5"
    assert seven["follow_up_interviews"] == "<5"
    assert five["reduction_steps_by_capsules"] == {"10": 0, "20": "<5", "30": 0}
    assert doc["unassigned"]["reduction_steps_delivered"] == "<5"
    assert doc["unassigned"]["fees_estimated_eur"] == 15.71
    # Total: 10 patients, 12 steps.
    assert doc["schemes"]["total"]["patients_initiated"] == 10


def test_suppression_threshold_is_configuration(db, tmp_path):
    config = tmp_path / "t.toml"
    config.write_text("[reporting]\nsuppression_threshold = 3\n", encoding="utf-8")
    doc = cli_json(db, "--config", str(config), "report", "--month", "2025-06")
    # Threshold 3: 1 and 2 become "<3"; 4 is shown.
    assert doc["schemes"]["5"]["patients_initiated"] == "<3"
    assert doc["schemes"]["5"]["reduction_steps_delivered"] == 4
    assert doc["schemes"]["7"]["follow_up_interviews"] == "<3"


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
        + ["reduction_steps_30_capsules"]
    )
    assert [row.split(",")[3] for row in lines[1:]] == ["5", "7", "10", "total", "unassigned"]
    # 10 steps: 7 patients initiated (0 repeat), 7 initiations, 7 cumulative, 7 active, 7
    # steps; fees 272.65, none flagged.
    assert lines[3] == "2025-06,2025-06-30,true,10,7,0,7,7,7,7,0,0,0,0,272.65,0.00,7,0,0"
    # The unassigned row: only steps, follow-ups and the estimated fees apply; suppressed
    # counts as "<5".
    assert lines[5] == "2025-06,2025-06-30,true,unassigned,,,,,,<5,0,0,,,15.71,,<5,0,0"


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
    from etl.base.publish import current_snapshot_path
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
    con = duckdb.connect(str(current_snapshot_path(db)),
                         read_only=True)  # fmt: skip
    try:
        assert con.execute("select max_load_id from published.snapshot_meta").fetchone() == (2,)
    finally:
        con.close()
