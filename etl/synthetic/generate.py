"""Seeded synthetic billing exports of the withdrawal programme (SPEC §3, calibrated on §13).

`generate()` simulates programmes (initiation, reduction and stabilisation steps, follow-up
interviews) with the pilot's published mix, bills every delivery with a realistic lag, adds
corrections, a few deliberate compliance breaches (R01-R11 of SPEC §8), a few broken lines and,
optionally, millions of lines of other medicines, then writes the export files in a French,
Dutch or ISO style as CSV, CSV.gz, Parquet or XLSX. It also writes
`ground_truth_programmes.csv` (one row per simulated programme) and `manifest.json` (arguments,
counts, breaches, broken lines, files, and the compliance counts SPEC §8 gives on these data).

All randomness comes from `numpy.random.default_rng(seed)` (through independent child streams:
the programme lines do not depend on the style, the format or the number of other lines), and
nothing in the files depends on the wall clock, so the same arguments give the same bytes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import gzip
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import holidays
import numpy as np
import polars as pl

from etl.base.codes import (
    BY_CNK,
    FOLLOW_UP_CNK,
    INITIATION_CNK_BY_SCHEME,
    PROGRAMME_CNKS,
    REDUCTION_CNK_BY_CAPSULES,
    STABILISATION_CNK,
)

# --- calibration (SPEC §13 and the brief) ---------------------------------------------------

SCHEME_COUNTS = {10: 3121, 5: 1667, 7: 785}  # pilot starts per scheme
STEP_DAYS_P = {10: 0.25, 20: 0.35, 30: 0.40}  # days per step (= capsules), fixed per programme
COMPLETION_RATE = 0.60
STAB_P = (0.25, 0.07)  # P(1 stabilisation), P(2): ~22 % and ~6 % once infeasible ones are dropped
FOLLOW_UP_P_COMPLETED = 0.30
FOLLOW_UP_P_STOPPED = 0.15  # dropouts with at least 2 reduction steps
SATURDAY_WEIGHT = 0.4
N_PARTICIPATING = 2100
N_PHARMACIES = 4750
N_PRESCRIBERS = 12000
INSURERS = {"100": 0.41, "200": 0.08, "300": 0.27, "400": 0.05, "500": 0.165, "600": 0.02,
            "900": 0.005}  # fmt: skip
FEMALE_SHARE = 0.64
LAG_P = (0.55, 0.35, 0.10)  # billing month = delivery month + 0, 1, 2
BREACH_RATE = 0.005  # share of programmes per breach kind (at least 1 when feasible)
QTY2_RATE = 0.002
CORRECTION_RATE = 0.01
UNMATCHED_PER_YEAR = 5
BROKEN_EVERY = 20000
MIN_BROKEN = 4
OTHER_CNK_POOL = 5000
CHUNK_ROWS = 250_000
XLSX_MAX_ROWS = 1_000_000
EARLIEST_DATE = date(2020, 1, 1)  # the loader rejects older dates
RULES = tuple(f"R{i:02d}" for i in range(1, 12))
BROKEN_KINDS = ("missing_patient", "unreadable_date", "bad_cnk", "bad_quantity")
BAD_CNK = "55219X0"
EPOCH = date(1970, 1, 1).toordinal()
EXCEL_EPOCH = date(1899, 12, 30).toordinal()
KIND_ORDER = {"initiation": 0, "reduction": 1, "stabilisation": 2, "follow_up": 3}
FORMAT_SUFFIX = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet", "xlsx": ".xlsx"}

BRUSSELS_POSTCODES = (1000, 1020, 1030, 1040, 1050, 1060, 1070, 1080, 1081, 1082, 1083, 1090,
                      1120, 1130, 1140, 1150, 1160, 1170, 1180, 1190, 1200, 1210)  # fmt: skip
REGION_P = (0.106, 0.579, 0.315)  # Brussels, Flanders, Wallonia (population shares)


@dataclass
class GenerateResult:
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


# --- styles -----------------------------------------------------------------------------------

CANONICAL_ORDER = (
    "patient_id",
    "pharmacy_id",
    "delivery_date",
    "cnk",
    "quantity",
    "amount_eur",
    "billing_month",
    "insurer_code",
    "patient_birth_year",
    "patient_sex",
    "pharmacy_postcode",
    "prescriber_id",
    "label",
)


@dataclass(frozen=True)
class Style:
    name: str
    headers: tuple[str, ...]  # in CANONICAL_ORDER
    delimiter: str
    date_format: str  # strftime
    excel_date_format: str
    decimal: str
    female: str
    male: str
    encoding: str  # python codec
    bom: bool
    line_terminator: str
    label_language: str  # fr | nl

    def billing_month(self, year: pl.Expr, month: pl.Expr) -> pl.Expr:
        if self.name == "fr":
            return pl.concat_str([month, pl.lit("/"), year])
        if self.name == "nl":
            return pl.concat_str([year, month])
        return pl.concat_str([year, pl.lit("-"), month])

    def bad_date(self, year: int) -> str:
        if self.name == "fr":
            return f"31/02/{year}"
        if self.name == "nl":
            return f"31-02-{year}"
        return f"{year}-02-31"


STYLES: dict[str, Style] = {
    "fr": Style("fr", ("id_patient", "id_pharmacie", "date_de_délivrance", "code_cnk", "quantité",
                       "montant", "mois_facturation", "organisme_assureur", "année_naissance",
                       "sexe", "code_postal", "prescripteur", "libellé"),
                ";", "%d/%m/%Y", "dd/mm/yyyy", ",", "F", "H", "cp1252", False, "\r\n", "fr"),
    "nl": Style("nl", ("patient", "apotheek", "afleverdatum", "cnk", "aantal", "bedrag",
                       "facturatiemaand", "verzekeringsinstelling", "geboortejaar", "geslacht",
                       "postcode_apotheek", "voorschrijver", "omschrijving"),
                ";", "%d-%m-%Y", "dd-mm-yyyy", ",", "V", "M", "utf-8", True, "\n", "nl"),
    "iso": Style("iso", CANONICAL_ORDER, ",", "%Y-%m-%d", "yyyy-mm-dd", ".", "F", "M", "utf-8",
                 False, "\n", "fr"),
}  # fmt: skip


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    programme_start: date = date(2023, 2, 1)
    max_programme_days: int = 360
    early_delivery_working_days: int = 3
    stabilisation_days: int = 30
    interview_coefficient: float = 10.47
    preparation_coefficient: float = 7.08
    key_letter_values: tuple[tuple[date, float], ...] = ((date(2023, 1, 1), 2.2193),)

    @classmethod
    def from_config(cls, config) -> _Params:
        if config is None:
            return cls()
        return cls(
            programme_start=config.programme_start,
            max_programme_days=config.max_programme_days,
            early_delivery_working_days=config.early_delivery_working_days,
            stabilisation_days=config.stabilisation_days,
            interview_coefficient=config.interview_coefficient,
            preparation_coefficient=config.preparation_coefficient,
            key_letter_values=tuple((kv.valid_from, kv.value) for kv in config.key_letter_values),
        )

    def fee_cents(self, cnk: str, day: int) -> int:
        """round(P(valid on the day) x coefficient, 2), in cents (half up on the exact product)."""
        froms = [kv[0].toordinal() for kv in self.key_letter_values]
        i = max(bisect.bisect_right(froms, day) - 1, 0)
        coef = (
            self.interview_coefficient
            if BY_CNK[cnk].coefficient == "interview"
            else self.preparation_coefficient
        )
        fee = Decimal(repr(self.key_letter_values[i][1])) * Decimal(repr(coef))
        return int((fee * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- working days ---------------------------------------------------------------------------


class Calendar:
    """Belgian working days (Monday-Saturday except public holidays) over day ordinals."""

    def __init__(self, first: date, last: date):
        self.base = first.toordinal()
        n = last.toordinal() - self.base + 1
        ords = np.arange(n) + self.base
        working = (ords - 1) % 7 != 6  # ordinal 1 (0001-01-01) is a Monday
        for day in holidays.country_holidays("BE", years=range(first.year, last.year + 1)):
            i = day.toordinal() - self.base
            if 0 <= i < n:
                working[i] = False
        self.working = working
        self.days = (np.flatnonzero(working) + self.base).tolist()

    def is_working(self, day: int) -> bool:
        return bool(self.working[day - self.base])

    def back(self, day: int, k: int) -> int:
        """Step back one day at a time, skipping non-working days, k times (SPEC §8 R08)."""
        if k <= 0:
            return day
        return self.days[bisect.bisect_left(self.days, day) - k]

    def after(self, day: int, k: int) -> int:
        """The k-th working day strictly after `day` (k >= 1)."""
        return self.days[bisect.bisect_right(self.days, day) + k - 1]

    def on_or_before(self, day: int, k: int = 0) -> int:
        return self.days[bisect.bisect_right(self.days, day) - 1 - k]

    def on_or_after(self, day: int) -> int:
        return self.days[bisect.bisect_left(self.days, day)]


def _month_index(day_ordinal: int) -> int:
    d = date.fromordinal(day_ordinal)
    return d.year * 12 + d.month - 1


def _default_end(today: date) -> date:
    return today.replace(day=1) - dt.timedelta(days=1)


# --- the simulation -------------------------------------------------------------------------


@dataclass(slots=True)
class _Prog:
    patient: int
    pharmacy: int
    prescriber: int
    start: int
    scheme: int
    step_days: int
    n_red: int  # planned reduction units
    completes: bool
    stab_after: list[int]  # reduction unit after which a stabilisation comes (twice = R09)
    follow_up: bool
    special: str | None = None  # R03..R10 breach, or "q2" (a quantity-2 line)
    repeat: bool = False
    double_at: int = 0
    events: list = field(default_factory=list)  # (day, cnk, qty, pharmacy, tag)
    outcome: str = ""
    number: int = 0


class _Simulation:
    def __init__(
        self,
        rng,
        ids_rng,
        cal: Calendar,
        params: _Params,
        start: date,
        end: date,
        weekly_starts: float,
    ):
        self.rng = rng
        self.cal = cal
        self.params = params
        self.start = start.toordinal()
        self.end = end.toordinal()
        self.start_date, self.end_date = start, end
        self.weekly_starts = weekly_starts
        self.pharmacies = _pharmacies(ids_rng)
        self.pharmacy_cdf = np.cumsum(self.pharmacies["activity"])
        self.pharmacy_cdf[-1] = 1.0
        self.prescriber_ids = _hex_ids(ids_rng, N_PRESCRIBERS, "DR", 10)
        self.programmes: list[_Prog] = []
        # steps outside programmes (R02, R11): patient, pharmacy, day, cnk, qty, tag
        self.loose: list[tuple[int, int, int, str, int, str]] = []
        self.loose_prescriber: list[int] = []

    def _pick_pharmacy(self) -> int:
        return int(np.searchsorted(self.pharmacy_cdf, self.rng.random(), side="right"))

    # programme starts
    def _start_days(self) -> np.ndarray:
        # whole Monday-Sunday weeks around [start, end]; a week's starts spread over its working
        # days (fewer on Saturday), so a public holiday moves starts to the other days
        first = self.start - (self.start - 1) % 7
        last = self.end + 6 - (self.end - 1) % 7
        ords = np.arange(first, last + 1)
        working = self.cal.working[ords - self.cal.base]
        weekday = (ords - 1) % 7
        weight = np.where(weekday == 5, SATURDAY_WEIGHT, 1.0) * working
        week_weight = np.repeat(weight.reshape(-1, 7).sum(axis=1), 7)
        doy = np.array([date.fromordinal(int(d)).timetuple().tm_yday for d in ords])
        season = 1 + 0.08 * np.cos(2 * np.pi * (doy - 15) / 365.25)
        mean = self.weekly_starts * season * weight / np.maximum(week_weight, 1e-9)
        inside = (ords >= self.start) & (ords <= self.end)
        return np.repeat(ords[inside], self.rng.poisson(mean[inside]))

    def _dropout_reductions(self, scheme: int) -> int:
        rng = self.rng
        if rng.random() < 0.15:
            return 0
        k = np.arange(1, scheme)
        w = (scheme - k).astype(float)
        return int(rng.choice(k, p=w / w.sum()))

    def _new_programme(self, patient: int, start: int, pharmacy: int | None = None) -> _Prog:
        rng = self.rng
        schemes = np.array(list(SCHEME_COUNTS))
        scheme_p = np.array(list(SCHEME_COUNTS.values()), dtype=float)
        scheme = int(rng.choice(schemes, p=scheme_p / scheme_p.sum()))
        step_days = int(rng.choice(list(STEP_DAYS_P), p=list(STEP_DAYS_P.values())))
        completes = bool(rng.random() < COMPLETION_RATE)
        n_red = scheme if completes else self._dropout_reductions(scheme)
        u = rng.random()
        n_stab = 1 if u < STAB_P[0] else 2 if u < STAB_P[0] + STAB_P[1] else 0
        n_stab = min(n_stab, max(n_red - 1, 0))
        stab_after = (
            sorted(int(x) for x in rng.choice(np.arange(1, n_red), n_stab, replace=False))
            if n_stab
            else []
        )
        if completes:
            follow_up = bool(rng.random() < FOLLOW_UP_P_COMPLETED)
        else:
            follow_up = n_red >= 2 and bool(rng.random() < FOLLOW_UP_P_STOPPED)
        if pharmacy is None:
            pharmacy = self._pick_pharmacy()
        return _Prog(
            patient=patient, pharmacy=pharmacy, prescriber=int(rng.integers(N_PRESCRIBERS)),
            start=start, scheme=scheme, step_days=step_days, n_red=n_red, completes=completes,
            stab_after=stab_after, follow_up=follow_up,
        )  # fmt: skip

    def _assign_specials(self, progs: list[_Prog]) -> None:
        rng, end = self.rng, self.end
        n = len(progs)
        want = max(1, round(BREACH_RATE * n))
        order = rng.permutation(n)
        taken: set[int] = set()
        max_days = self.params.max_programme_days

        def pick(kind: str, ok, count: int) -> list[_Prog]:
            chosen = []
            for i in order:
                if len(chosen) >= count:
                    break
                p = progs[i]
                if i in taken or not ok(p):
                    continue
                taken.add(int(i))
                p.special = kind
                chosen.append(p)
            return chosen

        def fits(p: _Prog, extra_steps: int = 0, extra_stabs: int = 0) -> bool:
            days = (
                (p.n_red + extra_steps) * (p.step_days + 2)
                + (len(p.stab_after) + extra_stabs) * (self.params.stabilisation_days + 2)
                + 40
            )
            return p.start + days <= end

        for p in pick("R03", lambda p: p.completes and p.step_days <= 20 and fits(p, 1), want):
            p.n_red = p.scheme + 1
            p.stab_after = []
        for p in pick("R04", lambda p: p.completes and p.step_days <= 20 and fits(p, 0, 3), want):
            p.stab_after = sorted(
                int(x) for x in rng.choice(np.arange(1, p.n_red), 3, replace=False)
            )
        for p in pick("R05", lambda p: p.completes and fits(p), want):
            p.follow_up = True
        pick("R06", lambda p: p.n_red >= 2 and fits(p), want)
        pick(
            "R07",
            lambda p: p.completes and p.start + max_days + 45 <= end and not p.follow_up,
            want,
        )
        for p in pick("R08", lambda p: p.n_red >= 2 and p.step_days >= 20 and fits(p), want):
            p.stab_after = []
        for p in pick("R09", lambda p: p.n_red >= 2 and p.step_days <= 20 and fits(p, 0, 2), want):
            k = int(rng.integers(1, p.n_red))
            p.stab_after = [k, k]
        for p in pick("R10", lambda p: p.n_red >= 1 and fits(p, 0, 1), want):
            p.stab_after = []
        for p in pick("q2", lambda p: p.n_red >= 3 and fits(p), max(2, round(QTY2_RATE * n))):
            p.double_at = int(rng.integers(2, p.n_red))
            p.stab_after = [k for k in p.stab_after if k != p.double_at]

    def _steps(self, p: _Prog) -> list[list]:
        steps: list[list] = []  # [kind R|S, qty, tag]
        n_stab = 0
        if p.special == "R10":
            steps.append(["S", 1, "R10"])
            n_stab = 1
        u = 1
        while u <= p.n_red:
            qty = 2 if u == p.double_at else 1
            tag = "q2" if qty == 2 else None
            if p.special == "R03" and u == p.scheme + 1:
                tag = "R03"
            steps.append(["R", qty, tag])
            last = u + qty - 1
            for _ in range(p.stab_after.count(last)):
                n_stab += 1
                tag = None
                if steps[-1][0] == "S":
                    tag = "R09"
                elif n_stab == 3:
                    tag = "R04"
                steps.append(["S", 1, tag])
            u += qty
        return steps

    def _schedule(self, p: _Prog) -> None:
        rng, cal, params = self.rng, self.cal, self.params
        init_cnk = INITIATION_CNK_BY_SCHEME[p.scheme]
        red_cnk = REDUCTION_CNK_BY_CAPSULES[p.step_days]
        limit = p.start + params.max_programme_days - 5
        for attempt in range(3):
            late_ok = attempt == 0
            if attempt == 2 and p.special not in ("R04", "R09"):
                p.stab_after = []
            steps = self._steps(p)
            r08_step = r06_step = -1
            if p.special == "R08":
                options = [j for j in range(1, len(steps)) if steps[j - 1][0] == "R"]
                r08_step = int(rng.choice(options))
            if p.special == "R06":
                options = [j for j in range(1, len(steps)) if steps[j][0] == "R"]
                r06_step = int(rng.choice(options))
            events = [(p.start, init_cnk, 1, p.pharmacy, "R01" if p.repeat else None)]
            step_days: list[int] = []
            prev_day = prev_dur = 0
            prev_kind = ""
            for j, (kind, qty, tag) in enumerate(steps):
                if j == 0:
                    day = (
                        p.start
                        if rng.random() < 0.65
                        else cal.after(p.start, int(rng.integers(1, 4)))
                    )
                else:
                    end_day = prev_day + prev_dur - 1
                    if j == r08_step:
                        day = max(cal.back(end_day, int(rng.integers(5, 9))), prev_day + 1)
                        tag = "R08"
                    elif late_ok and rng.random() < 0.22:
                        day = cal.on_or_after(end_day + 1 + int(rng.integers(0, 7)))
                    else:
                        day = cal.on_or_before(end_day, int(rng.choice(3, p=(0.35, 0.35, 0.30))))
                        if prev_kind == "R":
                            day = max(day, cal.back(end_day, params.early_delivery_working_days))
                        day = max(day, prev_day + 1)
                pharmacy = p.pharmacy
                if j == r06_step:
                    pharmacy = (
                        p.pharmacy + 1 + int(rng.integers(N_PARTICIPATING - 1))
                    ) % N_PARTICIPATING
                    tag = "R06"
                cnk = red_cnk if kind == "R" else STABILISATION_CNK
                events.append((day, cnk, qty, pharmacy, tag))
                step_days.append(day)
                prev_day, prev_kind = day, kind
                prev_dur = p.step_days * qty if kind == "R" else params.stabilisation_days
            fu_days: list[tuple[int, str | None]] = []
            if step_days and (p.follow_up or p.special == "R05"):
                n = len(step_days)
                if p.special == "R05":
                    fu_days = [
                        (step_days[int(rng.integers(n // 2, n - 1))], None),
                        (step_days[-1], "R05"),
                    ]
                elif p.completes and rng.random() < 0.6:
                    fu_days = [(step_days[-1], None)]
                else:
                    fu_days = [(step_days[int(rng.integers(n // 2, n))], None)]
            for day, tag in fu_days:
                events.append((day, FOLLOW_UP_CNK, 1, p.pharmacy, tag))
            if max(e[0] for e in events) <= limit:
                break
        if p.special == "R07":
            day = cal.on_or_after(p.start + params.max_programme_days + int(rng.integers(5, 40)))
            events.append((day, FOLLOW_UP_CNK, 1, p.pharmacy, "R07"))
        planned_last = max(e[0] for e in events)
        p.events = sorted(
            (e for e in events if e[0] <= self.end),
            key=lambda e: (e[0], KIND_ORDER[BY_CNK[e[1]].kind]),
        )
        n_red = sum(e[2] for e in p.events if BY_CNK[e[1]].kind == "reduction")
        if n_red >= p.scheme:
            p.outcome = "completed"
        elif not p.completes and planned_last <= self.end:
            p.outcome = "stopped"
        else:
            p.outcome = "in_progress"

    def run(self) -> None:
        rng, cal = self.rng, self.cal
        starts = self._start_days()
        progs = [self._new_programme(i, int(d)) for i, d in enumerate(starts)]
        self._assign_specials(progs)
        for p in progs:
            self._schedule(p)
        next_patient = len(progs)

        # R01: a patient who stopped re-initiates a new programme after the first one's last event
        want = max(1, round(BREACH_RATE * len(progs)))
        repeats = []
        for i in rng.permutation(len(progs)):
            if len(repeats) >= want:
                break
            p = progs[i]
            last = p.events[-1][0]
            if p.special or p.outcome != "stopped" or last + 60 > self.end:
                continue
            day = cal.on_or_after(last + int(rng.integers(20, min(200, self.end - last))))
            if day > self.end:
                continue
            pharmacy = p.pharmacy if rng.random() < 0.8 else None
            q = self._new_programme(p.patient, day, pharmacy)
            q.repeat = True
            q.prescriber = p.prescriber
            self._schedule(q)
            p.special = "R01-first"
            repeats.append(q)
        progs.extend(repeats)

        # R02: patients with steps but no initiation
        for _ in range(want):
            step_days = int(rng.choice(list(STEP_DAYS_P)))
            first = self.start + int(rng.integers(0, max(self.end - self.start - 3 * step_days, 1)))
            day = cal.on_or_after(first)
            pharmacy = self._pick_pharmacy()
            prescriber = int(rng.integers(N_PRESCRIBERS))
            for _k in range(int(rng.integers(1, 4))):
                if day > self.end:
                    break
                self.loose.append(
                    (next_patient, pharmacy, day, REDUCTION_CNK_BY_CAPSULES[step_days], 1, "R02")
                )
                self.loose_prescriber.append(prescriber)
                day = cal.on_or_before(day + step_days - 1, int(rng.integers(0, 3)))
            next_patient += 1

        # R11: a step delivered before programme_start to a patient who initiates later
        ps = self.params.programme_start.toordinal()
        if self.start >= ps and ps - 31 >= EARLIEST_DATE.toordinal():
            plain = [p for p in progs if not p.special and not p.repeat]
            plain.sort(key=lambda p: p.start)
            pool = plain[: max(want * 10, 20)]
            for j in rng.choice(len(pool), min(want, len(pool)), replace=False) if pool else []:
                p = pool[int(j)]
                day = cal.on_or_before(ps - 1 - int(rng.integers(0, 25)))
                p.special = "R11-patient"
                self.loose.append(
                    (p.patient, p.pharmacy, day, REDUCTION_CNK_BY_CAPSULES[p.step_days], 1, "R11")
                )
                self.loose_prescriber.append(p.prescriber)

        progs.sort(key=lambda p: (p.start, p.patient, p.repeat))
        for number, p in enumerate(progs, 1):
            p.number = number
        self.programmes = progs
        self.n_patients = next_patient


def _hex_ids(rng, n: int, prefix: str, width: int, exclude: set[str] | None = None) -> list[str]:
    """n distinct pseudonyms: prefix + `width` upper-case hex digits (never 11 digits)."""
    out: list[str] = []
    seen: set[str] = set(exclude or ())
    while len(out) < n:
        vals = rng.integers(0, 2**63, size=n - len(out), dtype=np.int64)
        for v in vals.tolist():
            text = f"{prefix}{v % (16**width):0{width}X}"
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out


def _postcodes(rng, n: int) -> list[str]:
    flanders = np.concatenate([np.arange(1500, 4000, 10), np.arange(8000, 10000, 10)])
    wallonia = np.concatenate([np.arange(1300, 1500, 10), np.arange(4000, 8000, 10)])
    region = rng.choice(3, size=n, p=REGION_P)
    codes = np.where(
        region == 0,
        rng.choice(np.array(BRUSSELS_POSTCODES), size=n),
        np.where(region == 1, rng.choice(flanders, size=n), rng.choice(wallonia, size=n)),
    )
    return [str(c) for c in codes.tolist()]


def _pharmacies(rng) -> dict:
    ids = _hex_ids(rng, N_PHARMACIES, "PH", 10)
    postcodes = _postcodes(rng, N_PHARMACIES)
    act = rng.gamma(0.9, 1.0, N_PARTICIPATING)
    all_act = rng.gamma(2.0, 1.0, N_PHARMACIES)
    return {
        "id": ids,
        "postcode": postcodes,
        "activity": act / act.sum(),
        "all_activity": all_act / all_act.sum(),
    }


def _demographics(rng, n: int) -> dict[str, np.ndarray]:
    birth = 1930 + np.rint(74 * rng.beta(1.8, 2.6, n)).astype(np.int32)
    sex = np.where(rng.random(n) < FEMALE_SHARE, "F", "M")
    insurer = rng.choice(np.array(list(INSURERS)), size=n, p=np.array(list(INSURERS.values())))
    return {"birth": birth, "sex": sex, "insurer": insurer}


# --- other medicines ------------------------------------------------------------------------

_MOLECULES = (
    ("Paracétamol", "Paracetamol"), ("Ibuprofène", "Ibuprofen"), ("Amoxicilline", "Amoxicilline"),
    ("Oméprazole", "Omeprazol"), ("Pantoprazole", "Pantoprazol"), ("Metformine", "Metformine"),
    ("Lévothyroxine", "Levothyroxine"), ("Diclofénac", "Diclofenac"),
    ("Simvastatine", "Simvastatine"), ("Atorvastatine", "Atorvastatine"),
    ("Rosuvastatine", "Rosuvastatine"), ("Bisoprolol", "Bisoprolol"), ("Amlodipine", "Amlodipine"),
    ("Lisinopril", "Lisinopril"), ("Cétirizine", "Cetirizine"), ("Loratadine", "Loratadine"),
    ("Alprazolam", "Alprazolam"), ("Lorazépam", "Lorazepam"), ("Zolpidem", "Zolpidem"),
    ("Sertraline", "Sertraline"), ("Escitalopram", "Escitalopram"), ("Trazodone", "Trazodon"),
    ("Mirtazapine", "Mirtazapine"), ("Tramadol", "Tramadol"), ("Codéine", "Codeïne"),
    ("Salbutamol", "Salbutamol"), ("Prednisolone", "Prednisolon"), ("Clopidogrel", "Clopidogrel"),
    ("Apixaban", "Apixaban"), ("Furosémide", "Furosemide"), ("Dompéridone", "Domperidon"),
    ("Métoclopramide", "Metoclopramide"), ("Lopéramide", "Loperamide"),
    ("Acide acétylsalicylique", "Acetylsalicylzuur"), ("Caféine", "Cafeïne"),
    ("Vitamine D3", "Vitamine D3"), ("Magnésium", "Magnesium"),
)  # fmt: skip
_MAKERS = ("EG", "Sandoz", "Teva", "Mylan", "Apotex", "Krka", "Viatris", "Aurobindo", "Zentiva")
_FORMS = (
    ("comprimés", "tabletten"), ("comprimés pelliculés", "filmomhulde tabletten"),
    ("gélules", "capsules"), ("sirop", "siroop"), ("crème", "crème"), ("pommade", "zalf"),
    ("solution buvable", "drank"), ("suppositoires", "zetpillen"), ("sachets", "zakjes"),
    ("gouttes", "druppels"),
)  # fmt: skip
_STRENGTHS = ("5 mg", "10 mg", "20 mg", "40 mg", "100 mg", "250 mg", "500 mg", "1 g")
_PACKS = (10, 20, 28, 30, 56, 60, 98, 100)
_GENERIC = (
    ("Médicament générique", "Geneesmiddel"),
    ("Préparation magistrale", "Magistrale bereiding"),
    ("Matériel de soins – pansements", "Verzorgingsmateriaal – verbanden"),
    ('Sirop "toux sèche"', 'Hoestsiroop "droge hoest"'),
)


def _other_products(rng) -> dict:
    """A pool of other CNKs (7 digits, none of the 8 programme codes) with labels and prices."""
    taken = {int(c) for c in PROGRAMME_CNKS}
    codes: list[int] = []
    seen: set[int] = set()
    while len(codes) < OTHER_CNK_POOL:
        for v in rng.integers(1, 5_000_000, OTHER_CNK_POOL).tolist():
            if v not in seen and v not in taken and len(codes) < OTHER_CNK_POOL:
                seen.add(v)
                codes.append(v)
    mol = rng.integers(len(_MOLECULES), size=OTHER_CNK_POOL)
    maker = rng.integers(len(_MAKERS), size=OTHER_CNK_POOL)
    form = rng.integers(len(_FORMS), size=OTHER_CNK_POOL)
    strength = rng.integers(len(_STRENGTHS), size=OTHER_CNK_POOL)
    pack = rng.integers(len(_PACKS), size=OTHER_CNK_POOL)
    generic = rng.random(OTHER_CNK_POOL) < 0.04
    gen_kind = rng.integers(len(_GENERIC), size=OTHER_CNK_POOL)
    labels = {"fr": [], "nl": []}
    for i in range(OTHER_CNK_POOL):
        for lang, li in (("fr", 0), ("nl", 1)):
            if generic[i]:
                labels[lang].append(_GENERIC[gen_kind[i]][li])
            else:
                labels[lang].append(
                    f"{_MOLECULES[mol[i]][li]} {_MAKERS[maker[i]]} {_STRENGTHS[strength[i]]}, "
                    f"{_PACKS[pack[i]]} {_FORMS[form[i]][li]}"
                )
    rank = rng.permutation(OTHER_CNK_POOL)
    popularity = 1.0 / (rank + 10.0) ** 0.9
    price = np.clip(np.rint(np.exp(rng.normal(np.log(1200), 0.9, OTHER_CNK_POOL))), 50, 50000)
    return {
        "cnk": pl.Series([f"{c:07d}" for c in codes], dtype=pl.String),
        "label_fr": pl.Series(labels["fr"], dtype=pl.String),
        "label_nl": pl.Series(labels["nl"], dtype=pl.String),
        "p": popularity / popularity.sum(),
        "price": price.astype(np.int64),
    }


class _OtherLines:
    """Lines of other medicines: counts per (billing month, day) up front, rows chunk by chunk."""

    def __init__(
        self,
        rng,
        n: int,
        cal: Calendar,
        start: int,
        end: int,
        end_month: int,
        patients: dict,
        pharmacies: dict,
        prescriber_ids: list[str],
        style: Style,
    ):
        self.rng = rng
        self.n = n
        self.by_month: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if n <= 0:
            return
        ords = np.arange(start, end + 1)
        weekday = (ords - 1) % 7
        working = cal.working[ords - cal.base]
        w = np.where(working, np.where(weekday == 5, 0.6, 1.0), 0.04)
        cell_p = (w[:, None] * np.array(LAG_P)[None, :]).ravel()
        counts = rng.multinomial(n, cell_p / cell_p.sum()).reshape(len(ords), 3)
        months = np.array([_month_index(int(d)) for d in ords])
        for lag in range(3):
            bms = np.minimum(months + lag, end_month)
            for bm in np.unique(bms):
                sel = (bms == bm) & (counts[:, lag] > 0)
                if not sel.any():
                    continue
                days, cnt = ords[sel], counts[sel, lag]
                if bm in self.by_month:
                    d0, c0 = self.by_month[int(bm)]
                    merged: dict[int, int] = defaultdict(int)
                    for d, c in zip(
                        np.concatenate([d0, days]).tolist(),
                        np.concatenate([c0, cnt]).tolist(),
                        strict=True,
                    ):
                        merged[d] += c
                    keys = sorted(merged)
                    days, cnt = np.array(keys), np.array([merged[k] for k in keys])
                self.by_month[int(bm)] = (days, cnt)
        self.products = _other_products(rng)
        self.label = self.products["label_nl" if style.label_language == "nl" else "label_fr"]
        self.patients = patients
        self.n_patients = len(patients["id"])
        self.pharmacy_id = pl.Series(pharmacies["id"], dtype=pl.String)
        self.pharmacy_postcode = pl.Series(pharmacies["postcode"], dtype=pl.String)
        self.pharmacy_p = pharmacies["all_activity"]
        self.prescriber_id = pl.Series(prescriber_ids, dtype=pl.String)

    def rows_in(self, bm: int) -> int:
        return int(self.by_month[bm][1].sum()) if bm in self.by_month else 0

    def pieces(self, bm: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The month's (days, counts) cut into chunks of at most CHUNK_ROWS rows, in day order."""
        if bm not in self.by_month:
            return []
        out, cur_d, cur_c, cur_n = [], [], [], 0
        for d, c in zip(*(a.tolist() for a in self.by_month[bm]), strict=True):
            while c > 0:
                take = min(c, CHUNK_ROWS - cur_n)
                cur_d.append(d)
                cur_c.append(take)
                cur_n += take
                c -= take
                if cur_n == CHUNK_ROWS:
                    out.append((np.array(cur_d), np.array(cur_c)))
                    cur_d, cur_c, cur_n = [], [], 0
        if cur_n:
            out.append((np.array(cur_d), np.array(cur_c)))
        return out

    def make(self, bm: int, days: np.ndarray, counts: np.ndarray) -> pl.DataFrame:
        rng = self.rng
        n = int(counts.sum())
        day = np.repeat(days, counts)
        product = rng.choice(OTHER_CNK_POOL, size=n, p=self.products["p"])
        patient = rng.integers(0, self.n_patients, size=n)
        pharmacy = rng.choice(N_PHARMACIES, size=n, p=self.pharmacy_p)
        qty = rng.choice(np.array([1, 2, 3], dtype=np.int32), size=n, p=(0.9, 0.08, 0.02))
        prescriber = rng.integers(0, N_PRESCRIBERS, size=n)
        tie = rng.random(n)
        pat = self.patients
        return pl.DataFrame(
            {
                "patient_id": pat["id"].gather(patient),
                "pharmacy_id": self.pharmacy_id.gather(pharmacy),
                "delivery_date": pl.Series((day - EPOCH).astype(np.int32)).cast(pl.Date),
                "date_text": pl.Series([None] * n, dtype=pl.String),
                "cnk": self.products["cnk"].gather(product),
                "quantity": pl.Series(qty, dtype=pl.Int32),
                "cents": pl.Series(self.products["price"][product] * qty, dtype=pl.Int64),
                "bm": pl.Series(np.full(n, bm, dtype=np.int32)),
                "insurer_code": pat["insurer"].gather(patient),
                "birth_year": pl.Series(pat["birth"][patient], dtype=pl.Int32),
                "sex": pat["sex"].gather(patient),
                "postcode": self.pharmacy_postcode.gather(pharmacy),
                "prescriber_id": self.prescriber_id.gather(prescriber),
                "label": self.label.gather(product),
                "tie": pl.Series(tie, dtype=pl.Float64),
            }
        )


