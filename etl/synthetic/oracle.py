"""The reference reading of SPEC v2 §4-§8, behind the generator's manifest and the cross-checks.

`read_lines` turns billing lines into events (§4) and walks each patient's events into
programmes (§5: opening, repeat initiations, scheme, coverage, completion, stop) and flags
(§8, R01-R15); `reference_compliance`, `reference_state_of_play` (§6) and `reference_cohorts`
(§7) count from that reading. It is written from the SPEC alone, in plain Python, and never
from the warehouse's SQL, so that the two can be checked against each other
(tests/test_crosscheck.py). `ground_truth` says what each simulated programme was drawn to be.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from etl.base.codes import BY_CNK, PROGRAMME_CNKS
from etl.synthetic.calibration import EPOCH, KIND_ORDER, RULES, Params
from etl.synthetic.simulation import Programme

SCHEMES = (5, 7, 10)
CAPSULES = ("10", "20", "30")  # the split of reduction steps in the state of play
# SPEC §8: the rules whose severity is "error" (the others are warnings); §6's fees_flagged_eur
ERROR_RULES = frozenset(
    ("R01", "R02", "R03", "R04", "R05", "R06", "R07", "R09", "R10", "R11", "R14")
)
STEP_KINDS = ("reduction", "stabilisation")


# --- working days (SPEC §8, read here from the SPEC's own list of holidays) -------------------


def easter_sunday(year: int) -> date:
    """Easter Sunday of a Gregorian year (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def belgian_public_holidays(year: int) -> set[date]:
    """SPEC §8: 1 Jan, Easter Monday, 1 May, Ascension, Whit Monday, 21 Jul, 15 Aug, 1 Nov,
    11 Nov, 25 Dec."""
    easter = easter_sunday(year)
    fixed = ((1, 1), (5, 1), (7, 21), (8, 15), (11, 1), (11, 11), (12, 25))
    movable = (1, 39, 50)  # Easter Monday, Ascension Thursday, Whit Monday
    return {date(year, m, d) for m, d in fixed} | {easter + dt.timedelta(days=n) for n in movable}


class WorkingDays:
    """Monday to Saturday except Belgian public holidays, over day ordinals."""

    def __init__(self) -> None:
        self._holidays: set[int] = set()
        self._years: set[int] = set()
        self._back: dict[tuple[int, int], int] = {}  # many steps end on the same days

    def is_working(self, day: int) -> bool:
        """Whether the day (an ordinal) is a working day."""
        if day % 7 == 0:  # ordinal 7 (0001-01-07) is a Sunday
            return False
        year = date.fromordinal(day).year
        if year not in self._years:
            self._years.add(year)
            self._holidays.update(d.toordinal() for d in belgian_public_holidays(year))
        return day not in self._holidays

    def back(self, day: int, k: int) -> int:
        """Step back one day at a time, skipping non-working days, k times (SPEC §8 R08)."""
        key = (day, k)
        if key not in self._back:
            for _ in range(k):
                day -= 1
                while not self.is_working(day):
                    day -= 1
            self._back[key] = day
        return self._back[key]


# --- events (SPEC §4) -------------------------------------------------------------------------


def _optional(lines: pl.DataFrame, name: str, dtype) -> pl.Expr:
    """An optional column as `dtype`, empty text read as missing; all missing when absent."""
    if name not in lines.columns:
        return pl.lit(None, dtype=dtype).alias(name)
    text = pl.col(name).cast(pl.String).str.strip_chars()
    text = pl.when(text == "").then(None).otherwise(text)
    return (text.cast(dtype, strict=False) if dtype != pl.String else text).alias(name)


def net_events(lines: pl.DataFrame) -> pl.DataFrame:
    """SPEC §4: one row per (patient, pharmacy, delivery date, CNK) with a positive net quantity
    (`units` events), with its kind, scheme, capsules, and the largest non-empty birth year and
    prescriber of its group of lines, in the order of §4.3.

    `lines`: patient_id, pharmacy_id, delivery_date, cnk, quantity, and optionally
    patient_birth_year and prescriber_id; lines of other CNKs are ignored.
    """
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
        .with_columns(
            pl.col("patient_id").cast(pl.String),
            pl.col("pharmacy_id").cast(pl.String),
            _optional(lines, "patient_birth_year", pl.Int64),
            _optional(lines, "prescriber_id", pl.String),
        )
        .group_by("patient_id", "pharmacy_id", "delivery_date", "cnk")
        .agg(
            pl.col("quantity").sum().alias("units"),
            pl.col("patient_birth_year").max(),
            pl.col("prescriber_id").max(),
        )
        .filter(pl.col("units") > 0)
        .join(kinds, on="cnk")
        .sort("patient_id", "delivery_date", "kind_order", "cnk", "pharmacy_id")
    )


