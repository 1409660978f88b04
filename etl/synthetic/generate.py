"""Seeded synthetic billing exports of the withdrawal programme (SPEC §3, calibrated on §13).

`generate()` simulates programmes (initiation, reduction and stabilisation steps, follow-up
interviews) with the pilot's published mix, bills every delivery with a realistic lag (0 to 3
months; lines billed after the month of `end` are not written: not billed yet), adds
corrections, the scenarios of the decree's rules (R01-R15 of SPEC v2 §8, boundaries included:
`simulation.SCENARIOS`), a few broken lines and,
optionally, millions of lines of other medicines, then writes the export files in a French,
Dutch or ISO style as CSV, CSV.gz, Parquet or XLSX. It also writes
`ground_truth_programmes.csv` (one row per simulated programme) and `manifest.json` (arguments,
counts, scenarios, breaches, broken lines, files, and the compliance counts SPEC v2 §8 gives on
these data, from the generator's own reading of the SPEC in `oracle`).

All randomness comes from `numpy.random.default_rng(seed)` (through independent child streams:
the programme lines do not depend on the style, the format or the number of other lines), and
nothing in the files depends on the wall clock, so the same arguments give the same bytes.

The steps live in their own modules: `calibration` (figures, parameters, working days),
`simulation` (programmes and breaches), `population` (identifiers, pharmacies, patients),
`billing` (lines, corrections, broken lines), `other_medicines`, `styles`, `writers`, and
`oracle` (the reference reading behind the manifest's expected figures).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from etl.base.codes import BY_CNK, REDUCTION_CNK_BY_CAPSULES
from etl.synthetic.billing import BAD_CNK, Billing, bill
from etl.synthetic.bzra import BzraFiles, write_bzra
from etl.synthetic.calibration import (
    EARLIEST_DATE,
    EPOCH,
    KIND_ORDER,
    RULES,
    Calendar,
    Params,
    month_index,
)
from etl.synthetic.oracle import Reading, ground_truth, read_lines, reference_bzra
from etl.synthetic.other_medicines import OtherLines
from etl.synthetic.population import demographics, hex_ids
from etl.synthetic.simulation import SCENARIOS, Simulation
from etl.synthetic.styles import STYLES, Style
from etl.synthetic.writers import (
    FORMAT_SUFFIX,
    XLSX_MAX_ROWS,
    export_name,
    open_writer,
    remove_stale,
)

# what the manifest says about its own figures
MANIFEST_NOTES = [
    "expected_compliance_flags: SPEC v2 §8 (R01-R15) counted by the generator's own reading of "
    "the SPEC (etl/synthetic/oracle.py) over every valid line, as-of the latest delivery date.",
    "breaches_injected: the flags the simulation meant to put on the lines, per rule. "
    "expected_compliance_flags differs only by R02 (the R11 steps are also unassigned) and R08 "
    "(the second unit of each quantity-2 reduction line is early).",
    "counts.scenarios: programmes per scenario (ground truth column `scenario`): "
    + "; ".join(f"{name}: {text}" for name, text in SCENARIOS.items())
    + ".",
    "prescriber_id is left empty on about 1 % of the lines; R15 needs both prescribers known. "
    "Minors and patients exactly 18 are made by birth year at their first start; for a few of "
    "those 18, the opening initiation line is cancelled and billed again with the birth year "
    "+ 1 (a group's largest birth year counts, so R14 flags it).",
    "billing_month = delivery month + 0/1/2/3 months (55/30/10/5 % of the lines), never "
    "before the month of `start`. A line whose billing month falls after the month of `end` "
    "is not billed yet as of the exports' cut and is not written (counts.lines_not_yet_billed; "
    "corrections that would be billed after that month are not made either): the last months "
    "are incomplete, as real exports are (SPEC §15).",
    "ground_truth_programmes.csv describes every simulated programme as drawn, lines not "
    "billed yet included: the programmes of the last months are there even where their lines "
    "are not in the exports yet.",
    "broken lines are extra copies of reduction/stabilisation/follow-up lines with one "
    "defect; they are never initiation lines and the loader should reject them all.",
]


@dataclass
class GenerateResult:
    """What `generate()` wrote: the files, their row counts, and what was put in them."""

    files: list[Path]
    ground_truth: Path
    manifest: Path
    n_lines: int  # programme lines, corrections and broken lines included
    n_other_lines: int
    n_programmes: int
    file_rows: dict[str, int] = field(default_factory=dict)
    broken_lines: dict[str, int] = field(default_factory=dict)
    breaches_injected: dict[str, int] = field(default_factory=dict)
    removed_stale: list[Path] = field(default_factory=list)
    bzra: BzraFiles | None = None  # SPEC §14: with bzra=True, the BZRA export and products


def generate(
    output_dir: Path,
    *,
    seed: int = 20250702,
    start: date = date(2023, 2, 1),
    end: date | None = None,
    weekly_starts: float = 110.0,
    file_format: str = "csv",
    style: str = "fr",
    other_lines: int = 0,
    split: str = "month",
    config=None,
    today: date | None = None,
    bzra: bool = False,
) -> GenerateResult:
    """Write a seeded synthetic national dataset into `output_dir` (see the module docstring).

    `end` defaults to the last day of the previous month; it is never later than today.
    Export files named `export_YYYY-MM.<ext>` / `export.<ext>` already in `output_dir` are
    removed first, so that a directory never mixes two runs.
    """
    today = today or date.today()
    end = min(end or _default_end(today), today)
    _check_arguments(start, end, weekly_starts, file_format, style, other_lines, split)
    params = Params.from_config(config)
    st = STYLES[style]
    output_dir = Path(output_dir)
    rng_prog, rng_ids, rng_other, rng_lines = np.random.default_rng(seed).spawn(4)

    cal_first = min(EARLIEST_DATE, params.programme_start - dt.timedelta(days=60))
    cal = Calendar(cal_first, end + dt.timedelta(days=params.max_programme_days + 500))
    sim = Simulation(rng_prog, rng_ids, cal, params, start, end, weekly_starts)
    sim.run()
    demo = demographics(rng_prog, sim.n_patients)
    for p in sim.programmes:  # minors and patients exactly 18 by birth year (R14)
        if p.patient in sim.age_at_first_start and p.repeat is None:
            demo["birth"][p.patient] = (
                date.fromordinal(p.start).year - sim.age_at_first_start[p.patient]
            )
    patient_ids = hex_ids(rng_prog, sim.n_patients, "P", 16)
    patients = _patients(demo, patient_ids)
    typed_dates = file_format == "parquet" and style == "iso"
    billing = bill(sim, demo["birth"], params, rng_lines, start, end, other_lines, st, typed_dates)
    prog_typed = _typed_rows(billing.lines, patients, sim, st)
    other = OtherLines(
        rng_other, other_lines, cal, start.toordinal(), end.toordinal(),
        month_index(end.toordinal()),
        _other_patients(rng_other, other_lines, demo, patient_ids, patients),
        sim.pharmacies, sim.prescriber_ids, st,
    )  # fmt: skip

    prog_by_month = {key[0]: df for key, df in prog_typed.partition_by("bm", as_dict=True).items()}
    groups = _file_groups(prog_by_month, other, split, file_format)
    output_dir.mkdir(parents=True, exist_ok=True)
    removed = remove_stale(output_dir)
    files, file_rows = _write_files(
        output_dir, groups, prog_by_month, prog_typed, other, st, file_format
    )
    # SPEC §14: BZRA histories in a pharmacy-software export (etl/synthetic/bzra.py), from a
    # random stream of their own, so that the programme lines do not change with --bzra.
    bzra_files = None
    if bzra:
        bzra_files = write_bzra(
            output_dir, np.random.default_rng([seed, 14]), sim.programmes, patient_ids,
            [str(i) for i in sim.pharmacies["id"]], end, weekly_starts,
        )  # fmt: skip
    truth_path = output_dir / "ground_truth_programmes.csv"
    ground_truth(sim.programmes, patient_ids, sim.pharmacies["id"], demo["birth"]).write_csv(
        truth_path
    )

    expected_flags, event_counts, delivered_tags, reading = _expected_figures(
        prog_typed, billing, config
    )
    injected = {r: int(delivered_tags.get(r, 0)) for r in RULES}
    arguments = {
        "seed": seed, "start": start.isoformat(), "end": end.isoformat(),
        "weekly_starts": weekly_starts, "format": file_format, "style": style,
        "other_lines": other_lines, "split": split,
    }  # fmt: skip
    manifest = _manifest(
        arguments, st, params, sim, billing, other_lines, event_counts, delivered_tags,
        injected, expected_flags, files=[{"name": n, "rows": file_rows[n]} for n, _ in groups],
        ground_truth=truth_path.name,
    )  # fmt: skip
    if bzra_files is not None:  # SPEC §14: what the generator's own reading expects
        manifest["bzra"] = _bzra_section(bzra_files, reading)
    manifest_path = output_dir / "manifest.json"
    manifest_path.write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return GenerateResult(
        files=files,
        ground_truth=truth_path,
        manifest=manifest_path,
        n_lines=billing.lines.height,
        n_other_lines=other_lines,
        n_programmes=len(sim.programmes),
        file_rows=file_rows,
        broken_lines=dict(billing.broken),
        breaches_injected=injected,
        removed_stale=removed,
        bzra=bzra_files,
    )


def _default_end(today: date) -> date:
    return today.replace(day=1) - dt.timedelta(days=1)


def _check_arguments(
    start: date, end: date, weekly_starts: float, file_format: str, style: str,
    other_lines: int, split: str,
) -> None:  # fmt: skip
    """Raise ValueError, with a message for the user, on an argument generate() cannot take."""
    if file_format not in FORMAT_SUFFIX:
        raise ValueError(
            f"unknown format {file_format!r}: expected one of {', '.join(FORMAT_SUFFIX)}"
        )
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}: expected fr, nl or iso")
    if split not in ("month", "single"):
        raise ValueError(f"unknown split {split!r}: expected month or single")
    if start < EARLIEST_DATE:
        raise ValueError(f"start {start} is before {EARLIEST_DATE}: the loader rejects such dates")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if weekly_starts <= 0:
        raise ValueError("weekly_starts must be positive")
    if other_lines < 0:
        raise ValueError("other_lines cannot be negative")


def _patients(demo: dict[str, np.ndarray], patient_ids: list[str]) -> dict:
    """The simulated patients as the columns the rows gather from."""
    return {
        "id": pl.Series(patient_ids, dtype=pl.String),
        "birth": demo["birth"],
        "sex": pl.Series(demo["sex"].tolist(), dtype=pl.String),
        "insurer": pl.Series(demo["insurer"].tolist(), dtype=pl.String),
    }


def _other_patients(
    rng, other_lines: int, demo: dict[str, np.ndarray], patient_ids: list[str], patients: dict
) -> dict:
    """The patients of other medicines: the simulated ones, then a pool of others."""
    if not other_lines:
        return patients
    pool = max(2000, min(other_lines // 10, 400_000))
    extra_demo = demographics(rng, pool)
    extra_ids = hex_ids(rng, pool, "P", 16, set(patient_ids))
    return {
        "id": pl.concat([patients["id"], pl.Series(extra_ids)]),
        "birth": np.concatenate([demo["birth"], extra_demo["birth"]]),
        "sex": pl.Series(
            np.concatenate([demo["sex"], extra_demo["sex"]]).tolist(), dtype=pl.String
        ),
        "insurer": pl.Series(
            np.concatenate([demo["insurer"], extra_demo["insurer"]]).tolist(), dtype=pl.String
        ),
    }


def _typed_rows(lines: pl.DataFrame, patients: dict, sim: Simulation, style: Style) -> pl.DataFrame:
    """The programme lines as the writers take them (patients, pharmacies, prescribers and
    labels looked up), in billing month, delivery date and `tie` order."""
    ph_ids = pl.Series(sim.pharmacies["id"], dtype=pl.String)
    ph_post = pl.Series(sim.pharmacies["postcode"], dtype=pl.String)
    presc = pl.Series(sim.prescriber_ids, dtype=pl.String)
    label_lang = "label_nl" if style.label_language == "nl" else "label_fr"
    labels = {c.cnk: getattr(c, label_lang) for c in BY_CNK.values()}
    labels[BAD_CNK] = labels[REDUCTION_CNK_BY_CAPSULES[10]]
    pidx = lines["patient"].to_numpy()
    prescribers = lines["prescriber"].to_numpy()  # -1: left empty
    safe = np.where(pidx < 0, 0, pidx)  # a missing patient (-1) gathers patient 0, then null
    return pl.DataFrame(
        {
            "patient_id": patients["id"].gather(safe).scatter(np.flatnonzero(pidx < 0), None),
            "pharmacy_id": ph_ids.gather(lines["pharmacy"].to_numpy()),
            "delivery_date": (lines["day"] - EPOCH).cast(pl.Int32).cast(pl.Date),
            "date_text": lines["date_text"],
            "cnk": lines["cnk"],
            "quantity": lines["quantity"],
            "cents": lines["cents"],
            "bm": lines["bm"],
            "insurer_code": patients["insurer"].gather(safe),
            "birth_year": lines["birth"],
            "sex": patients["sex"].gather(safe),
            "postcode": ph_post.gather(lines["pharmacy"].to_numpy()),
            "prescriber_id": presc.gather(np.maximum(prescribers, 0)).scatter(
                np.flatnonzero(prescribers < 0), None
            ),
            "label": lines["cnk"].replace_strict(labels, return_dtype=pl.String),
            "tie": lines["tie"],
        }
    ).sort("bm", "delivery_date", "tie")


def _file_groups(
    prog_by_month: dict[int, pl.DataFrame], other: OtherLines, split: str, file_format: str
) -> list[tuple[str, list[int]]]:
    """Which billing months go to which file; checks the XLSX row limit before anything is
    written."""
    months_all = sorted(set(prog_by_month) | set(other.by_month))
    groups: list[tuple[str, list[int]]] = (
        [(export_name("single", None, file_format), months_all)]
        if split == "single"
        else [(export_name("month", m, file_format), [m]) for m in months_all]
    )
    if file_format == "xlsx":
        for name, ms in groups:
            n_rows = sum(
                (prog_by_month[m].height if m in prog_by_month else 0) + other.rows_in(m)
                for m in ms
            )
            if n_rows > XLSX_MAX_ROWS:
                raise ValueError(
                    f"{name} would hold {n_rows:,} rows: XLSX exports are limited to "
                    f"{XLSX_MAX_ROWS:,} rows per file; use --split month, fewer --other-lines, "
                    "or --format csv/csv.gz/parquet"
                )
    return groups


def _write_files(
    output_dir: Path, groups: list[tuple[str, list[int]]], prog_by_month: dict[int, pl.DataFrame],
    prog_typed: pl.DataFrame, other: OtherLines, style: Style, file_format: str,
) -> tuple[list[Path], dict[str, int]]:  # fmt: skip
    """Write each file, month by month; returns the paths and the rows of each file."""
    files: list[Path] = []
    file_rows: dict[str, int] = {}
    for name, ms in groups:
        path = output_dir / name
        writer = open_writer(path, style, file_format)
        try:
            for m in ms:
                _write_month(writer, prog_by_month.get(m, prog_typed.clear()), other, m)
        finally:
            writer.close()
        files.append(path)
        file_rows[name] = writer.rows
    return files, file_rows


def _write_month(writer, prog_m: pl.DataFrame, other: OtherLines, m: int) -> None:
    """One billing month: the programme lines interleaved by day with the other medicines,
    made and written piece by piece."""
    pieces = other.pieces(m)
    if not pieces:
        if prog_m.height:
            writer.write(prog_m.drop("tie"))
        return
    prog_days = prog_m["delivery_date"].cast(pl.Int32).to_numpy() + EPOCH
    lo = 0
    for k, (days, counts) in enumerate(pieces):
        hi = (
            prog_m.height
            if k == len(pieces) - 1
            else int(np.searchsorted(prog_days, days[-1], side="right"))
        )
        chunk = pl.concat([prog_m.slice(lo, hi - lo), other.make(m, days, counts)])
        lo = hi
        writer.write(chunk.sort("delivery_date", "tie", maintain_order=True).drop("tie"))


def _expected_figures(
    typed: pl.DataFrame, billing: Billing, config
) -> tuple[dict[str, int], dict, Counter, Reading]:
    """What SPEC v2 §4-§8 give on the valid lines (`typed`: the lines as written, in the order
    of `billing.lines` sorted by billing month, date and tie): compliance flags, event units per
    kind, and the flags the simulation put on the lines (each part of a tag counts once)."""
    valid = typed.filter(pl.col("date_text").is_null() & pl.col("patient_id").is_not_null())
    valid = valid.filter(pl.col("cnk").str.contains(r"^\d{1,7}$") & (pl.col("quantity") != 0))
    valid = valid.filter(pl.col("quantity").is_between(-3, 3)).select(
        "patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity",
        pl.col("birth_year").alias("patient_birth_year"), "prescriber_id",
    )  # fmt: skip
    reading = read_lines(valid, config)
    expected_flags = reading.counts()
    event_counts = {k: 0 for k in KIND_ORDER} | Counter(e.kind for e in reading.events)
    tags = billing.lines.filter(pl.col("broken") == "")["tag"].to_list()
    delivered_tags = Counter(part for tag in tags if tag for part in tag.split("+"))
    return expected_flags, event_counts, delivered_tags, reading


def _bzra_section(files: BzraFiles, reading: Reading) -> dict:
    """The manifest's BZRA part: the files, and R16-R18 and BZRA-free at 90/180/365 days (all
    completed programmes together) from the oracle's reading of SPEC §14 (etl/synthetic/oracle.py)."""
    expected = reference_bzra(reading, files.lines)
    totals = {}
    for n in (90, 180, 365):
        observable = sum(row[f"bzra_free_{n}d_observable"] for row in expected["cohorts"].values())
        free = sum(row[f"bzra_free_{n}d"] or 0 for row in expected["cohorts"].values())
        totals[f"{n}d"] = {"observable": observable, "bzra_free": free if observable else None}
    return {
        "export": files.export.name,
        "product_reference": files.products.name,
        "lines": files.n_lines,
        "patients": files.n_patients,
        "carrying_pharmacies": files.n_carrying_pharmacies,
        "expected_rules": expected["rules"],
        "expected_bzra_free_completed": totals,
    }