# --- writers --------------------------------------------------------------------------------

_TYPED_SCHEMA = {
    "patient_id": pl.String, "pharmacy_id": pl.String, "delivery_date": pl.Date,
    "date_text": pl.String, "cnk": pl.String, "quantity": pl.Int32, "cents": pl.Int64,
    "bm": pl.Int32, "insurer_code": pl.String, "birth_year": pl.Int32, "sex": pl.String,
    "postcode": pl.String, "prescriber_id": pl.String, "label": pl.String, "tie": pl.Float64,
}  # fmt: skip


def _text_columns(style: Style) -> list[pl.Expr]:
    """Typed rows -> the style's text columns, in CANONICAL_ORDER with the style's headers."""
    cents = pl.col("cents")
    amount = pl.concat_str([
        pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (cents.abs() // 100).cast(pl.String), pl.lit(style.decimal),
        (cents.abs() % 100).cast(pl.String).str.zfill(2),
    ])  # fmt: skip
    year = (pl.col("bm") // 12).cast(pl.String)
    month = (pl.col("bm") % 12 + 1).cast(pl.String).str.zfill(2)
    date_text = (
        pl.when(pl.col("date_text").is_not_null())
        .then(pl.col("date_text"))
        .otherwise(pl.col("delivery_date").dt.strftime(style.date_format))
    )
    sex = pl.when(pl.col("sex") == "F").then(pl.lit(style.female)).otherwise(pl.lit(style.male))
    exprs = [
        pl.col("patient_id"), pl.col("pharmacy_id"), date_text, pl.col("cnk"),
        pl.col("quantity").cast(pl.String), amount, style.billing_month(year, month),
        pl.col("insurer_code"), pl.col("birth_year").cast(pl.String), sex, pl.col("postcode"),
        pl.col("prescriber_id"), pl.col("label"),
    ]  # fmt: skip
    return [e.alias(h) for e, h in zip(exprs, style.headers, strict=True)]


class _CsvWriter:
    def __init__(self, path: Path, style: Style, gzipped: bool):
        self.style = style
        self.raw = path.open("wb")
        self.fh = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=6)
            if gzipped
            else self.raw
        )
        self.rows = 0
        self.header_done = False

    def write(self, df: pl.DataFrame) -> None:
        buf = io.BytesIO()
        df.select(_text_columns(self.style)).write_csv(
            buf,
            separator=self.style.delimiter,
            line_terminator=self.style.line_terminator,
            quote_style="necessary",
            include_header=not self.header_done,
            null_value="",
        )
        data = buf.getvalue()
        if self.style.encoding != "utf-8":
            data = data.decode("utf-8").encode(self.style.encoding)
        if not self.header_done and self.style.bom:
            data = b"\xef\xbb\xbf" + data
        self.header_done = True
        self.fh.write(data)
        self.rows += df.height

    def close(self) -> None:
        if not self.header_done:
            self.write(pl.DataFrame(schema=_TYPED_SCHEMA))
        if self.fh is not self.raw:
            self.fh.close()
        self.raw.close()


