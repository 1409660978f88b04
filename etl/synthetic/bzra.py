"""Synthetic BZRA histories (SPEC v2 §14): what pharmacy-software exports show around a programme.

Tarification-office exports do not carry benzodiazepines and Z-drugs (BZRA, not reimbursed);
pharmacy-software exports do. For a share of the pharmacies (those whose software exports
them) this writes one pharmacy-software export, `bzra_export.csv` (semicolon, dd/mm/yyyy, an
`ATC` column, some lines with the ATC left empty so that only the product reference tells), and
the product reference `products.csv` (CNK -> ATC, substance, strength, pack size) to load first
with `benzo-monitor reference load`.

Around each patient's first programme at such a pharmacy (start S): chronic use of one molecule
before S (most patients), sometimes a second molecule in the last 3 months (R17), sometimes no
use at all (R16); the pack of the molecule the pharmacy may charge for the preparation, on S;
now and then another BZRA during the programme (R18); a relapse after the programme for some;
and BZRA users who never start a programme. A few deliveries are cancelled (a line and its
correction: no delivery) and a few clonazepam packs (N03AE01, kept apart) are sold.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

# The decree's molecules (sql/staging/10_stg_bzra_molecules.sql), with how often each is the
# chronic molecule (a rough Belgian mix: alprazolam, lorazepam, zolpidem and lormetazepam lead).
MOLECULES = (
    ("alprazolam", "N05BA12", 0.16), ("bromazepam", "N05BA08", 0.08),
    ("brotizolam", "N05CD09", 0.03), ("clobazam", "N05BA09", 0.02),
    ("clorazepate", "N05BA05", 0.03), ("clotiazepam", "N05BA21", 0.02),
    ("diazepam", "N05BA01", 0.07), ("ethyl loflazepate", "N05BA18", 0.03),
    ("flunitrazepam", "N05CD03", 0.02), ("loprazolam", "N05CD11", 0.02),
    ("lorazepam", "N05BA06", 0.14), ("lormetazepam", "N05CD06", 0.12),
    ("nitrazepam", "N05CD02", 0.01), ("nordazepam", "N05BA16", 0.01),
    ("oxazepam", "N05BA04", 0.03), ("prazepam", "N05BA11", 0.04),
    ("triazolam", "N05CD05", 0.01), ("zolpidem", "N05CF02", 0.11),
    ("zopiclone", "N05CF01", 0.05),
)  # fmt: skip
CLONAZEPAM = ("clonazepam", "N03AE01")
CARRYING_SHARE = 0.4  # pharmacies whose exports carry BZRA lines
NO_PRIOR_USE = 0.12  # patients with no BZRA delivery before their programme (R16)
SECOND_MOLECULE = 0.10  # of the others: a second molecule in the last 3 months (R17)
PACK_ON_START = 0.5  # the molecule's pack, at the programme's pharmacy, on the start day
CO_USE = 0.06  # another BZRA during the programme (R18)
RELAPSE = 0.35  # a BZRA delivery within a year and a half after the programme
EMPTY_ATC = 0.2  # lines whose ATC the export leaves empty (the product reference tells)
CANCELLED = 0.02  # a delivery cancelled by its correction (net 0: no delivery)
FIRST_CNK = 6_100_000  # synthetic CNKs of BZRA packs: 2 per molecule from here


@dataclass
class BzraFiles:
    """What `write_bzra` wrote."""

    export: Path
    products: Path
    n_lines: int
    n_patients: int  # patients with at least one BZRA line
    n_carrying_pharmacies: int
    lines: (
        pl.DataFrame
    )  # as written, the ATC resolved (export's or reference's): the oracle's input


def _products() -> list[tuple[str, str, str, str, int]]:
    """(cnk, atc, substance, strength, units) of 2 packs per molecule, and one of clonazepam."""
    out = []
    for i, (name, atc, _) in enumerate((*MOLECULES, (*CLONAZEPAM, 0.0))):
        for j, units in enumerate((30, 60) if atc != CLONAZEPAM[1] else (60,)):
            out.append((f"{FIRST_CNK + 10 * i + j:07d}", atc, name, "1", units))
    return out


def write_bzra(
    output_dir: Path,
    rng: np.random.Generator,
    programmes: list,
    patient_ids: list[str],
    pharmacy_ids: list[str],
    end: date,
    weekly_starts: float,
) -> BzraFiles:
    """Write the BZRA export and the product reference for the simulated `programmes`."""
    products = _products()
    by_atc: dict[str, list[str]] = {}
    for cnk, atc, *_ in products:
        by_atc.setdefault(atc, []).append(cnk)
    atcs = [m[1] for m in MOLECULES]
    weights = np.array([m[2] for m in MOLECULES])
    weights = weights / weights.sum()
    n_pharmacies = len(pharmacy_ids)
    carrying = rng.random(n_pharmacies) < CARRYING_SHARE
    carrying[0] = True  # at least one
    carrying_idx = np.flatnonzero(carrying)
    last = end.toordinal()
    first_allowed = date(2020, 1, 1).toordinal()
    deliveries: list[tuple[str, int, int, str]] = []  # patient, pharmacy index, day, atc

    def add(patient: str, pharmacy: int, day: int, atc: str) -> None:
        if first_allowed <= day <= last:
            deliveries.append((patient, pharmacy, day, atc))

    def other_pharmacy(pharmacy: int) -> int:
        choice = int(rng.choice(carrying_idx))
        return choice if choice != pharmacy or len(carrying_idx) == 1 else int(carrying_idx[0])

    seen: set[int] = set()
    for prog in sorted(programmes, key=lambda p: p.start):
        if prog.patient in seen or not carrying[prog.pharmacy]:
            continue
        seen.add(prog.patient)
        patient, home, start = patient_ids[prog.patient], prog.pharmacy, prog.start
        molecule = str(rng.choice(atcs, p=weights))
        if rng.random() >= NO_PRIOR_USE:
            day = start - int(rng.integers(120, 300))
            while day < start:
                where = home if rng.random() < 0.85 else other_pharmacy(home)
                add(patient, where, day, molecule)
                day += int(rng.integers(25, 40))
            if rng.random() < SECOND_MOLECULE:
                second = str(rng.choice([a for a in atcs if a != molecule]))
                add(patient, home, start - int(rng.integers(5, 80)), second)
            if rng.random() < PACK_ON_START:
                add(patient, home, start, molecule)
        end_day = start + 20 * int(prog.n_red) + 30
        if rng.random() < CO_USE:
            where = other_pharmacy(home) if rng.random() < 0.6 else home
            add(patient, where, start + int(rng.integers(3, 40)), str(rng.choice(atcs)))
        if rng.random() < RELAPSE:
            add(patient, home, end_day + int(rng.integers(1, 540)), molecule)
    # BZRA users who never start a programme, at the carrying pharmacies.
    n_users = int(round(40 * weekly_starts))
    for k in range(n_users):
        patient = f"B{k:07d}"
        home = int(rng.choice(carrying_idx))
        molecule = str(rng.choice(atcs, p=weights))
        day = last - int(rng.integers(30, 900))
        for _ in range(int(rng.integers(1, 12))):
            add(patient, home, day, molecule)
            day += int(rng.integers(25, 60))
    # A few clonazepam packs: kept apart by the loader, never counted.
    for k in range(max(3, n_users // 50)):
        add(f"C{k:07d}", int(rng.choice(carrying_idx)), last - int(rng.integers(0, 300)),
            CLONAZEPAM[1])  # fmt: skip

    rows: list[list[str]] = []
    typed: list[tuple] = []
    for patient, pharmacy, day, atc in deliveries:
        cnk = str(rng.choice(by_atc[atc]))
        text = date.fromordinal(day).strftime("%d/%m/%Y")
        atc_text = "" if rng.random() < EMPTY_ATC else atc
        rows.append([patient, pharmacy_ids[pharmacy], text, cnk, "1", atc_text])
        typed.append((patient, pharmacy_ids[pharmacy], date.fromordinal(day), cnk, atc, 1))
        if rng.random() < CANCELLED:  # cancelled: the correction nets it to no delivery
            rows.append([patient, pharmacy_ids[pharmacy], text, cnk, "-1", atc_text])
            typed.append((patient, pharmacy_ids[pharmacy], date.fromordinal(day), cnk, atc, -1))
    rows.sort(key=lambda r: (r[2][6:] + r[2][3:5] + r[2][:2], r[1], r[0]))
    output_dir = Path(output_dir)
    export = output_dir / "bzra_export.csv"
    with export.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(["Patient", "Apotheek", "Afleverdatum", "CNK", "Aantal", "ATC"])
        writer.writerows(rows)
    reference = output_dir / "products.csv"
    with reference.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter=";", lineterminator="\r\n")
        writer.writerow(["CNK", "Code ATC", "Substance", "Dosage", "Conditionnement"])
        writer.writerows(products)
    return BzraFiles(
        export=export,
        products=reference,
        n_lines=len(rows),
        n_patients=len({r[0] for r in rows}),
        n_carrying_pharmacies=int(carrying.sum()),
        lines=pl.DataFrame(
            typed,
            schema=["patient_id", "pharmacy_id", "delivery_date", "cnk", "atc", "quantity"],
            orient="row",
        ),
    )
