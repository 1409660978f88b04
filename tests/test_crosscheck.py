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
COMPLETE_UNTIL = "2024-03"  # lines are billed up to 3 months late; the exports end in 2024-06


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
    included, and apart), and the cumulative count, one per patient, by first programme.

    The ground truth holds every programme drawn; the exports end with June 2024 and a line
    is billed up to 3 months after its delivery month, so the months up to March 2024 are
    complete (equal to the truth) and April-June 2024 know only part of their starts (at
    most the truth; June, billed 55 % in its own month, well below it)."""
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
        complete = month <= COMPLETE_UNTIL
        for scheme in ("5", "7", "10"):
            block = report["schemes"][scheme]
            found = (
                block["patients_initiated"],
                block["patients_initiated_repeat"],
                block["patients_initiated_cumulative"],
            )
            expected = (
                len(initiated[(month, scheme)]),
                len(repeat[(month, scheme)]),
                sum(1 for m, s in first.values() if m <= month and s == scheme),
            )
            if complete:
                assert found == expected, (month, scheme)
            else:
                assert all(f <= e for f, e in zip(found, expected, strict=True)), (month, scheme)
        total = sum(len(initiated[(month, s)]) for s in ("5", "7", "10"))
        if complete:
            assert report["schemes"]["total"]["patients_initiated"] == total
        else:
            assert report["schemes"]["total"]["patients_initiated"] <= total
        if month == MONTHS[-1]:
            assert report["schemes"]["total"]["patients_initiated"] < 0.8 * total


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
    assert _findings(result) == _flagged(read_lines(stored_lines))


def _findings(result: dict) -> Counter:
    """(rule, patient, date, CNK, pharmacy) of each finding of the compliance JSON."""
    return Counter(
        (f["rule"], f["patient_id"], f["delivery_date"], f["cnk"], f["pharmacy_id"])
        for f in result["findings"]
        if f["rule"] in RULES
    )


def _flagged(reading) -> Counter:
    """The same for each flag of the oracle's events."""
    return Counter(
        (rule, e.patient, dt.date.fromordinal(e.day).isoformat(), e.cnk, e.pharmacy)
        for e in reading.events
        for rule in e.flags
    )


# --- the boundary cases of SPEC v2, by hand (tests/test_generate.py explains each) ------------

I5, I7, I10 = "5521950", "5521968", "5521976"
R10, R20, R30, STAB, FOLLOW_UP = "5521984", "5521992", "5522008", "5522016", "5522024"
EVERY_10_DAYS = ("2024-03-04", "2024-03-14", "2024-03-24", "2024-04-03", "2024-04-13")
TEN_STEPS = (
    "2024-05-06", "2024-05-16", "2024-05-26", "2024-06-05", "2024-06-15", "2024-06-25",
    "2024-07-05", "2024-07-15", "2024-07-25", "2024-08-04",
)  # fmt: skip
# (patient, delivery date, cnk, quantity, pharmacy, birth year, prescriber)
BOUNDARY_LINES = [
    # grace limit: covered until 17 Jan 2024, limit 16 Feb (A: repeat initiation, B: programme 2)
    ("A", "2024-01-08", I5),
    ("A", "2024-01-08", R10),
    ("A", "2024-02-16", I7),
    ("B", "2024-01-08", I5),
    ("B", "2024-01-08", R10),
    ("B", "2024-02-17", I7),
    # no step: the limit is the start + 30 days
    ("C0", "2024-01-08", I5),
    ("C0", "2024-02-07", I5),
    ("D0", "2024-01-08", I5),
    ("D0", "2024-02-08", I5),
    # completed on 13 Apr: re-initiation that day (C) and the day after (D)
    *((p, "2024-03-04", I5) for p in "CD"),
    *((p, day, R10) for p in "CD" for day in EVERY_10_DAYS),
    ("C", "2024-04-13", I5),
    ("D", "2024-04-14", I5),
    # early by 3 working days around Thu 15 Aug 2024 (E allowed, F one working day earlier)
    ("E", "2024-07-31", I5),
    ("E", "2024-07-31", R20),
    ("E", "2024-08-14", R20),
    ("F", "2024-07-31", I5),
    ("F", "2024-07-31", R20),
    ("F", "2024-08-13", R20),
    # early collection every Monday: the lead accumulates
    ("G", "2024-09-02", I5),
    *(("G", day, R10) for day in ("2024-09-02", "2024-09-09", "2024-09-16", "2024-09-23")),
    # coverage ending on day 360 (H) and 361 (I) from the first step; a stabilisation on day
    # 360 (H) and 361 (J)
    ("H", "2023-12-13", I10),
    ("H", "2024-01-02", R30),
    ("H", "2024-11-27", R30),
    ("H", "2024-12-26", STAB),
    ("I", "2024-01-02", I10),
    ("I", "2024-01-02", R30),
    ("I", "2024-11-28", R30),
    ("J", "2024-01-02", I10),
    ("J", "2024-01-02", R30),
    ("J", "2024-12-27", STAB),
    # birth year difference 17 (L, quantity 2) and 18 (M); a group's largest birth year (N),
    # an empty one (O)
    ("L", "2025-03-03", I5, 2, "PH1", "2008"),
    ("M", "2025-03-03", I5, 1, "PH1", "2007"),
    ("N", "2025-03-03", I5, 1, "PH1", "2007"),
    ("N", "2025-03-03", I5, -1, "PH1", "2007"),
    ("N", "2025-03-03", I5, 1, "PH1", "2008"),
    ("O", "2025-03-03", I5, 1, "PH1", "2007"),
    ("O", "2025-03-03", I5, 1, "PH1", ""),
    ("O", "2025-03-03", I5, -1, "PH1", ""),
    # the 5- and the 10-step initiations the same day (P); two pharmacies the same day (Q)
    ("P", "2024-05-06", I10),
    ("P", "2024-05-06", I5),
    *(("P", day, R10) for day in TEN_STEPS),
    ("Q", "2024-05-06", I7, 1, "PH2"),
    ("Q", "2024-05-06", I7),
    ("Q", "2024-05-06", R10, 1, "PH2"),
    # follow-up on and after the completion date; prescribers (S); no initiating one (T)
    ("S", "2024-03-04", I5),
    *(
        ("S", day, R10, 1, "PH1", "1970", prescriber)
        for day, prescriber in zip(EVERY_10_DAYS, ("DR1", "DR1", "DR2", "", "DR2"), strict=True)
    ),
    ("S", "2024-04-13", FOLLOW_UP, 1, "PH1", "1970", ""),
    ("S", "2024-04-15", FOLLOW_UP),
    ("T", "2024-03-04", I5, 1, "PH1", "1970", ""),
    ("T", "2024-03-04", R10, 1, "PH1", "1970", "DR2"),
    # a step before programme_start and before any programme; a stabilisation collected early
    ("U", "2023-01-20", R10),
    ("U", "2023-02-06", I5),
    ("U", "2023-02-06", R10),
    ("U", "2023-02-06", STAB),
]
BOUNDARY_FLAGS = dict.fromkeys(RULES, 0) | {
    "R01": 9, "R02": 1, "R05": 1, "R06": 1, "R07": 2, "R08": 4, "R11": 1, "R12": 1, "R13": 2,
    "R14": 2, "R15": 2,
}  # fmt: skip