class _ParquetWriter:
    def __init__(self, path: Path, style: Style):
        self.path, self.style = path, style
        self.writer = None
        self.rows = 0

    def _frame(self, df: pl.DataFrame) -> pl.DataFrame:
        style = self.style
        h = dict(zip(CANONICAL_ORDER, style.headers, strict=True))
        typed = [
            pl.col("quantity").alias(h["quantity"]),
            (pl.col("cents") / 100).alias(h["amount_eur"]),
            pl.col("birth_year").alias(h["patient_birth_year"]),
        ]
        if style.name == "iso":  # a real DATE column: an unreadable date can only be missing
            typed.append(
                pl.when(pl.col("date_text").is_null())
                .then(pl.col("delivery_date"))
                .otherwise(None)
                .alias(h["delivery_date"])
            )
        text = df.select(_text_columns(style))
        return text.with_columns(df.select(typed).get_columns())

    def write(self, df: pl.DataFrame) -> None:
        import pyarrow.parquet as pq

        table = self._frame(df).to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self.schema = table.schema
        self.writer.write_table(table.cast(self.schema))
        self.rows += df.height

    def close(self) -> None:
        if self.writer is None:
            self.write(pl.DataFrame(schema=_TYPED_SCHEMA))
        self.writer.close()


class _XlsxWriter:
    def __init__(self, path: Path, style: Style):
        import xlsxwriter

        self.style = style
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.book.set_properties({"created": dt.datetime(2025, 7, 2), "author": "benzo-monitor"})
        self.sheet = self.book.add_worksheet("export")
        self.date_fmt = self.book.add_format({"num_format": style.excel_date_format})
        self.amount_fmt = self.book.add_format({"num_format": "0.00"})
        for c, header in enumerate(style.headers):
            self.sheet.write_string(0, c, header)
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        style, ws = self.style, self.sheet
        text = df.select(_text_columns(style))
        h = dict(zip(CANONICAL_ORDER, style.headers, strict=True))
        serial = (df["delivery_date"].cast(pl.Int32) + (EPOCH - EXCEL_EPOCH)).to_list()
        bad_date = df["date_text"].to_list()
        qty = df["quantity"].to_list()
        amount = (df["cents"] / 100).to_list()
        birth = df["birth_year"].to_list()
        strings = {name: text[h[name]].to_list() for name in CANONICAL_ORDER}
        plain = (
            "patient_id",
            "pharmacy_id",
            "cnk",
            "billing_month",
            "insurer_code",
            "patient_sex",
            "pharmacy_postcode",
            "prescriber_id",
            "label",
        )
        col = {name: i for i, name in enumerate(CANONICAL_ORDER)}
        write_string, write_number = ws.write_string, ws.write_number
        for i in range(df.height):
            r = self.rows + i + 1
            for name in plain:
                value = strings[name][i]
                if value is not None:
                    write_string(r, col[name], value)
            if bad_date[i] is None:
                write_number(r, col["delivery_date"], serial[i], self.date_fmt)
            else:
                write_string(r, col["delivery_date"], bad_date[i])
            write_number(r, col["quantity"], qty[i])
            write_number(r, col["amount_eur"], amount[i], self.amount_fmt)
            write_number(r, col["patient_birth_year"], birth[i])
        self.rows += df.height

    def close(self) -> None:
        self.book.close()