@dataclass(slots=True, eq=False)
class Event:
    """One event (one unit of a positive net quantity), and what the reading found about it."""

    patient: str
    pharmacy: str
    day: int  # date ordinal
    cnk: str
    kind: str
    scheme: int | None
    capsules: int | None
    birth_year: int | None
    prescriber: str | None
    programme: ProgrammeReading | None = None
    step_end: int | None = None  # reductions: SPEC §8 R08 "step end"
    flags: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class ProgrammeReading:
    """A programme as SPEC §5 defines it, as of the reading's as-of date."""

    patient: str
    number: int  # 1, 2, ... per patient; above 1 a repeat programme
    start: int
    pharmacy: str
    scheme: int
    opening: Event
    events: list[Event] = field(default_factory=list)
    n_reductions: int = 0
    covered_until: int | None = None
    completion: int | None = None
    stop: int | None = None

    @property
    def status(self) -> str:
        """completed, stopped or in_progress."""
        if self.completion is not None:
            return "completed"
        return "stopped" if self.stop is not None else "in_progress"

    def add_step(self, event: Event, stabilisation_days: int) -> None:
        """Coverage and completion as a reduction or stabilisation event joins (SPEC §5)."""
        duration = event.capsules if event.kind == "reduction" else stabilisation_days
        begin = event.day
        if self.covered_until is not None:
            begin = max(begin, self.covered_until + 1)
        self.covered_until = begin + duration - 1
        if event.kind == "reduction":
            self.n_reductions += 1
            if self.n_reductions == self.scheme:
                self.completion = event.day

    def last_covered(self) -> int:
        """covered_until, or the start when no reduction or stabilisation event belongs."""
        return self.start if self.covered_until is None else self.covered_until

    def running_on(self, day: int, grace_days: int) -> bool:
        """SPEC §5: not completed before `day`, and not stopped by `day` (the stop rule applied
        with `day` as the as-of date to the events that belong so far)."""
        if self.completion is not None:
            return not self.completion < day
        return not day > self.last_covered() + grace_days


@dataclass
class Reading:
    """Everything the reference reading found, as of `as_of`."""

    as_of: date | None
    events: list[Event]
    programmes: list[ProgrammeReading]
    params: Params

    def counts(self) -> dict[str, int]:
        """Flagged events per rule, R01-R15."""
        counts = dict.fromkeys(RULES, 0)
        for event in self.events:
            for rule in event.flags:
                counts[rule] += 1
        return counts


def read_lines(lines: pl.DataFrame, config=None, as_of: date | None = None) -> Reading:
    """SPEC v2 §4, §5 and §8 over billing lines (columns as `net_events` takes them).

    `as_of` defaults to the latest delivery date of the lines (the warehouse's default);
    events after it do not exist.
    """
    params = Params.from_config(config)
    programme_lines = lines.filter(pl.col("cnk").is_in(list(PROGRAMME_CNKS)))
    if as_of is None and programme_lines.height:
        as_of = programme_lines["delivery_date"].max()
    table = net_events(programme_lines)
    if as_of is not None:
        table = table.filter(pl.col("delivery_date") <= as_of)
    events: list[Event] = []
    programmes: list[ProgrammeReading] = []
    patient_events: list[Event] = []
    columns = ("patient_id", "pharmacy_id", "delivery_date", "cnk", "units", "kind", "scheme",
               "capsules", "patient_birth_year", "prescriber_id")  # fmt: skip
    days = (table["delivery_date"].cast(pl.Int32) + EPOCH).to_list()
    rows = zip(*(table[c].to_list() for c in columns), strict=True)
    for (patient, pharmacy, _, cnk, units, kind, scheme, caps, birth, presc), day in zip(
        rows, days, strict=True
    ):
        if patient_events and patient_events[0].patient != patient:
            programmes.extend(_walk(patient_events, params))
            patient_events = []
        for _ in range(units):
            event = Event(patient, pharmacy, day, cnk, kind, scheme, caps, birth, presc)
            patient_events.append(event)
            events.append(event)
    if patient_events:
        programmes.extend(_walk(patient_events, params))
    as_of_ord = as_of.toordinal() if as_of is not None else 0
    working = WorkingDays()
    first_programme = {}
    for prog in programmes:
        first_programme.setdefault(prog.patient, prog)
        _close(prog, as_of_ord, params)
        _flag_programme(prog, first_programme[prog.patient] is prog, params, working)
    start = params.programme_start.toordinal()
    for event in events:
        if event.programme is None:
            event.flags.append("R02")
        if event.day < start:
            event.flags.append("R11")
        event.flags.sort()
    return Reading(as_of, events, programmes, params)


