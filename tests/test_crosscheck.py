"""End to end: generated exports -> loader -> SQL marts -> CLI JSON, against the generator's truth
and its own reading of SPEC v2 (etl/synthetic/oracle.py, written without the SQL)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter, defaultdict

import polars as pl
import pytest

from etl.synthetic.calibration import RULES
from etl.synthetic.generate import generate
from etl.synthetic.oracle import read_lines, reference_cohorts, reference_state_of_play
from tests.conftest import query

MONTHS = [f"2023-{m:02d}" for m in range(2, 13)] + [f"2024-{m:02d}" for m in range(1, 7)]
MID_MONTH = dt.date(2024, 5, 15)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from etl.cli import main

    out = tmp_path_factory.mktemp("crosscheck")
    result = generate(
        out / "exports", seed=11, start=dt.date(2023, 2, 1), end=dt.date(2024, 6, 30),
        weekly_starts=12, file_format="csv.gz", style="nl", split="month",
    )  # fmt: skip
    db = out / "w.duckdb"
    assert main(["--db", str(db), "load", "--no-progress", *map(str, result.files)]) == 0
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    with result.ground_truth.open(encoding="utf-8") as fh:
        truth = list(csv.DictReader(fh))
    return db, manifest, truth


@pytest.fixture(scope="module")
def stored_lines(loaded):
    """The programme lines the warehouse stored, as the oracle reads them (canonical values;
    the rules are read by the oracle, not by the SQL views)."""
    db, _, _ = loaded
    columns = ("patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity",
               "patient_birth_year", "prescriber_id")  # fmt: skip
    rows = query(db, f"select {', '.join(columns)} from billing_lines")
    return pl.DataFrame(rows, schema=list(columns), orient="row")


def _json(cli, *args):
    status, out, err = cli(*args)
    assert status == 0, err
    return json.loads(out)


def test_every_line_is_accounted_for(loaded):
    db, manifest, _ = loaded
    read, new, present, skipped, rejected = query(
        db,
        "select sum(rows_read), sum(rows_new), sum(rows_present), sum(rows_skipped), "
        "sum(rows_rejected) from loads",
    )[0]
    assert read == manifest["counts"]["total_lines"]
    assert rejected == sum(manifest["broken_lines"].values())
    assert skipped == 0 and present == 0
    assert new + rejected == read


def test_patients_initiated_per_scheme_and_month_equal_the_truth(loaded, cli):
    """SPEC v2 §6: patients with a programme starting in the month (repeat programmes
    included, and apart), and the cumulative count, one per patient, by first programme."""
    db, _, truth = loaded
    initiated, repeat = defaultdict(set), defaultdict(set)
    first: dict[str, tuple[str, str]] = {}
    for row in sorted(truth, key=lambda r: r["start_date"]):
        key = (row["start_date"][:7], row["scheme"])
        initiated[key].add(row["patient_id"])
        if row["is_repeat_programme"] == "true":
            repeat[key].add(row["patient_id"])
        first.setdefault(row["patient_id"], key)
    months = sorted({month for month, _ in initiated})
    assert months == MONTHS
    assert any(repeat.values())
    for month in months:
        report = _json(cli, "--db", db, "report", "--month", month, "--no-suppress")
        for scheme in ("5", "7", "10"):
            block = report["schemes"][scheme]
            assert block["patients_initiated"] == len(initiated[(month, scheme)]), (month, scheme)
            assert block["patients_initiated_repeat"] == len(repeat[(month, scheme)])
            assert block["patients_initiated_cumulative"] == sum(
                1 for m, s in first.values() if m <= month and s == scheme
            )
        total = sum(len(initiated[(month, s)]) for s in ("5", "7", "10"))
        assert report["schemes"]["total"]["patients_initiated"] == total


def _same_figures(found: dict, expected: dict, where) -> None:
    for key, value in expected.items():
        if isinstance(value, float):
            assert found[key] == pytest.approx(value, abs=0.005), (where, key)
        else:
            assert found[key] == value, (where, key)


@pytest.mark.parametrize("as_of", [None, MID_MONTH], ids=["latest", "mid-month"])
def test_state_of_play_equals_the_generators_reading(loaded, stored_lines, cli, as_of):
    """Every §6 figure of every month, as of the latest date and as of a mid-month date."""
    db, _, _ = loaded
    reading = read_lines(stored_lines, as_of=as_of)
    as_of_args = ["--as-of", as_of.isoformat()] if as_of else []
    months = [m for m in MONTHS if as_of is None or m <= as_of.isoformat()[:7]]
    for month in months:
        report = _json(cli, "--db", db, "report", "--month", month, *as_of_args, "--no-suppress")
        expected = reference_state_of_play(reading, month)
        assert report["as_of"] == expected["as_of"]
        assert report["provisional"] == expected["provisional"], month
        for scheme, block in expected["schemes"].items():
            _same_figures(report["schemes"][scheme], block, (month, scheme))
        _same_figures(report["unassigned"], expected["unassigned"], (month, "unassigned"))


def test_cohorts_equal_the_generators_reading(loaded, stored_lines, cli):
    db, _, _ = loaded
    expected = reference_cohorts(read_lines(stored_lines))
    found = _json(cli, "--db", db, "cohorts", "--no-suppress")["cohorts"]
    assert [(r["initiation_month"], r["scheme"]) for r in found] == [
        (r["initiation_month"], r["scheme"]) for r in expected
    ]
    for row, want in zip(found, expected, strict=True):
        _same_figures(row, want, (want["initiation_month"], want["scheme"]))


def test_compliance_counts_equal_the_generators_reading(loaded, stored_lines, cli):
    db, manifest, _ = loaded
    expected = manifest["expected_compliance_flags"]
    assert list(expected) == list(RULES)
    assert read_lines(stored_lines).counts() == expected  # the lines as stored, as generated
    result = _json(cli, "--db", db, "compliance", "--no-suppress")
    assert {r: result["rules"][r] for r in RULES} == expected
    findings = Counter(f["rule"] for f in result["findings"] if f["rule"] in RULES)
    assert findings == {r: n for r, n in expected.items() if n}