def _open_writer(path: Path, style: Style, file_format: str):
    if file_format in ("csv", "csv.gz"):
        return _CsvWriter(path, style, gzipped=file_format == "csv.gz")
    if file_format == "parquet":
        return _ParquetWriter(path, style)
    return _XlsxWriter(path, style)


# --- the reference computation of SPEC §4, §5 and §8 ----------------------------------------


def net_events(lines: pl.DataFrame) -> pl.DataFrame:
    """SPEC §4: programme events from valid lines (patient_id, pharmacy_id, delivery_date, cnk,
    quantity): net per key, keep positive nets, with kind and the SPEC §4.3 order."""
    kinds = pl.DataFrame(
        {
            "cnk": [c.cnk for c in BY_CNK.values()],
            "kind": [c.kind for c in BY_CNK.values()],
            "kind_order": [KIND_ORDER[c.kind] for c in BY_CNK.values()],
            "scheme": [c.scheme for c in BY_CNK.values()],
            "capsules": [c.capsules for c in BY_CNK.values()],
        }
    )
    return (
        lines.filter(pl.col("cnk").is_in(list(PROGRAMME_CNKS)))
        .group_by("patient_id", "pharmacy_id", "delivery_date", "cnk")
        .agg(pl.col("quantity").sum().alias("units"))
        .filter(pl.col("units") > 0)
        .join(kinds, on="cnk")
        .sort("patient_id", "delivery_date", "kind_order", "cnk", "pharmacy_id")
    )


