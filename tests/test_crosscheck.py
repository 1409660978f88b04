"""End to end: generated exports -> loader -> SQL marts -> CLI JSON, against the generator's truth."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter

import pytest

from etl.synthetic.generate import generate
from tests.conftest import query


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


# The generator's ground truth and its reference reading of the rules (etl/synthetic/) follow
# SPEC v1; the SQL follows SPEC v2 (issue 14). They meet again when issue 14's generator part
# (the generator's cases and its own v2 reading) is done: un-skip then.
V1_ORACLE = "the generator's oracle follows SPEC v1; issue 14's generator part brings it to v2"


@pytest.mark.skip(
    reason=f"{V1_ORACLE}: v2 patients_initiated counts repeat programmes (the truth counts "
    "first initiations only), e.g. 2023-09 scheme 10: 18 against 17"
)
def test_patients_initiated_per_scheme_and_month_equal_the_truth(loaded, cli):
    db, _, truth = loaded
    expected = Counter(
        (row["start_date"][:7], row["scheme"])
        for row in truth
        if row["is_repeat_initiation"] == "false"
    )
    months = sorted({month for month, _ in expected})
    assert len(months) == 17
    cumulative = 0
    for month in months:
        report = _json(cli, "--db", db, "report", "--month", month, "--no-suppress")
        for scheme in ("5", "7", "10"):
            assert report["schemes"][scheme]["patients_initiated"] == expected[(month, scheme)], (
                month, scheme,
            )  # fmt: skip
        total = sum(expected[(month, s)] for s in ("5", "7", "10"))
        cumulative += total
        assert report["schemes"]["total"]["patients_initiated"] == total
        assert report["schemes"]["total"]["patients_initiated_cumulative"] == cumulative


@pytest.mark.skip(
    reason=f"{V1_ORACLE}: v2 R07 (step end vs first reduction + 359), R08 (step end carries "
    "early collection: the generator delivers each step on or shortly before the last day the "
    "previous one covers, so the lead accumulates), R12-R15 (new) differ from its v1 reading"
)
def test_compliance_counts_equal_the_generators_reading(loaded, cli):
    db, manifest, _ = loaded
    result = _json(cli, "--db", db, "compliance", "--no-suppress")
    assert result["rules"] == manifest["expected_compliance_flags"]
    assert len(result["findings"]) == sum(manifest["expected_compliance_flags"].values())