def test_boundary_cases_equal_the_generators_reading(tmp_path, cli):
    defaults = ("", "", "", 1, "PH1", "1970", "DR1")
    rows = [line + defaults[len(line) :] for line in BOUNDARY_LINES]
    columns = ["patient_id", "delivery_date", "cnk", "quantity", "pharmacy_id",
               "patient_birth_year", "prescriber_id"]  # fmt: skip
    frame = pl.DataFrame(rows, schema=columns, orient="row")
    export = tmp_path / "boundary.csv"
    frame.write_csv(export)
    db = tmp_path / "w.duckdb"
    status, _, err = cli("--db", db, "load", "--no-progress", export)
    assert status == 0, err
    reading = read_lines(frame.with_columns(pl.col("delivery_date").str.to_date()))
    assert reading.counts() == BOUNDARY_FLAGS
    result = _json(cli, "--db", db, "compliance", "--no-suppress")
    assert {r: result["rules"][r] for r in RULES} == BOUNDARY_FLAGS
    assert _findings(result) == _flagged(reading)


# --- SPEC v2 §14: BZRA deliveries, generated with bzra=True ------------------------------------


@pytest.fixture(scope="module")
def loaded_bzra(tmp_path_factory):
    """A small dataset with BZRA histories: the product reference loaded first, then the
    programme exports and the pharmacy-software BZRA export."""
    from etl.cli import main

    out = tmp_path_factory.mktemp("crosscheck-bzra")
    result = generate(
        out / "exports", seed=7, start=dt.date(2023, 2, 1), end=dt.date(2025, 6, 30),
        weekly_starts=6, file_format="csv", style="fr", split="single", bzra=True,
    )  # fmt: skip
    db = out / "w.duckdb"
    assert main(["--db", str(db), "reference", "load", str(result.bzra.products)]) == 0
    files = [*map(str, result.files), str(result.bzra.export)]
    assert main(["--db", str(db), "load", "--no-progress", *files]) == 0
    return db, result


def test_bzra_figures_equal_the_generators_reading(loaded_bzra, cli):
    """R16-R18 and the cohorts' BZRA-free fields from the stored lines, read by the oracle."""
    from etl.synthetic.oracle import reference_bzra

    db, result = loaded_bzra
    columns = ("patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity",
               "patient_birth_year", "prescriber_id")  # fmt: skip
    lines = pl.DataFrame(
        query(db, f"select {', '.join(columns)} from billing_lines"),
        schema=list(columns),
        orient="row",
    )
    bzra_columns = ("patient_id", "pharmacy_id", "delivery_date", "cnk", "atc", "quantity")
    bzra_lines = pl.DataFrame(
        query(db, f"select {', '.join(bzra_columns)} from bzra_lines"),
        schema=list(bzra_columns),
        orient="row",
    )
    expected = reference_bzra(read_lines(lines), bzra_lines)
    rules = _json(cli, "--db", db, "compliance", "--no-suppress")["rules"]
    assert {r: rules[r] for r in ("R16", "R17", "R18")} == expected["rules"]
    assert all(expected["rules"][r] > 0 for r in ("R16", "R17", "R18")), expected["rules"]
    # The manifest's expectation, from the lines as the generator wrote them, is the same.
    manifest = json.loads(result.manifest.read_text(encoding="utf-8"))
    assert manifest["bzra"]["expected_rules"] == expected["rules"]
    cohorts = _json(cli, "--db", db, "cohorts", "--no-suppress")["cohorts"]
    observed = 0
    for row in cohorts:
        want = expected["cohorts"][(row["initiation_month"], row["scheme"])]
        _same_figures(row, want, (row["initiation_month"], row["scheme"]))
        observed += row["bzra_free_90d_observable"]
    assert observed > 0
    totals = manifest["bzra"]["expected_bzra_free_completed"]["90d"]
    assert totals["observable"] == observed
    assert totals["bzra_free"] == sum(row["bzra_free_90d"] or 0 for row in cohorts)