def reference_compliance(lines: pl.DataFrame, config=None) -> dict[str, int]:
    """Flag counts of SPEC §8 (R01-R11) over all events of `lines`, as-of their latest date.

    A plain-Python reading of the SPEC, to cross-check the warehouse's views.
    """
    params = _Params.from_config(config)
    events = net_events(lines)
    counts = dict.fromkeys(RULES, 0)
    if events.is_empty():
        return counts
    first, last = events["delivery_date"].min(), events["delivery_date"].max()
    cal = Calendar(min(first, EARLIEST_DATE) - dt.timedelta(days=400), last + dt.timedelta(days=30))
    start_ord = params.programme_start.toordinal()
    current = None
    seen_init = False
    prog: dict | None = None
    for patient, pharmacy, day, _cnk, units, kind, _o, scheme, capsules in events.iter_rows():
        if patient != current:
            current, seen_init, prog = patient, False, None
        d = day.toordinal()
        for _ in range(units):
            if d < start_ord:
                counts["R11"] += 1
            if kind == "initiation":
                if seen_init:
                    counts["R01"] += 1
                seen_init = True
                prog = {
                    "start": d,
                    "pharmacy": pharmacy,
                    "scheme": scheme,
                    "red": 0,
                    "stab": 0,
                    "fu": 0,
                    "prev": None,
                }
                continue
            if prog is None:
                counts["R02"] += 1
                continue
            if pharmacy != prog["pharmacy"]:
                counts["R06"] += 1
            if d - prog["start"] > params.max_programme_days:
                counts["R07"] += 1
            if kind == "follow_up":
                prog["fu"] += 1
                counts["R05"] += prog["fu"] > 1
                continue
            prev = prog["prev"]
            if prev is not None and prev[0] == "reduction":
                earliest = cal.back(prev[1] + prev[2] - 1, params.early_delivery_working_days)
                counts["R08"] += d < earliest
            if kind == "reduction":
                prog["red"] += 1
                counts["R03"] += prog["red"] > prog["scheme"]
            else:
                prog["stab"] += 1
                counts["R04"] += prog["stab"] > 2
                counts["R09"] += prev is not None and prev[0] == "stabilisation"
                counts["R10"] += prog["red"] == 0
            prog["prev"] = (kind, d, capsules)
    return counts


