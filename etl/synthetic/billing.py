"""From simulated events to billing lines: a billing month and a fee for every delivery, then
corrections, unmatched corrections and broken lines.

A line here is still made of indices (patient, pharmacy, prescriber, programme) and numbers
(day ordinal, cents, billing month as year * 12 + month - 1); the generator turns it into the
text of an export. Every draw comes from one generator (`rng`), in a fixed order.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from functools import cache

import numpy as np
import polars as pl

from etl.base.codes import INITIATION_CNK_BY_SCHEME, REDUCTION_CNK_BY_CAPSULES
from etl.synthetic.calibration import (
    BROKEN_EVERY,
    CORRECTION_RATE,
    LAG_P,
    MIN_BROKEN,
    UNMATCHED_PER_YEAR,
    Calendar,
    Params,
    month_index,
)
from etl.synthetic.simulation import Simulation
from etl.synthetic.styles import Style

BROKEN_KINDS = ("missing_patient", "unreadable_date", "bad_cnk", "bad_quantity")
BAD_CNK = "55219X0"


@dataclass
class Billing:
    """The programme lines of an export: `lines` holds the initial lines, then the cancel and
    re-bill lines of the corrections, the unmatched corrections and the broken lines.

    Columns of `lines`: patient, pharmacy, day, cnk, quantity, cents, bm, tag (the flags the
    simulation put on the line, "+" between two, "q2", "cancel", "rebill", "unmatched", "broken"
    or ""), prescriber (-1: left empty), birth (the patient's birth year on this line),
    programme (0 outside programmes), broken (the defect or ""), date_text (an unreadable date
    or null), tie (a random number that orders lines of the same day).
    """

    lines: pl.DataFrame
    n_initial: int
    n_corrections: int
    n_unmatched: int
    broken: Counter
    n_birth_corrections: int = 0
    n_not_yet_billed: int = 0  # initial lines whose billing month falls after the last export


def bill(
    sim: Simulation,
    birth_years: np.ndarray,
    params: Params,
    rng,
    start: date,
    end: date,
    other_lines: int,
    style: Style,
    typed_dates: bool,
) -> Billing:
    """Bill every simulated event, then add corrections, the re-billed birth years of
    `sim.birth_corrections`, and broken lines (one per BROKEN_EVERY lines of the export,
    `other_lines` included, at least MIN_BROKEN).

    A line whose billing month falls after the month of `end` is not billed yet as of the
    exports' cut: it is left out (never moved into the last month), and so are the
    corrections that would be billed after that month (SPEC §15: the last months are
    genuinely incomplete).

    `birth_years`: each patient's birth year (the lines carry it); `typed_dates`: the export has
    a real date column, so an unreadable date can only be missing.
    """
    fee = cache(params.fee_cents)  # most lines share a (CNK, day)
    end_month = month_index(end.toordinal())
    drawn = _initial_lines(sim, birth_years, fee, rng, month_index(start.toordinal()))
    births = _birth_corrections(drawn, sim.birth_corrections, end_month)
    lines = drawn.filter(pl.col("bm") <= end_month)
    cancel, rebill = _corrections(lines, rng, end_month)
    unmatched = _unmatched_corrections(lines, sim.cal, fee, rng, start, end, end_month)
    n_broken = max(
        MIN_BROKEN,
        round((lines.height + cancel.height + rebill.height + other_lines) / BROKEN_EVERY),
    )
    broken, broken_counts = _broken_lines(lines, rng, n_broken, style, typed_dates)
    n_initial = lines.height
    lines = pl.concat([lines, cancel, rebill, births, unmatched, broken])
    lines = lines.with_columns(tie=pl.Series(rng.random(lines.height), dtype=pl.Float64))
    return Billing(
        lines, n_initial, cancel.height, unmatched.height, broken_counts,
        n_birth_corrections=births.height // 2, n_not_yet_billed=drawn.height - n_initial,
    )  # fmt: skip


def _initial_lines(
    sim: Simulation, birth_years: np.ndarray, fee, rng, start_month: int
) -> pl.DataFrame:
    """One line per event, billed 0, 1, 2 or 3 months after delivery (LAG_P; never before the
    month of `start`); the billing month may fall after the last export month (not billed
    yet: `bill` leaves such lines out)."""
    rows: dict[str, list] = defaultdict(list)

    def add(patient, pharmacy, day, cnk, qty, tag, prescriber, programme):
        rows["patient"].append(patient)
        rows["pharmacy"].append(pharmacy)
        rows["day"].append(day)
        rows["cnk"].append(cnk)
        rows["qty"].append(qty)
        rows["tag"].append(tag)
        rows["prescriber"].append(prescriber)
        rows["programme"].append(programme)

    for p in sim.programmes:
        for day, cnk, qty, pharmacy, tag, prescriber in p.events:
            add(p.patient, pharmacy, day, cnk, qty, tag, prescriber, p.number)
    for patient, pharmacy, day, cnk, qty, tag, prescriber in sim.loose:
        add(patient, pharmacy, day, cnk, qty, tag, prescriber, 0)
    n = len(rows["day"])
    months = np.array([month_index(d) for d in rows["day"]], dtype=np.int64)
    lag = rng.choice(len(LAG_P), size=n, p=LAG_P)
    bm = np.maximum(months + lag, start_month)
    cents = [fee(c, d) * q for c, d, q in zip(rows["cnk"], rows["day"], rows["qty"], strict=True)]
    patients = np.array(rows["patient"], dtype=np.int64)
    return pl.DataFrame(
        {
            "patient": pl.Series(patients, dtype=pl.Int64),
            "pharmacy": pl.Series(rows["pharmacy"], dtype=pl.Int64),
            "day": pl.Series(np.array(rows["day"], dtype=np.int64)),
            "cnk": pl.Series(rows["cnk"], dtype=pl.String),
            "quantity": pl.Series(rows["qty"], dtype=pl.Int32),
            "cents": pl.Series(cents, dtype=pl.Int64),
            "bm": pl.Series(bm, dtype=pl.Int32),
            "tag": pl.Series(rows["tag"], dtype=pl.String),
            "prescriber": pl.Series(rows["prescriber"], dtype=pl.Int64),
            "birth": pl.Series(birth_years[patients], dtype=pl.Int32),
            "programme": pl.Series(rows["programme"], dtype=pl.Int64),
            "broken": pl.Series([""] * n, dtype=pl.String),
            "date_text": pl.Series([None] * n, dtype=pl.String),
        }
    )


def _birth_corrections(lines: pl.DataFrame, programmes: list[int], end_month: int) -> pl.DataFrame:
    """The opening initiation line of each programme numbered in `programmes`, cancelled and
    billed again a month later with the birth year + 1 (its group's largest birth year); none
    where that month falls after `end_month` (not billed yet).

    `lines`: every initial line drawn, billed or not (the opening line is the programme's
    first)."""
    first = (
        lines.with_row_index("row")
        .filter(pl.col("programme").is_in(programmes))
        .group_by("programme")
        .agg(pl.col("row").min())
    )
    orig = lines[sorted(first["row"].to_list())].filter(pl.col("bm") + 1 <= end_month)
    later = (pl.col("bm") + 1).cast(pl.Int32)
    cancel = orig.with_columns(
        quantity=-pl.col("quantity"), cents=-pl.col("cents"), bm=later, tag=pl.lit("cancel")
    )
    rebill = orig.with_columns(bm=later, tag=pl.lit("rebill"), birth=pl.col("birth") + 1)
    return pl.concat([cancel, rebill])


def _corrections(lines: pl.DataFrame, rng, end_month: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Corrections: a cancel line and a re-bill line, both billed in a later month (1 to 3
    months later); a correction that would be billed after `end_month` is not made yet."""
    bm = lines["bm"].to_numpy().astype(np.int64)
    candidates = np.flatnonzero((lines["quantity"].to_numpy() == 1) & (bm < end_month))
    n_corr = min(int(rng.binomial(lines.height, CORRECTION_RATE)), len(candidates))
    picked = (
        np.sort(rng.choice(candidates, n_corr, replace=False))
        if n_corr
        else np.array([], dtype=np.int64)
    )
    later = bm[picked] + rng.integers(1, 4, n_corr)
    made = later <= end_month
    picked, later = picked[made], later[made]
    orig = lines[picked]
    cancel = orig.with_columns(
        quantity=pl.lit(-1, pl.Int32), cents=-pl.col("cents"), bm=pl.Series(later, dtype=pl.Int32),
        tag=pl.lit("cancel"),
    )  # fmt: skip
    rebill = orig.with_columns(bm=pl.Series(later, dtype=pl.Int32), tag=pl.lit("rebill"))
    return cancel, rebill


def _unmatched_corrections(
    lines: pl.DataFrame, cal: Calendar, fee, rng, start: date, end: date, end_month: int
) -> pl.DataFrame:
    """Unmatched corrections: a -1 for a key that has no positive line (a few a year)."""
    years = (end - start).days / 365.25
    n_unmatched = max(1, round(UNMATCHED_PER_YEAR * years))
    patients, pharmacies, days, cnks = (
        lines[c].to_list() for c in ("patient", "pharmacy", "day", "cnk")
    )
    prescribers, programmes = lines["prescriber"].to_list(), lines["programme"].to_list()
    births = lines["birth"].to_list()
    keys = set(zip(patients, pharmacies, days, cnks, strict=True))
    red_rows = np.flatnonzero(
        np.isin(lines["cnk"].to_numpy(), list(REDUCTION_CNK_BY_CAPSULES.values()))
    )
    unmatched = []
    for _attempt in range(n_unmatched * 20):
        if len(unmatched) >= n_unmatched or not len(red_rows):
            break
        i = int(rng.choice(red_rows))
        patient, pharmacy, day, cnk = patients[i], pharmacies[i], days[i], cnks[i]
        day = cal.on_or_before(day - int(rng.integers(1, 8)))
        if day < start.toordinal() or (patient, pharmacy, day, cnk) in keys:
            continue
        keys.add((patient, pharmacy, day, cnk))
        ubm = month_index(day) + int(rng.integers(1, 3))
        if ubm > end_month:  # not billed yet as of the exports' cut
            continue
        unmatched.append(
            {"patient": patient, "pharmacy": pharmacy, "day": day, "cnk": cnk, "quantity": -1,
             "cents": -fee(cnk, day), "bm": ubm, "tag": "unmatched",
             "prescriber": prescribers[i], "birth": births[i], "programme": programmes[i],
             "broken": "", "date_text": None}
        )  # fmt: skip
    return pl.DataFrame(unmatched, schema=lines.schema)


def _broken_lines(
    lines: pl.DataFrame, rng, n_broken: int, style: Style, typed_dates: bool
) -> tuple[pl.DataFrame, Counter]:
    """Broken lines: copies of non-initiation quantity-1 lines with one defect (never
    initiations), and how many of each defect."""
    ok = np.flatnonzero(
        (lines["quantity"].to_numpy() == 1)
        & ~np.isin(lines["cnk"].to_numpy(), list(INITIATION_CNK_BY_SCHEME.values()))
    )
    if not len(ok):
        n_broken = 0
    broken_rows = []
    broken_counts: Counter = Counter()
    for k, i in enumerate(rng.choice(ok, n_broken, replace=len(ok) < n_broken).tolist()):
        row = lines.row(i, named=True)
        kind = BROKEN_KINDS[k % len(BROKEN_KINDS)]
        row["tag"], row["broken"] = "broken", kind
        if kind == "missing_patient":
            row["patient"] = -1
        elif kind == "unreadable_date":
            row["date_text"] = style.bad_date(date.fromordinal(row["day"]).year)
            if typed_dates:
                kind = row["broken"] = "missing_date"
        elif kind == "bad_cnk":
            row["cnk"] = BAD_CNK
        else:
            row["quantity"] = 5 if (k // len(BROKEN_KINDS)) % 2 == 0 else 0
            row["cents"] = row["cents"] * row["quantity"]
            kind = row["broken"] = f"quantity_{row['quantity']}"
        broken_counts[kind] += 1
        broken_rows.append(row)
    return pl.DataFrame(broken_rows, schema=lines.schema), broken_counts
