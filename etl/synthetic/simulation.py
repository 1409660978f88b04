"""The simulation of the programmes: starts, schemes, steps, follow-up interviews, outcomes,
and the scenarios the decree's rules are about (SPEC v2 §5 and §8, R01-R15).

A programme is drawn with the pilot's mix (`calibration`), then its events are placed on
Belgian working days: a step is delivered on time, a little early or sometimes late, measured
from the end of the previous step as SPEC §8 defines it (early collection carried forward), and
a programme whose tapering would run past the maximum duration is drawn again with fewer late
steps. A few programmes, each with one scenario, break a rule on purpose or sit on one of its
boundaries (`SCENARIOS`); patients are made minors or exactly 18 by birth year.

Each simulated programme is one programme as SPEC §5 reads it: a repeat programme starts after
the previous one completed or stopped, and every other initiation falls while one runs.
Events are `SimEvent`s; their tag names the flags the scenario put on the line ("+" between
two), or "q2" for a reduction line of quantity 2.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import numpy as np

from etl.base.codes import (
    BY_CNK,
    FOLLOW_UP_CNK,
    INITIATION_CNK_BY_SCHEME,
    REDUCTION_CNK_BY_CAPSULES,
    STABILISATION_CNK,
)
from etl.synthetic.calibration import (
    BREACH_RATE,
    COMPLETION_RATE,
    EARLIEST_DATE,
    FOLLOW_UP_P_COMPLETED,
    FOLLOW_UP_P_STOPPED,
    GRACE_EDGE_SHARE,
    KIND_ORDER,
    N_PARTICIPATING,
    N_PRESCRIBERS,
    QTY2_RATE,
    SATURDAY_WEIGHT,
    SCHEME_COUNTS,
    STAB_P,
    STEP_DAYS_P,
    UNKNOWN_PRESCRIBER_P,
    Calendar,
    Params,
)
from etl.synthetic.population import hex_ids, pharmacies

UNKNOWN = -1  # a prescriber (or any index) the line leaves empty

# what each scenario puts in a programme (the ground truth's `scenario` column)
SCENARIOS = {
    "R03": "one reduction step more than the scheme",
    "R04": "three stabilisation steps",
    "R05": "two follow-up interviews",
    "R06": "one step at another pharmacy",
    "R08": "one step collected 5 to 8 working days early",
    "R09": "two stabilisation steps in a row",
    "R10": "a stabilisation step before any reduction step",
    "q2": "one reduction line of quantity 2",
    "double_initiation": "the initiation billed with quantity 2",
    "two_schemes_same_day": "the 5-step and the 10-step initiations billed on the start date",
    "repeat_initiation": "the same initiation billed again on the day of a later step",
    "repeat_initiation_scheme_change": "another scheme's initiation billed on a later step's day",
    "repeat_initiation_on_completion_day": "an initiation billed on the day of the last step",
    "reinitiation_at_grace_limit": "after a stop, an initiation on covered_until + grace_days",
    "early_collection": "10-capsule steps, each collected 7 days after the previous one",
    "coverage_past_360_days": "the last step ends on or after day 360 from the first step",
    "follow_up_after_completion": "the follow-up interview after the last step",
    "prescriber_change": "steps prescribed by another physician from one step on",
    "repeated_after_stop": "a patient's programme that stopped, followed by a repeat programme",
    "repeated_after_completion": "a completed programme, followed by a repeat programme",
    "R11": "the patient had a step before programme_start (unassigned), then this programme",
}


class SimEvent(NamedTuple):
    """One billed line of a programme before billing: a day ordinal, a CNK, a quantity, a
    pharmacy and prescriber index (prescriber UNKNOWN: left empty) and the flags' tag."""

    day: int
    cnk: str
    qty: int
    pharmacy: int
    tag: str
    prescriber: int


def _cdf(weights: list[float]) -> list[float]:
    total = sum(weights)
    cdf = [float(x) for x in np.cumsum(weights) / total]
    cdf[-1] = 1.0
    return cdf[:-1]  # bisect over the inner bounds: the last value takes the rest