# --- the API --------------------------------------------------------------------------------


def _export_name(split: str, bm: int | None, file_format: str) -> str:
    suffix = FORMAT_SUFFIX[file_format]
    if split == "single" or bm is None:
        return f"export{suffix}"
    return f"export_{bm // 12:04d}-{bm % 12 + 1:02d}{suffix}"


def _remove_stale(output_dir: Path) -> list[Path]:
    removed = []
    for path in sorted(output_dir.iterdir()):
        name = path.name
        for suffix in FORMAT_SUFFIX.values():
            if not name.endswith(suffix):
                continue
            stem = name[: -len(suffix)]
            month = stem[len("export_") :]
            if stem == "export" or (
                stem.startswith("export_") and len(month) == 7 and month[4] == "-"
                and month[:4].isdigit() and month[5:].isdigit()
            ):  # fmt: skip
                path.unlink()
                removed.append(path)
            break
    return removed


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
) -> GenerateResult:
    """Write a seeded synthetic national dataset into `output_dir` (see the module docstring).

    `end` defaults to the last day of the previous month; it is never later than today.
    Export files named `export_YYYY-MM.<ext>` / `export.<ext>` already in `output_dir` are
    removed first, so that a directory never mixes two runs.
    """
    today = today or date.today()
    end = min(end or _default_end(today), today)
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
    params = _Params.from_config(config)
    st = STYLES[style]
    output_dir = Path(output_dir)
    root = np.random.default_rng(seed)
    rng_prog, rng_ids, rng_other, rng_lines = root.spawn(4)

    cal_first = min(EARLIEST_DATE, params.programme_start - dt.timedelta(days=60))
    cal = Calendar(cal_first, end + dt.timedelta(days=params.max_programme_days + 500))
    sim = _Simulation(rng_prog, rng_ids, cal, params, start, end, weekly_starts)
    sim.run()

    # patients: the simulated ones, then a pool for other medicines
    demo = _demographics(rng_prog, sim.n_patients)
    patient_ids = _hex_ids(rng_prog, sim.n_patients, "P", 16)
    end_month = _month_index(end.toordinal())
    start_month = _month_index(start.toordinal())

    # programme lines
    rows: dict[str, list] = defaultdict(list)

    def add(patient, pharmacy, day, cnk, qty, tag, prescriber, programme):
        rows["patient"].append(patient)
        rows["pharmacy"].append(pharmacy)
        rows["day"].append(day)
        rows["cnk"].append(cnk)
        rows["qty"].append(qty)
        rows["tag"].append(tag or "")
        rows["prescriber"].append(prescriber)
        rows["programme"].append(programme)

    for p in sim.programmes:
        for day, cnk, qty, pharmacy, tag in p.events:
            add(p.patient, pharmacy, day, cnk, qty, tag, p.prescriber, p.number)
    for (patient, pharmacy, day, cnk, qty, tag), prescriber in zip(
        sim.loose, sim.loose_prescriber, strict=True
    ):
        add(patient, pharmacy, day, cnk, qty, tag, prescriber, 0)
    n_base = len(rows["day"])
    day_arr = np.array(rows["day"], dtype=np.int64)
    months = np.array([_month_index(d) for d in rows["day"]], dtype=np.int64)
    lag = rng_lines.choice(3, size=n_base, p=LAG_P)
    bm = np.minimum(np.maximum(months + lag, start_month), end_month)
    fee_cache: dict[tuple[str, int], int] = {}

    def fee(cnk: str, day: int) -> int:
        key = (cnk, day)
        if key not in fee_cache:
            fee_cache[key] = params.fee_cents(cnk, day)
        return fee_cache[key]

    cents = [fee(c, d) * q for c, d, q in zip(rows["cnk"], rows["day"], rows["qty"], strict=True)]
    lines = pl.DataFrame(
        {
            "patient": pl.Series(rows["patient"], dtype=pl.Int64),
            "pharmacy": pl.Series(rows["pharmacy"], dtype=pl.Int64),
            "day": pl.Series(day_arr),
            "cnk": pl.Series(rows["cnk"], dtype=pl.String),
            "quantity": pl.Series(rows["qty"], dtype=pl.Int32),
            "cents": pl.Series(cents, dtype=pl.Int64),
            "bm": pl.Series(bm, dtype=pl.Int32),
            "tag": pl.Series(rows["tag"], dtype=pl.String),
            "prescriber": pl.Series(rows["prescriber"], dtype=pl.Int64),
            "programme": pl.Series(rows["programme"], dtype=pl.Int64),
            "broken": pl.Series([""] * n_base, dtype=pl.String),
            "date_text": pl.Series([None] * n_base, dtype=pl.String),
        }
    )

    # corrections: a cancel line and a re-bill line, both billed in a later month
    candidates = np.flatnonzero((lines["quantity"].to_numpy() == 1) & (bm < end_month))
    n_corr = min(int(rng_lines.binomial(n_base, CORRECTION_RATE)), len(candidates))
    picked = (
        np.sort(rng_lines.choice(candidates, n_corr, replace=False))
        if n_corr
        else np.array([], dtype=np.int64)
    )
    later = np.minimum(bm[picked] + rng_lines.integers(1, 4, n_corr), end_month)
    orig = lines[picked]
    cancel = orig.with_columns(
        quantity=pl.lit(-1, pl.Int32), cents=-pl.col("cents"), bm=pl.Series(later, dtype=pl.Int32),
        tag=pl.lit("cancel"),
    )  # fmt: skip
    rebill = orig.with_columns(bm=pl.Series(later, dtype=pl.Int32), tag=pl.lit("rebill"))

    # unmatched corrections: a -1 for a key that has no positive line
    years = (end - start).days / 365.25
    n_unmatched = max(1, round(UNMATCHED_PER_YEAR * years))
    keys = set(zip(rows["patient"], rows["pharmacy"], rows["day"], rows["cnk"], strict=True))
    red_rows = np.flatnonzero(
        np.isin(lines["cnk"].to_numpy(), list(REDUCTION_CNK_BY_CAPSULES.values()))
    )
    unmatched = []
    for _attempt in range(n_unmatched * 20):
        if len(unmatched) >= n_unmatched or not len(red_rows):
            break
        i = int(rng_lines.choice(red_rows))
        patient, pharmacy, day, cnk = (
            rows["patient"][i],
            rows["pharmacy"][i],
            rows["day"][i],
            rows["cnk"][i],
        )
        day = cal.on_or_before(day - int(rng_lines.integers(1, 8)))
        if day < start.toordinal() or (patient, pharmacy, day, cnk) in keys:
            continue
        keys.add((patient, pharmacy, day, cnk))
        ubm = min(_month_index(day) + int(rng_lines.integers(1, 3)), end_month)
        unmatched.append(
            {"patient": patient, "pharmacy": pharmacy, "day": day, "cnk": cnk, "quantity": -1,
             "cents": -fee(cnk, day), "bm": ubm, "tag": "unmatched",
             "prescriber": rows["prescriber"][i], "programme": rows["programme"][i],
             "broken": "", "date_text": None}
        )  # fmt: skip
    unmatched_df = pl.DataFrame(unmatched, schema=lines.schema)

    # broken lines: copies of non-initiation quantity-1 lines with one defect (never initiations)
    n_broken = max(MIN_BROKEN, round((n_base + 2 * n_corr + other_lines) / BROKEN_EVERY))
    ok = np.flatnonzero(
        (lines["quantity"].to_numpy() == 1)
        & ~np.isin(lines["cnk"].to_numpy(), list(INITIATION_CNK_BY_SCHEME.values()))
    )
    if not len(ok):
        n_broken = 0
    broken_rows = []
    broken_counts: Counter = Counter()
    typed_dates = file_format == "parquet" and style == "iso"
    for k, i in enumerate(rng_lines.choice(ok, n_broken, replace=len(ok) < n_broken).tolist()):
        row = lines.row(i, named=True)
        kind = BROKEN_KINDS[k % len(BROKEN_KINDS)]
        row["tag"], row["broken"] = "broken", kind
        if kind == "missing_patient":
            row["patient"] = -1
        elif kind == "unreadable_date":
            row["date_text"] = st.bad_date(date.fromordinal(row["day"]).year)
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
    broken_df = pl.DataFrame(broken_rows, schema=lines.schema)

    lines = pl.concat([lines, cancel, rebill, unmatched_df, broken_df])
    lines = lines.with_columns(tie=pl.Series(rng_lines.random(lines.height), dtype=pl.Float64))

    # attributes of the lines
    pats = {
        "id": pl.Series(patient_ids, dtype=pl.String),
        "birth": demo["birth"],
        "sex": pl.Series(demo["sex"].tolist(), dtype=pl.String),
        "insurer": pl.Series(demo["insurer"].tolist(), dtype=pl.String),
    }
    ph_ids = pl.Series(sim.pharmacies["id"], dtype=pl.String)
    ph_post = pl.Series(sim.pharmacies["postcode"], dtype=pl.String)
    presc = pl.Series(sim.prescriber_ids, dtype=pl.String)
    label_lang = "label_nl" if st.label_language == "nl" else "label_fr"
    labels = {c.cnk: getattr(c, label_lang) for c in BY_CNK.values()}
    labels[BAD_CNK] = labels[REDUCTION_CNK_BY_CAPSULES[10]]
    pidx = lines["patient"].to_numpy()
    safe = np.where(pidx < 0, 0, pidx)
    prog_typed = pl.DataFrame(
        {
            "patient_id": pats["id"].gather(safe).scatter(np.flatnonzero(pidx < 0), None),
            "pharmacy_id": ph_ids.gather(lines["pharmacy"].to_numpy()),
            "delivery_date": (lines["day"] - EPOCH).cast(pl.Int32).cast(pl.Date),
            "date_text": lines["date_text"],
            "cnk": lines["cnk"],
            "quantity": lines["quantity"],
            "cents": lines["cents"],
            "bm": lines["bm"],
            "insurer_code": pats["insurer"].gather(safe),
            "birth_year": pl.Series(demo["birth"][safe], dtype=pl.Int32),
            "sex": pats["sex"].gather(safe),
            "postcode": ph_post.gather(lines["pharmacy"].to_numpy()),
            "prescriber_id": presc.gather(lines["prescriber"].to_numpy()),
            "label": lines["cnk"].replace_strict(labels, return_dtype=pl.String),
            "tie": lines["tie"],
        }
    ).sort("bm", "delivery_date", "tie")

    # other medicines
    if other_lines:
        pool = max(2000, min(other_lines // 10, 400_000))
        extra_demo = _demographics(rng_other, pool)
        other_pats = {
            "id": pl.concat(
                [pats["id"], pl.Series(_hex_ids(rng_other, pool, "P", 16, set(patient_ids)))]
            ),
            "birth": np.concatenate([demo["birth"], extra_demo["birth"]]),
            "sex": pl.Series(
                np.concatenate([demo["sex"], extra_demo["sex"]]).tolist(), dtype=pl.String
            ),
            "insurer": pl.Series(
                np.concatenate([demo["insurer"], extra_demo["insurer"]]).tolist(), dtype=pl.String
            ),
        }
    else:
        other_pats = pats
    other = _OtherLines(
        rng_other, other_lines, cal, start.toordinal(), end.toordinal(), end_month,
        other_pats, sim.pharmacies, sim.prescriber_ids, st,
    )  # fmt: skip

    # files: which billing months go where, and the XLSX row limit before writing anything
    prog_by_month = {key[0]: df for key, df in prog_typed.partition_by("bm", as_dict=True).items()}
    months_all = sorted(set(prog_by_month) | set(other.by_month))
    groups: list[tuple[str, list[int]]] = (
        [(_export_name("single", None, file_format), months_all)]
        if split == "single"
        else [(_export_name("month", m, file_format), [m]) for m in months_all]
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
    output_dir.mkdir(parents=True, exist_ok=True)
    removed = _remove_stale(output_dir)
    files: list[Path] = []
    file_rows: dict[str, int] = {}
    for name, ms in groups:
        path = output_dir / name
        writer = _open_writer(path, st, file_format)
        try:
            for m in ms:
                prog_m = prog_by_month.get(m, prog_typed.clear())
                pieces = other.pieces(m)
                if not pieces:
                    if prog_m.height:
                        writer.write(prog_m.drop("tie"))
                    continue
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
                    writer.write(
                        chunk.sort("delivery_date", "tie", maintain_order=True).drop("tie")
                    )
        finally:
            writer.close()
        files.append(path)
        file_rows[name] = writer.rows

    # ground truth
    truth = _ground_truth(sim, patient_ids, sim.pharmacies["id"])
    truth_path = output_dir / "ground_truth_programmes.csv"
    truth.write_csv(truth_path)

    # expected figures: events and compliance flags per SPEC §4-§8 on the valid lines
    valid = lines.filter(pl.col("broken") == "").select(
        pl.col("patient").cast(pl.String).alias("patient_id"),
        pl.col("pharmacy").cast(pl.String).alias("pharmacy_id"),
        (pl.col("day") - EPOCH).cast(pl.Int32).cast(pl.Date).alias("delivery_date"),
        "cnk",
        "quantity",
    )
    expected_flags = reference_compliance(valid, config)
    events = net_events(valid)
    event_counts = {k: 0 for k in KIND_ORDER} | dict(
        events.group_by("kind").agg(pl.col("units").sum()).iter_rows()
    )
    delivered_tags = Counter(t for t in lines.filter(pl.col("broken") == "")["tag"].to_list())
    injected = {r: int(delivered_tags.get(r, 0)) for r in RULES}
    n_lines = lines.height
    manifest = {
        "generator": "benzo-monitor generate",
        "arguments": {
            "seed": seed,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "weekly_starts": weekly_starts,
            "format": file_format,
            "style": style,
            "other_lines": other_lines,
            "split": split,
        },
        "style": {
            "headers": list(st.headers),
            "delimiter": st.delimiter,
            "encoding": "windows-1252" if st.encoding == "cp1252" else "utf-8",
            "bom": st.bom,
            "date_format": st.date_format,
            "decimal": st.decimal,
            "line_terminator": repr(st.line_terminator)[1:-1],
            "sex": {"F": st.female, "M": st.male},
        },
        "configuration": {
            "programme_start": params.programme_start.isoformat(),
            "max_programme_days": params.max_programme_days,
            "early_delivery_working_days": params.early_delivery_working_days,
            "stabilisation_days": params.stabilisation_days,
            "interview_coefficient": params.interview_coefficient,
            "preparation_coefficient": params.preparation_coefficient,
            "key_letter_values": [[d.isoformat(), v] for d, v in params.key_letter_values],
        },
        "counts": {
            "programmes": len(sim.programmes),
            "repeat_initiations": sum(p.repeat for p in sim.programmes),
            "patients_with_programme": len({p.patient for p in sim.programmes}),
            "programme_lines": n_lines,
            "initial_lines": n_base,
            "corrections": n_corr,
            "correction_lines": 2 * n_corr,
            "unmatched_corrections": len(unmatched),
            "quantity_2_lines": int(delivered_tags.get("q2", 0)),
            "broken_lines": sum(broken_counts.values()),
            "other_lines": other_lines,
            "total_lines": n_lines + other_lines,
            "events": event_counts,
            "outcomes": dict(sorted(Counter(p.outcome for p in sim.programmes).items())),
        },
        "broken_lines": dict(sorted(broken_counts.items())),
        "breaches_injected": injected,
        "expected_compliance_flags": expected_flags,
        "notes": [
            "expected_compliance_flags: SPEC §8 counts over all events (as-of = the latest "
            "delivery date); R02 also counts the R11 events (steps before the patient's "
            "initiation) and R08 also counts the second unit of each quantity-2 line.",
            "billing_month = delivery month + 0/1/2 months, capped at the month of `end` and "
            "never before the month of `start`.",
            "broken lines are extra copies of reduction/stabilisation/follow-up lines with one "
            "defect; they are never initiation lines and the loader should reject them all.",
        ],
        "files": [{"name": name, "rows": file_rows[name]} for name, _ in groups],
        "ground_truth": truth_path.name,
    }
    manifest_path = output_dir / "manifest.json"
    manifest_path.write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return GenerateResult(
        files=files,
        ground_truth=truth_path,
        manifest=manifest_path,
        n_lines=n_lines,
        n_other_lines=other_lines,
        n_programmes=len(sim.programmes),
        file_rows=file_rows,
        broken_lines=dict(broken_counts),
        breaches_injected=injected,
        removed_stale=removed,
    )


def _ground_truth(
    sim: _Simulation, patient_ids: list[str], pharmacy_ids: list[str]
) -> pl.DataFrame:
    out: dict[str, list] = defaultdict(list)
    for p in sim.programmes:
        kinds = Counter()
        for _day, cnk, qty, _ph, _tag in p.events:
            kinds[BY_CNK[cnk].kind] += qty
        breach = (
            p.special if p.special and p.special.startswith("R") and len(p.special) == 3 else None
        )
        out["programme_no"].append(p.number)
        out["patient_id"].append(patient_ids[p.patient])
        out["pharmacy_id"].append(pharmacy_ids[p.pharmacy])
        out["start_date"].append(date.fromordinal(p.start))
        out["scheme"].append(p.scheme)
        out["capsules_per_step"].append(p.step_days)
        out["n_reduction_steps"].append(kinds["reduction"])
        out["n_stabilisation_steps"].append(kinds["stabilisation"])
        out["has_follow_up"].append(kinds["follow_up"] > 0)
        out["outcome"].append(p.outcome)
        out["is_repeat_initiation"].append(p.repeat)
        out["last_delivery_date"].append(date.fromordinal(p.events[-1][0]))
        out["breach"].append("R01" if p.repeat else breach)
    return pl.DataFrame(out)