def _walk(events: list[Event], params: Params) -> list[ProgrammeReading]:
    """SPEC §5 over one patient's events in the order of §4.3: which initiation opens a
    programme, and which programme each event belongs to."""
    programmes: list[ProgrammeReading] = []
    current: ProgrammeReading | None = None
    for event in events:
        if event.kind == "initiation":
            if current is None or not current.running_on(event.day, params.grace_days):
                current = ProgrammeReading(
                    event.patient, len(programmes) + 1, event.day, event.pharmacy, event.scheme,
                    event,
                )  # fmt: skip
                programmes.append(current)
            elif event.day == current.start:
                # the last initiation on the start date sets the scheme and the pharmacy
                current.scheme, current.pharmacy = event.scheme, event.pharmacy
        elif current is None:
            continue  # unassigned (R02)
        elif event.kind in STEP_KINDS:
            current.add_step(event, params.stabilisation_days)
        event.programme = current
        current.events.append(event)
    return programmes


def _close(prog: ProgrammeReading, as_of: int, params: Params) -> None:
    """SPEC §5: stopped when not completed and as-of > covered_until (or start) + grace_days."""
    if prog.completion is None and as_of > prog.last_covered() + params.grace_days:
        prog.stop = prog.last_covered()


def _flag_programme(
    prog: ProgrammeReading, is_first: bool, params: Params, working: WorkingDays
) -> None:
    """SPEC §8 R01, R03-R10 and R12-R15 on the events of one programme."""
    opening = prog.opening
    n_red = n_stab = n_follow = 0
    first_reduction: int | None = None
    previous: Event | None = None  # the previous reduction or stabilisation event
    for event in prog.events:
        flags = event.flags
        if event.pharmacy != prog.pharmacy:
            flags.append("R06")
        if event.kind == "initiation":
            if not (is_first and event is opening):
                flags.append("R01")
            if event.scheme != prog.scheme:
                flags.append("R13")
            if (
                event is opening
                and event.birth_year is not None
                and date.fromordinal(event.day).year - event.birth_year < 18
            ):
                flags.append("R14")
            continue
        if event.kind == "follow_up":
            n_follow += 1
            if n_follow > 1:
                flags.append("R05")
            if prog.completion is not None and event.day > prog.completion:
                flags.append("R12")
            continue
        # a reduction or stabilisation event
        if previous is not None and previous.kind == "reduction":
            earliest = working.back(previous.step_end, params.early_delivery_working_days)
            if event.day < earliest:
                flags.append("R08")
        if (
            event.prescriber is not None
            and opening.prescriber is not None
            and event.prescriber != opening.prescriber
        ):
            flags.append("R15")
        if event.kind == "reduction":
            n_red += 1
            if first_reduction is None:
                first_reduction = event.day
            begin = event.day
            if previous is not None and previous.kind == "reduction":
                begin = max(begin, previous.step_end + 1)
            event.step_end = begin + event.capsules - 1
            if n_red > prog.scheme:
                flags.append("R03")
            if event.step_end > first_reduction + params.max_programme_days - 1:
                flags.append("R07")
        else:
            n_stab += 1
            if n_stab > 2:
                flags.append("R04")
            if previous is not None and previous.kind == "stabilisation":
                flags.append("R09")
            if n_red == 0:
                flags.append("R10")
            if (
                first_reduction is not None
                and event.day > first_reduction + params.max_programme_days - 1
            ):
                flags.append("R07")
        previous = event