def _manifest(
    arguments: dict, style: Style, params: Params, sim: Simulation, billing: Billing,
    other_lines: int, event_counts: dict, delivered_tags: Counter, injected: dict[str, int],
    expected_flags: dict[str, int], files: list[dict], ground_truth: str,
) -> dict:  # fmt: skip
    """The content of manifest.json (see the module docstring), in its order."""
    return {
        "generator": "benzo-monitor generate",
        "arguments": arguments,
        "style": _style_section(style),
        "configuration": _configuration_section(params),
        "counts": _counts(sim, billing, other_lines, event_counts, delivered_tags),
        "broken_lines": dict(sorted(billing.broken.items())),
        "breaches_injected": injected,
        "expected_compliance_flags": expected_flags,
        "notes": MANIFEST_NOTES,
        "files": files,
        "ground_truth": ground_truth,
    }


def _style_section(style: Style) -> dict:
    return {
        "headers": list(style.headers),
        "delimiter": style.delimiter,
        "encoding": "windows-1252" if style.encoding == "cp1252" else "utf-8",
        "bom": style.bom,
        "date_format": style.date_format,
        "decimal": style.decimal,
        "line_terminator": repr(style.line_terminator)[1:-1],
        "sex": {"F": style.female, "M": style.male},
    }


def _configuration_section(params: Params) -> dict:
    return {
        "programme_start": params.programme_start.isoformat(),
        "max_programme_days": params.max_programme_days,
        "early_delivery_working_days": params.early_delivery_working_days,
        "stabilisation_days": params.stabilisation_days,
        "interview_coefficient": params.interview_coefficient,
        "preparation_coefficient": params.preparation_coefficient,
        "key_letter_values": [[d.isoformat(), v] for d, v in params.key_letter_values],
    }