def add_tag(tag: str, rule: str) -> str:
    """A line's tag with one more flag."""
    return f"{tag}+{rule}" if tag else rule


@dataclass(slots=True)
class Programme:
    """One simulated programme: its draw (scheme, steps, outcome wished), then its events."""

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
    scenario: str | None = None  # a key of SCENARIOS
    repeat: str | None = None  # a repeat programme: "after_stop" or "after_completion"
    double_at: int = 0
    events: list[SimEvent] = field(default_factory=list)
    outcome: str = ""
    number: int = 0


@dataclass(slots=True)
class Step:
    """A reduction (R) or stabilisation (S) step as placed: day, quantity, tag, and its end
    (a reduction's step end of SPEC §8, carried forward over early collection)."""

    kind: str
    qty: int
    tag: str
    day: int = 0
    end: int = 0


class Simulation:
    """Every programme started between `start` and `end`, with the steps outside programmes
    (R02, R11) and the patients' ages; `run()` fills `programmes`, `loose`, `n_patients`,
    `age_at_first_start` and `birth_corrections`."""

    def __init__(
        self,
        rng,
        ids_rng,
        cal: Calendar,
        params: Params,
        start: date,
        end: date,
        weekly_starts: float,
    ):
        self.rng = rng
        self.cal = cal
        self.params = params
        self.start = start.toordinal()
        self.end = end.toordinal()
        self.weekly_starts = weekly_starts
        self.pharmacies = pharmacies(ids_rng)
        self.pharmacy_cdf = np.cumsum(self.pharmacies["activity"])
        self.pharmacy_cdf[-1] = 1.0
        self.prescriber_ids = hex_ids(ids_rng, N_PRESCRIBERS, "DR", 10)
        self._uniforms: list[float] = []
        schemes = list(SCHEME_COUNTS)
        self._scheme_draw = (schemes, _cdf([SCHEME_COUNTS[s] for s in schemes]))
        self._step_days_draw = (list(STEP_DAYS_P), _cdf(list(STEP_DAYS_P.values())))
        self.programmes: list[Programme] = []
        # steps outside programmes (R02, R11): patient, pharmacy, day, cnk, qty, tag, prescriber
        self.loose: list[tuple[int, int, int, str, int, str, int]] = []
        self.n_patients = 0
        # patient -> year of the first start minus the birth year (minors, and exactly 18)
        self.age_at_first_start: dict[int, int] = {}
        # programme numbers whose opening initiation line is re-billed with the birth year + 1
        self.birth_corrections: list[int] = []

    def _pick_pharmacy(self) -> int:
        return int(np.searchsorted(self.pharmacy_cdf, self.rng.random(), side="right"))

    def _uniform(self) -> float:
        """A uniform draw in [0, 1), served from a block: scalar draws of numpy are slow."""
        if not self._uniforms:
            self._uniforms = self.rng.random(4096).tolist()[::-1]
        return self._uniforms.pop()

    def _draw(self, values_cdf: tuple[list[int], list[float]]) -> int:
        values, cdf = values_cdf
        return values[bisect.bisect_right(cdf, self._uniform())]

    def _prescriber(self, usual: int) -> int:
        """The prescriber a line carries: `usual`, or now and then none."""
        return UNKNOWN if self._uniform() < UNKNOWN_PRESCRIBER_P else usual

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

    def _new_programme(self, patient: int, start: int, pharmacy: int | None = None) -> Programme:
        rng = self.rng
        scheme = self._draw(self._scheme_draw)
        step_days = self._draw(self._step_days_draw)
        completes = self._uniform() < COMPLETION_RATE
        n_red = scheme if completes else self._dropout_reductions(scheme)
        u = self._uniform()
        n_stab = 1 if u < STAB_P[0] else 2 if u < STAB_P[0] + STAB_P[1] else 0
        n_stab = min(n_stab, max(n_red - 1, 0))
        stab_after = (
            sorted(int(x) for x in rng.choice(np.arange(1, n_red), n_stab, replace=False))
            if n_stab
            else []
        )
        if completes:
            follow_up = self._uniform() < FOLLOW_UP_P_COMPLETED
        else:
            follow_up = n_red >= 2 and self._uniform() < FOLLOW_UP_P_STOPPED
        if pharmacy is None:
            pharmacy = self._pick_pharmacy()
        return Programme(
            patient=patient, pharmacy=pharmacy, prescriber=int(rng.integers(N_PRESCRIBERS)),
            start=start, scheme=scheme, step_days=step_days, n_red=n_red, completes=completes,
            stab_after=stab_after, follow_up=follow_up,
        )  # fmt: skip

    def _assign_scenarios(self, progs: list[Programme]) -> None:
        rng, end = self.rng, self.end
        n = len(progs)
        want = max(1, round(BREACH_RATE * n))
        few = max(1, want // 4)
        order = rng.permutation(n)
        taken: set[int] = set()
        max_days = self.params.max_programme_days

        def pick(kind: str, ok, count: int) -> list[Programme]:
            chosen = []
            for i in order:
                if len(chosen) >= count:
                    break
                p = progs[i]
                if i in taken or not ok(p):
                    continue
                taken.add(int(i))
                p.scenario = kind
                chosen.append(p)
            return chosen

        def fits(p: Programme, extra_steps: int = 0, extra_stabs: int = 0) -> bool:
            days = (
                (p.n_red + extra_steps) * (p.step_days + 2)
                + (len(p.stab_after) + extra_stabs) * (self.params.stabilisation_days + 2)
                + 40
            )
            return p.start + days <= end

        for p in pick("R03", lambda p: p.completes and p.step_days <= 20 and fits(p, 1), want):
            p.n_red = p.scheme + 1
            p.stab_after = []
            p.follow_up = False  # a follow-up on the extra step would come after completion
        for p in pick("R04", lambda p: p.completes and p.step_days <= 20 and fits(p, 0, 3), want):
            p.stab_after = sorted(
                int(x) for x in rng.choice(np.arange(1, p.n_red), 3, replace=False)
            )
        for p in pick("R05", lambda p: p.completes and fits(p), want):
            p.follow_up = True
        pick("R06", lambda p: p.n_red >= 2 and fits(p), want)
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
        pick("double_initiation", lambda p: True, want)
        pick("two_schemes_same_day", lambda p: p.scheme == 10, want)
        pick("repeat_initiation", lambda p: p.n_red >= 2 and fits(p), want)
        pick("repeat_initiation_scheme_change", lambda p: p.n_red >= 2 and fits(p), want)
        pick("repeat_initiation_on_completion_day", lambda p: p.completes and fits(p), few)
        for p in pick(
            "early_collection", lambda p: p.n_red >= 3 and p.step_days == 10 and fits(p), few
        ):
            p.stab_after = []
        for p in pick(
            "coverage_past_360_days",
            lambda p: p.completes and p.scheme == 10 and p.step_days == 30
            and p.start + max_days + 60 <= end,
            want,
        ):  # fmt: skip
            p.follow_up = False
        for p in pick("follow_up_after_completion", lambda p: p.completes and fits(p, 0, 2), want):
            p.follow_up = False
        pick("prescriber_change", lambda p: p.n_red >= 2 and fits(p), want)

    def _steps(self, p: Programme) -> list[Step]:
        steps: list[Step] = []
        n_stab = 0
        if p.scenario == "R10":
            steps.append(Step("S", 1, "R10"))
            n_stab = 1
        u = 1
        while u <= p.n_red:
            qty = 2 if u == p.double_at else 1
            tag = "q2" if qty == 2 else ""
            if p.scenario == "R03" and u == p.scheme + 1:
                tag = "R03"
            steps.append(Step("R", qty, tag))
            last = u + qty - 1
            for _ in range(p.stab_after.count(last)):
                n_stab += 1
                tag = ""
                if steps[-1].kind == "S":
                    tag = "R09"
                elif n_stab == 3:
                    tag = "R04"
                steps.append(Step("S", 1, tag))
            u += qty
        return steps

    def _schedule(self, p: Programme) -> None:
        """Place the programme's events; when the tapering would run past the maximum duration
        (a step ending after day max_programme_days from the first step), draw them again
        without late steps, then without stabilisations."""
        limit = self.params.max_programme_days - 6  # days after the first step, a margin kept
        for attempt in range(3):
            if attempt == 2 and p.scenario not in ("R04", "R09"):
                p.stab_after = []
            events, steps = self._events(p, late_ok=attempt == 0)
            if p.scenario == "coverage_past_360_days" or not steps:
                break
            d1 = next((s.day for s in steps if s.kind == "R"), steps[0].day)
            if max(s.end if s.kind == "R" else s.day for s in steps) <= d1 + limit:
                break
        events.extend(self._scenario_events(p, steps))
        planned_last = max(e.day for e in events)
        p.events = sorted(
            (e for e in events if e.day <= self.end),
            key=lambda e: (e.day, KIND_ORDER[BY_CNK[e.cnk].kind]),
        )
        n_red = sum(e.qty for e in p.events if BY_CNK[e.cnk].kind == "reduction")
        if n_red >= p.scheme:
            p.outcome = "completed"
        elif not p.completes and planned_last <= self.end:
            p.outcome = "stopped"
        else:
            p.outcome = "in_progress"

    def _initiations(self, p: Programme) -> list[SimEvent]:
        """The initiation lines on the start date (the first one opens the programme)."""
        prescriber = self._prescriber(p.prescriber)
        cnk = INITIATION_CNK_BY_SCHEME[p.scheme]
        if p.scenario == "two_schemes_same_day":
            return [
                SimEvent(p.start, INITIATION_CNK_BY_SCHEME[5], 1, p.pharmacy, "R13", prescriber),
                SimEvent(p.start, cnk, 1, p.pharmacy, "R01", prescriber),
            ]
        if p.scenario == "double_initiation":
            return [SimEvent(p.start, cnk, 2, p.pharmacy, "R01", prescriber)]
        tag = "R01" if p.repeat else ""
        return [SimEvent(p.start, cnk, 1, p.pharmacy, tag, prescriber)]

    def _events(self, p: Programme, late_ok: bool) -> tuple[list[SimEvent], list[Step]]:
        """One draw of the programme's events (initiation, steps, follow-up interviews), and
        its steps as placed."""
        rng, cal, params = self.rng, self.cal, self.params
        red_cnk = REDUCTION_CNK_BY_CAPSULES[p.step_days]
        steps = self._steps(p)
        r08_step = r06_step = changed_from = -1
        if p.scenario == "R08":
            options = [j for j in range(1, len(steps)) if steps[j - 1].kind == "R"]
            r08_step = int(rng.choice(options))
        if p.scenario == "R06":
            options = [j for j in range(1, len(steps)) if steps[j].kind == "R"]
            r06_step = int(rng.choice(options))
        other_prescriber = p.prescriber
        if p.scenario == "prescriber_change":
            changed_from = int(rng.integers(0, len(steps)))
            other_prescriber = (p.prescriber + 1 + int(rng.integers(N_PRESCRIBERS - 1))) % (
                N_PRESCRIBERS
            )
        events = self._initiations(p)
        opening_prescriber = events[0].prescriber
        d1 = 0
        prev: Step | None = None
        for j, step in enumerate(steps):
            if prev is None:
                day = self._first_step_day(p)
            elif j == r08_step:
                day = max(cal.back(prev.end, int(rng.integers(5, 9))), prev.day + 1)
            elif p.scenario == "early_collection":
                day = max(cal.on_or_before(prev.day + 7), prev.day + 1)
            elif p.scenario == "coverage_past_360_days" and j == len(steps) - 1:
                day = max(self._past_360_day(d1, p.step_days), self._step_day(prev, False))
            else:
                day = self._step_day(prev, late_ok)
            step.day = day
            tag = step.tag
            if step.kind == "R":
                begin = max(day, prev.end + 1) if prev is not None and prev.kind == "R" else day
                step.end = begin + p.step_days * step.qty - 1
                d1 = d1 or day
            else:
                step.end = day + params.stabilisation_days - 1
            if prev is not None and prev.kind == "R":
                if day < cal.back(prev.end, params.early_delivery_working_days):
                    tag = add_tag(tag, "R08")
            if d1 and (step.end if step.kind == "R" else day) > d1 + params.max_programme_days - 1:
                tag = add_tag(tag, "R07")
            pharmacy = p.pharmacy
            if j == r06_step:
                pharmacy = (
                    p.pharmacy + 1 + int(rng.integers(N_PARTICIPATING - 1))
                ) % N_PARTICIPATING
                tag = add_tag(tag, "R06")
            prescriber = self._prescriber(
                other_prescriber if j >= changed_from >= 0 else p.prescriber
            )
            if prescriber not in (UNKNOWN, p.prescriber) and opening_prescriber != UNKNOWN:
                tag = add_tag(tag, "R15")
            cnk = red_cnk if step.kind == "R" else STABILISATION_CNK
            events.append(SimEvent(day, cnk, step.qty, pharmacy, tag, prescriber))
            prev = step
        for day, tag in self._follow_up_days(p, [s.day for s in steps]):
            events.append(
                SimEvent(day, FOLLOW_UP_CNK, 1, p.pharmacy, tag, self._prescriber(p.prescriber))
            )
        return events, steps

    def _scenario_events(self, p: Programme, steps: list[Step]) -> list[SimEvent]:
        """The initiations billed while the programme runs, and the follow-up interview after
        its last step."""
        rng, cal = self.rng, self.cal
        reductions = [s for s in steps if s.kind == "R"]
        cnk = INITIATION_CNK_BY_SCHEME[p.scheme]
        prescriber = self._prescriber(p.prescriber)
        if p.scenario in ("repeat_initiation", "repeat_initiation_scheme_change"):
            # on the day of a later reduction step: the programme runs (SPEC §5)
            day = reductions[int(rng.integers(1, len(reductions)))].day
            if p.scenario == "repeat_initiation":
                return [SimEvent(day, cnk, 1, p.pharmacy, "R01", prescriber)]
            other = int(rng.choice([s for s in INITIATION_CNK_BY_SCHEME if s != p.scheme]))
            return [
                SimEvent(day, INITIATION_CNK_BY_SCHEME[other], 1, p.pharmacy, "R01+R13",
                         prescriber)
            ]  # fmt: skip
        if p.scenario == "repeat_initiation_on_completion_day":
            # the initiation comes before the last step in the order of SPEC §4.3
            return [SimEvent(reductions[p.scheme - 1].day, cnk, 1, p.pharmacy, "R01", prescriber)]
        if p.scenario == "follow_up_after_completion":
            day = cal.on_or_after(reductions[p.scheme - 1].day + int(rng.integers(1, 46)))
            return [SimEvent(day, FOLLOW_UP_CNK, 1, p.pharmacy, "R12", prescriber)]
        return []

    def _past_360_day(self, d1: int, capsules: int) -> int:
        """The delivery day of a last step ending on day 360 from the first step (d1 + 359),
        on day 361, or up to 40 days later."""
        extra = int(self.rng.choice([0, 1, int(self.rng.integers(2, 41))], p=(0.25, 0.25, 0.5)))
        return self.cal.on_or_after(d1 + self.params.max_programme_days - capsules + extra)

    def _first_step_day(self, p: Programme) -> int:
        """Mostly the day of the initiation, else one to three working days after it."""
        if self._uniform() < 0.65:
            return p.start
        return self.cal.after(p.start, int(self.rng.integers(1, 4)))

    def _step_day(self, prev: Step, late_ok: bool) -> int:
        """The day of a step after the first: sometimes late, else on the last day of the
        previous step or up to two working days before (never earlier than R08 allows)."""
        cal = self.cal
        if late_ok and self._uniform() < 0.22:
            return cal.on_or_after(prev.end + 1 + int(7 * self._uniform()))
        u = self._uniform()
        day = cal.on_or_before(prev.end, 0 if u < 0.35 else 1 if u < 0.7 else 2)
        if prev.kind == "R":
            day = max(day, cal.back(prev.end, self.params.early_delivery_working_days))
        return max(day, prev.day + 1)

    def _follow_up_days(self, p: Programme, step_days: list[int]) -> list[tuple[int, str]]:
        """The days (and tags) of the follow-up interviews, on days of steps."""
        rng = self.rng
        if not step_days or not (p.follow_up or p.scenario == "R05"):
            return []
        n = len(step_days)
        if p.scenario == "R05":
            return [(step_days[int(rng.integers(n // 2, n - 1))], ""), (step_days[-1], "R05")]
        if p.completes and rng.random() < 0.6:
            return [(step_days[-1], "")]
        return [(step_days[int(rng.integers(n // 2, n))], "")]

    def run(self) -> None:
        """Simulate every programme, then what needs other programmes or patients: repeat
        programmes and initiations after a stop, steps outside programmes, patients' ages."""
        starts = self._start_days()
        progs = [self._new_programme(i, int(d)) for i, d in enumerate(starts)]
        self._assign_scenarios(progs)
        for p in progs:
            self._schedule(p)
        want = max(1, round(BREACH_RATE * len(progs)))
        progs.extend(self._after_a_stop(progs, want))
        progs.extend(self._after_a_completion(progs, want))
        self.n_patients = self._steps_without_initiation(want, next_patient=len(starts))
        self._steps_before_programme_start(progs, want)
        progs.sort(key=lambda p: (p.start, p.patient, p.repeat is not None))
        for number, p in enumerate(progs, 1):
            p.number = number
        self.programmes = progs
        self._ages(progs, want)

    def _covered_until(self, p: Programme) -> int:
        """SPEC §5 coverage of the programme's reduction and stabilisation events (its start
        when it has none)."""
        covered = None
        for e in p.events:
            kind = BY_CNK[e.cnk].kind
            if kind not in ("reduction", "stabilisation"):
                continue
            duration = BY_CNK[e.cnk].capsules if kind == "reduction" else None
            duration = duration or self.params.stabilisation_days
            for _ in range(e.qty):
                begin = e.day if covered is None else max(e.day, covered + 1)
                covered = begin + duration - 1
        return p.start if covered is None else covered

    def _repeat(self, p: Programme, day: int, kind: str) -> Programme:
        """A repeat programme of p's patient starting on `day`, mostly at the same pharmacy."""
        pharmacy = p.pharmacy if self.rng.random() < 0.8 else None
        q = self._new_programme(p.patient, day, pharmacy)
        q.repeat = kind
        q.prescriber = p.prescriber
        self._schedule(q)
        return q

    def _after_a_stop(self, progs: list[Programme], want: int) -> list[Programme]:
        """R01 after a stop: repeat programmes from the day after the grace limit (some on that
        very day), and initiations on the grace limit itself, which open nothing (SPEC §5)."""
        rng, cal, grace = self.rng, self.cal, self.params.grace_days
        edges = max(1, round(want * GRACE_EDGE_SHARE))
        repeats: list[Programme] = []
        at_limit = 0
        for i in rng.permutation(len(progs)):
            if len(repeats) >= want and at_limit >= edges:
                break
            p = progs[i]
            if p.scenario or p.repeat or p.outcome != "stopped":
                continue
            limit = self._covered_until(p) + grace  # the last day it still runs
            if at_limit < edges and limit <= self.end and cal.is_working(limit):
                p.events.append(SimEvent(limit, INITIATION_CNK_BY_SCHEME[p.scheme], 1,
                                         p.pharmacy, "R01", self._prescriber(p.prescriber)))  # fmt: skip
                p.scenario = "reinitiation_at_grace_limit"
                at_limit += 1
                continue
            if len(repeats) >= want or limit + 60 > self.end:
                continue
            if len(repeats) < edges:
                if not cal.is_working(limit + 1):
                    continue
                day = limit + 1
            else:
                day = cal.on_or_after(limit + 1 + int(rng.integers(0, min(170, self.end - limit))))
            if day + 30 > self.end:
                continue
            repeats.append(self._repeat(p, day, "after_stop"))
            p.scenario = "repeated_after_stop"
        return repeats

    def _after_a_completion(self, progs: list[Programme], want: int) -> list[Programme]:
        """R01 after a completion: repeat programmes from the day after the completion date
        (some on that very day)."""
        rng, cal = self.rng, self.cal
        edges = max(1, round(want * GRACE_EDGE_SHARE))
        repeats: list[Programme] = []
        for i in rng.permutation(len(progs)):
            if len(repeats) >= want:
                break
            p = progs[i]
            if p.scenario or p.repeat or p.outcome != "completed":
                continue
            completion = [e.day for e in p.events if BY_CNK[e.cnk].kind == "reduction"][-1]
            if completion + 60 > self.end:
                continue
            if len(repeats) < edges:
                if not cal.is_working(completion + 1):
                    continue
                day = completion + 1
            else:
                gap = int(rng.integers(1, min(200, self.end - completion - 30)))
                day = cal.on_or_after(completion + gap)
            repeats.append(self._repeat(p, day, "after_completion"))
            p.scenario = "repeated_after_completion"
        return repeats

    def _ages(self, progs: list[Programme], want: int) -> None:
        """Minors (14 to 17 by birth year at their first start), patients exactly 18, and a few
        of those whose initiation line is re-billed a year younger: R14 on the opening
        initiation of each programme of a patient under 18 by birth year."""
        rng = self.rng
        first: dict[int, Programme] = {}
        by_patient: dict[int, list[Programme]] = {}
        for p in progs:
            first.setdefault(p.patient, p)
            by_patient.setdefault(p.patient, []).append(p)
        candidates = list(first.values())
        chosen = rng.choice(len(candidates), min(2 * want, len(candidates)), replace=False)
        corrections = max(1, want // 10)
        for k, j in enumerate(chosen.tolist()):
            p = candidates[j]
            age = int(rng.choice([14, 15, 16, 17, 17, 17])) if k < want else 18
            self.age_at_first_start[p.patient] = age
            birth = date.fromordinal(p.start).year - age
            corrected = age == 18 and corrections > 0 and p.events[0].qty == 1
            if corrected:
                corrections -= 1
                self.birth_corrections.append(p.number)
            for q in by_patient[p.patient]:
                # the re-billed line of the first opening initiation carries the birth year + 1
                line_birth = birth + 1 if corrected and q is p else birth
                if date.fromordinal(q.start).year - line_birth < 18:
                    opening = q.events[0]
                    q.events[0] = opening._replace(tag=add_tag(opening.tag, "R14"))

    def _steps_without_initiation(self, want: int, next_patient: int) -> int:
        """R02: new patients with steps but no initiation; returns the next patient number."""
        rng, cal = self.rng, self.cal
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
                    (next_patient, pharmacy, day, REDUCTION_CNK_BY_CAPSULES[step_days], 1, "R02",
                     prescriber)
                )  # fmt: skip
                day = cal.on_or_before(day + step_days - 1, int(rng.integers(0, 3)))
            next_patient += 1
        return next_patient

    def _steps_before_programme_start(self, progs: list[Programme], want: int) -> None:
        """R11: a step delivered before programme_start to a patient who initiates later."""
        rng, cal = self.rng, self.cal
        ps = self.params.programme_start.toordinal()
        if self.start < ps or ps - 31 < EARLIEST_DATE.toordinal():
            return
        plain = [p for p in progs if not p.scenario and not p.repeat]
        plain.sort(key=lambda p: p.start)
        pool = plain[: max(want * 10, 20)]
        for j in rng.choice(len(pool), min(want, len(pool)), replace=False) if pool else []:
            p = pool[int(j)]
            day = cal.on_or_before(ps - 1 - int(rng.integers(0, 25)))
            p.scenario = "R11"
            self.loose.append(
                (p.patient, p.pharmacy, day, REDUCTION_CNK_BY_CAPSULES[p.step_days], 1, "R11",
                 p.prescriber)
            )  # fmt: skip