def reference_compliance(lines: pl.DataFrame, config=None, as_of: date | None = None) -> dict:
    """Flagged events per rule of SPEC v2 §8 (R01-R15) over the events of `lines` up to
    `as_of` (default: their latest delivery date)."""
    return read_lines(lines, config, as_of).counts()


# --- the monthly state of play (SPEC §6) and the cohorts (SPEC §7) ------------------------------


def _month_bounds(month: str) -> tuple[int, int]:
    year, mon = (int(x) for x in month.split("-"))
    first = date(year, mon, 1)
    following = date(year + mon // 12, mon % 12 + 1, 1)
    return first.toordinal(), following.toordinal() - 1


def _euros(cents: int) -> float:
    return round(cents / 100, 2)


def reference_state_of_play(reading: Reading, month: str, provisional_days: int = 60) -> dict:
    """SPEC §6 for `month` (YYYY-MM) as of the reading's as-of date: per scheme and total (with
    the split of reduction steps by capsules), the unassigned events apart, and whether the
    month is provisional (exact figures)."""
    params = reading.params
    first, last = _month_bounds(month)
    as_of = reading.as_of.toordinal()
    end = min(last, as_of)
    metrics = (
        "patients_initiated", "patients_initiated_repeat", "initiations_billed",
        "patients_initiated_cumulative", "active_programmes_end_of_month",
        "reduction_steps_delivered", "stabilisation_steps_delivered", "follow_up_interviews",
        "programmes_completed", "programmes_stopped", "fees_estimated_eur", "fees_flagged_eur",
    )  # fmt: skip
    blocks = {s: dict.fromkeys(metrics, 0) for s in SCHEMES}
    for block in blocks.values():
        block["reduction_steps_by_capsules"] = dict.fromkeys(CAPSULES, 0)
    initiated: dict[int, set] = defaultdict(set)
    initiated_repeat: dict[int, set] = defaultdict(set)
    cumulative: dict[int, set] = defaultdict(set)
    for prog in reading.programmes:
        block = blocks[prog.scheme]
        if first <= prog.start <= last:
            initiated[prog.scheme].add(prog.patient)
            if prog.number > 1:
                initiated_repeat[prog.scheme].add(prog.patient)
        if prog.number == 1 and prog.start <= end:
            cumulative[prog.scheme].add(prog.patient)
        if (
            prog.start <= end
            and not (prog.completion is not None and prog.completion <= end)
            and not (prog.stop is not None and prog.stop <= end)
        ):
            block["active_programmes_end_of_month"] += 1
        if prog.completion is not None and first <= prog.completion <= last:
            block["programmes_completed"] += 1
        if prog.stop is not None and first <= prog.stop <= last:
            block["programmes_stopped"] += 1
    cents = {s: [0, 0] for s in SCHEMES}
    unassigned: Counter = Counter()
    unassigned_cents = 0
    counted = {
        "initiation": "initiations_billed",
        "reduction": "reduction_steps_delivered",
        "stabilisation": "stabilisation_steps_delivered",
        "follow_up": "follow_up_interviews",
    }
    for event in reading.events:
        if not first <= event.day <= last:
            continue
        fee = params.fee_cents(event.cnk, event.day)
        prog = event.programme
        if prog is None:
            unassigned[counted[event.kind]] += 1
            if event.kind == "reduction":
                unassigned[str(event.capsules)] += 1
            unassigned_cents += fee
            continue
        blocks[prog.scheme][counted[event.kind]] += 1
        if event.kind == "reduction":
            blocks[prog.scheme]["reduction_steps_by_capsules"][str(event.capsules)] += 1
        cents[prog.scheme][0] += fee
        if prog.number > 1 or any(rule in ERROR_RULES for rule in event.flags):
            cents[prog.scheme][1] += fee
    for s in SCHEMES:
        blocks[s]["patients_initiated"] = len(initiated[s])
        blocks[s]["patients_initiated_repeat"] = len(initiated_repeat[s])
        blocks[s]["patients_initiated_cumulative"] = len(cumulative[s])
        blocks[s]["fees_estimated_eur"] = _euros(cents[s][0])
        blocks[s]["fees_flagged_eur"] = _euros(cents[s][1])
    total = {m: sum(blocks[s][m] for s in SCHEMES) for m in metrics}
    total["reduction_steps_by_capsules"] = {
        c: sum(blocks[s]["reduction_steps_by_capsules"][c] for s in SCHEMES) for c in CAPSULES
    }
    total["fees_estimated_eur"] = _euros(sum(c[0] for c in cents.values()))
    total["fees_flagged_eur"] = _euros(sum(c[1] for c in cents.values()))
    schemes = {str(s): blocks[s] for s in SCHEMES} | {"total": total}
    return {
        "month": month,
        "as_of": reading.as_of.isoformat(),
        "provisional": as_of < last + provisional_days,
        "schemes": schemes,
        "unassigned": {
            "reduction_steps_delivered": unassigned["reduction_steps_delivered"],
            "stabilisation_steps_delivered": unassigned["stabilisation_steps_delivered"],
            "follow_up_interviews": unassigned["follow_up_interviews"],
            "fees_estimated_eur": _euros(unassigned_cents),
            "reduction_steps_by_capsules": {c: unassigned[c] for c in CAPSULES},
        },
    }


def _rate(numerator: int, denominator: int) -> float | None:
    if not denominator:
        return None
    exact = Decimal(numerator) / Decimal(denominator)
    return float(exact.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def reference_cohorts(reading: Reading) -> list[dict]:
    """SPEC §7: one row per (start month, scheme), sorted by month then scheme (exact figures)."""
    rows: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for prog in reading.programmes:
        row = rows[(date.fromordinal(prog.start).strftime("%Y-%m"), prog.scheme)]
        row["programmes"] += 1
        row[prog.status] += 1
        kinds = {e.kind for e in prog.events}
        if "reduction" in kinds:
            row["with_reduction"] += 1
            row["with_reduction_and_stabilisation"] += "stabilisation" in kinds
        if prog.status != "in_progress":
            row["closed"] += 1
            row["closed_with_follow_up"] += "follow_up" in kinds
    out = []
    for (month, scheme), row in sorted(rows.items()):
        out.append(
            {
                "initiation_month": month,
                "scheme": str(scheme),
                "programmes": row["programmes"],
                "completed": row["completed"],
                "stopped": row["stopped"],
                "in_progress": row["in_progress"],
                "completion_rate": _rate(row["completed"], row["completed"] + row["stopped"]),
                "stabilisation_rate": _rate(
                    row["with_reduction_and_stabilisation"], row["with_reduction"]
                ),
                "follow_up_rate": _rate(row["closed_with_follow_up"], row["closed"]),
            }
        )
    return out


# --- what the simulation drew ---------------------------------------------------------------


def ground_truth(
    programmes: list[Programme], patient_ids: list[str], pharmacy_ids: list[str],
    birth_years,
) -> pl.DataFrame:  # fmt: skip
    """One row per simulated programme: what it was drawn to be and what it delivered."""
    out: dict[str, list] = defaultdict(list)
    for p in programmes:
        kinds = Counter()
        for event in p.events:
            kinds[BY_CNK[event.cnk].kind] += event.qty
        out["programme_no"].append(p.number)
        out["patient_id"].append(patient_ids[p.patient])
        out["patient_birth_year"].append(int(birth_years[p.patient]))
        out["pharmacy_id"].append(pharmacy_ids[p.pharmacy])
        out["start_date"].append(date.fromordinal(p.start))
        out["scheme"].append(p.scheme)
        out["capsules_per_step"].append(p.step_days)
        out["n_initiations"].append(kinds["initiation"])
        out["n_reduction_steps"].append(kinds["reduction"])
        out["n_stabilisation_steps"].append(kinds["stabilisation"])
        out["has_follow_up"].append(kinds["follow_up"] > 0)
        out["outcome"].append(p.outcome)
        out["is_repeat_programme"].append(p.repeat is not None)
        out["scenario"].append(p.scenario or "")
        out["last_delivery_date"].append(date.fromordinal(p.events[-1].day))
    return pl.DataFrame(out)


# --- BZRA deliveries around the programme (SPEC v2 §14) ----------------------------------------

BZRA_GROUPS = ("N05BA", "N05CD", "N05CF")
BZRA_HORIZONS = (90, 180, 365)


def reference_bzra(reading: Reading, bzra_lines: pl.DataFrame) -> dict:
    """SPEC §14 read on its own: R16, R17, R18 counts and, per cohort (start month, scheme),
    the BZRA-free fields of the completed programmes.

    `bzra_lines`: patient_id, pharmacy_id, delivery_date, cnk, atc (already resolved: the
    export's or the product reference's), quantity. Returns {"rules": {"R16": n, ...} (None
    each when there is no delivery), "cohorts": {(month, scheme): {field: value}}}.
    """
    as_of = reading.as_of.toordinal() if reading.as_of else 0
    # Deliveries: BZRA lines on or before the as-of date, netted per (patient, pharmacy, day,
    # CNK); a positive net is one delivery, its ATC the largest among its lines.
    nets: dict[tuple, list] = {}
    for patient, pharmacy, day, cnk, atc, quantity in zip(
        *(bzra_lines[c].to_list() for c in
          ("patient_id", "pharmacy_id", "delivery_date", "cnk", "atc", "quantity")),
        strict=True,
    ):  # fmt: skip
        if not atc or not atc.startswith(BZRA_GROUPS) or day.toordinal() > as_of:
            continue
        entry = nets.setdefault((patient, pharmacy, day.toordinal(), cnk), [0, ""])
        entry[0] += quantity
        entry[1] = max(entry[1], atc)
    deliveries = [(k[0], k[1], k[2], v[1], k[3]) for k, v in nets.items() if v[0] > 0]
    by_patient: dict[str, list[tuple[str, int, str, str]]] = defaultdict(list)
    for patient, pharmacy, day, atc, cnk in deliveries:
        by_patient[patient].append((pharmacy, day, atc, cnk))
    cohorts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    if not deliveries:
        rules = dict.fromkeys(("R16", "R17", "R18"))
        for prog in reading.programmes:
            cohorts[(date.fromordinal(prog.start).strftime("%Y-%m"), str(prog.scheme))]
        return {"rules": rules, "cohorts": _bzra_cohort_fields(cohorts)}
    first = min(d[2] for d in deliveries)
    last = max(d[2] for d in deliveries)
    carrying = {d[1] for d in deliveries}

    def inside(lo: int, hi: int) -> bool:
        return first <= lo and hi <= last

    counts = Counter()
    judged: set[tuple] = set()  # deliveries judged by R18 (in their first programme)
    for prog in sorted(reading.programmes, key=lambda p: (p.start, p.patient, p.number)):
        s, t = prog.start, prog.last_covered()
        mine = by_patient.get(prog.patient, [])
        at_carrying = prog.pharmacy in carrying
        if at_carrying and inside(s - 180, s - 1):
            counts["R16"] += not any(s - 180 <= day <= s - 1 for _, day, _, _ in mine)
        before_90 = {atc for _, day, atc, _ in mine if s - 90 <= day <= s - 1}
        if at_carrying and inside(s - 90, s - 1):
            counts["R17"] += len(before_90) >= 2
        window_end = as_of if prog.status == "in_progress" else t
        for pharmacy, day, atc, cnk in mine:
            key = (prog.patient, pharmacy, day, cnk)
            if s <= day <= window_end and key not in judged:
                judged.add(key)
                if not (pharmacy == prog.pharmacy and atc in before_90):
                    counts["R18"] += 1
        row = cohorts[(date.fromordinal(s).strftime("%Y-%m"), str(prog.scheme))]
        if prog.status != "completed":
            continue
        for n in BZRA_HORIZONS:
            if at_carrying and t + n <= as_of and inside(t + 1, t + n):
                row[f"observable_{n}"] += 1
                row[f"free_{n}"] += not any(t + 1 <= day <= t + n for _, day, _, _ in mine)
    rules = {r: counts[r] for r in ("R16", "R17", "R18")}
    return {"rules": rules, "cohorts": _bzra_cohort_fields(cohorts)}


def _bzra_cohort_fields(cohorts: dict[tuple[str, str], Counter]) -> dict:
    out = {}
    for key, row in cohorts.items():
        fields = {}
        for n in BZRA_HORIZONS:
            observable = row[f"observable_{n}"]
            fields[f"bzra_free_{n}d_observable"] = observable
            fields[f"bzra_free_{n}d"] = row[f"free_{n}"] if observable else None
            fields[f"bzra_free_{n}d_rate"] = _rate(row[f"free_{n}"], observable)
        out[key] = fields
    return out