def _counts(
    sim: Simulation, billing: Billing, other_lines: int, event_counts: dict,
    delivered_tags: Counter,
) -> dict:  # fmt: skip
    n_lines = billing.lines.height
    return {
        "programmes": len(sim.programmes),
        "repeat_programmes": sum(p.repeat is not None for p in sim.programmes),
        "patients_with_programme": len({p.patient for p in sim.programmes}),
        "patients_under_18": sum(age < 18 for age in sim.age_at_first_start.values()),
        "patients_exactly_18": sum(age == 18 for age in sim.age_at_first_start.values()),
        "birth_year_corrections": billing.n_birth_corrections,
        "programme_lines": n_lines,
        "initial_lines": billing.n_initial,
        "lines_not_yet_billed": billing.n_not_yet_billed,
        "corrections": billing.n_corrections,
        "correction_lines": 2 * billing.n_corrections,
        "unmatched_corrections": billing.n_unmatched,
        "quantity_2_lines": int(delivered_tags.get("q2", 0)),
        "broken_lines": sum(billing.broken.values()),
        "other_lines": other_lines,
        "total_lines": n_lines + other_lines,
        "events": event_counts,
        "outcomes": dict(sorted(Counter(p.outcome for p in sim.programmes).items())),
        "scenarios": {
            name: n for name in SCENARIOS if (n := sum(p.scenario == name for p in sim.programmes))
        },
    }
