"""The simulation of the programmes: starts, schemes, steps, follow-up interviews, outcomes,
and the deliberate compliance breaches (R01-R11 of SPEC §8).

A programme is drawn with the pilot's mix (`calibration`), then its events are placed on
Belgian working days: a step is delivered on time, a little early or sometimes late, and a
programme that would run past the maximum duration is drawn again with fewer late steps.
Events are (day ordinal, CNK, quantity, pharmacy index, tag), the tag naming a breach or a
quantity-2 line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

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
    KIND_ORDER,
    N_PARTICIPATING,
    N_PRESCRIBERS,
    QTY2_RATE,
    SATURDAY_WEIGHT,
    SCHEME_COUNTS,
    STAB_P,
    STEP_DAYS_P,
    Calendar,
    Params,
)
from etl.synthetic.population import hex_ids, pharmacies


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
    special: str | None = None  # R03..R10 breach, or "q2" (a quantity-2 line)
    repeat: bool = False
    double_at: int = 0
    events: list = field(default_factory=list)  # (day, cnk, qty, pharmacy, tag)
    outcome: str = ""
    number: int = 0


class Simulation:
    """Every programme started between `start` and `end`, with the steps outside programmes
    (R02, R11); `run()` fills `programmes`, `loose`, `loose_prescriber` and `n_patients`."""

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
        self.programmes: list[Programme] = []
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

    def _new_programme(self, patient: int, start: int, pharmacy: int | None = None) -> Programme:
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
        return Programme(
            patient=patient, pharmacy=pharmacy, prescriber=int(rng.integers(N_PRESCRIBERS)),
            start=start, scheme=scheme, step_days=step_days, n_red=n_red, completes=completes,
            stab_after=stab_after, follow_up=follow_up,
        )  # fmt: skip

    def _assign_specials(self, progs: list[Programme]) -> None:
        rng, end = self.rng, self.end
        n = len(progs)
        want = max(1, round(BREACH_RATE * n))
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
                p.special = kind
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

    def _steps(self, p: Programme) -> list[list]:
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

    def _schedule(self, p: Programme) -> None:
        """Place the programme's events; when they would run past the maximum duration, draw
        them again without late steps, then without stabilisations."""
        limit = p.start + self.params.max_programme_days - 5
        for attempt in range(3):
            if attempt == 2 and p.special not in ("R04", "R09"):
                p.stab_after = []
            events = self._events(p, late_ok=attempt == 0)
            if max(e[0] for e in events) <= limit:
                break
        if p.special == "R07":
            day = self.cal.on_or_after(
                p.start + self.params.max_programme_days + int(self.rng.integers(5, 40))
            )
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

    def _events(self, p: Programme, late_ok: bool) -> list[tuple]:
        """One draw of the programme's events: initiation, steps, follow-up interviews."""
        rng = self.rng
        red_cnk = REDUCTION_CNK_BY_CAPSULES[p.step_days]
        steps = self._steps(p)
        r08_step = r06_step = -1
        if p.special == "R08":
            options = [j for j in range(1, len(steps)) if steps[j - 1][0] == "R"]
            r08_step = int(rng.choice(options))
        if p.special == "R06":
            options = [j for j in range(1, len(steps)) if steps[j][0] == "R"]
            r06_step = int(rng.choice(options))
        init_tag = "R01" if p.repeat else None
        events = [(p.start, INITIATION_CNK_BY_SCHEME[p.scheme], 1, p.pharmacy, init_tag)]
        step_days: list[int] = []
        prev_day = prev_dur = 0
        prev_kind = ""
        for j, (kind, qty, tag) in enumerate(steps):
            if j == 0:
                day = self._first_step_day(p)
            elif j == r08_step:
                day = self._too_early_day(prev_day, prev_dur)
                tag = "R08"
            else:
                day = self._step_day(prev_day, prev_dur, prev_kind, late_ok)
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
            prev_dur = p.step_days * qty if kind == "R" else self.params.stabilisation_days
        for day, tag in self._follow_up_days(p, step_days):
            events.append((day, FOLLOW_UP_CNK, 1, p.pharmacy, tag))
        return events

    def _first_step_day(self, p: Programme) -> int:
        """Mostly the day of the initiation, else one to three working days after it."""
        if self.rng.random() < 0.65:
            return p.start
        return self.cal.after(p.start, int(self.rng.integers(1, 4)))

    def _step_day(self, prev_day: int, prev_dur: int, prev_kind: str, late_ok: bool) -> int:
        """The day of a step after the first: sometimes late, else on the last day of the
        previous step or up to two working days before (never earlier than R08 allows)."""
        rng, cal = self.rng, self.cal
        end_day = prev_day + prev_dur - 1
        if late_ok and rng.random() < 0.22:
            return cal.on_or_after(end_day + 1 + int(rng.integers(0, 7)))
        day = cal.on_or_before(end_day, int(rng.choice(3, p=(0.35, 0.35, 0.30))))
        if prev_kind == "R":
            day = max(day, cal.back(end_day, self.params.early_delivery_working_days))
        return max(day, prev_day + 1)

    def _too_early_day(self, prev_day: int, prev_dur: int) -> int:
        """An R08 breach: 5 to 8 working days before the end of the previous reduction step."""
        end_day = prev_day + prev_dur - 1
        return max(self.cal.back(end_day, int(self.rng.integers(5, 9))), prev_day + 1)

    def _follow_up_days(self, p: Programme, step_days: list[int]) -> list[tuple[int, str | None]]:
        """The days (and tags) of the follow-up interviews, on days of steps."""
        rng = self.rng
        if not step_days or not (p.follow_up or p.special == "R05"):
            return []
        n = len(step_days)
        if p.special == "R05":
            return [
                (step_days[int(rng.integers(n // 2, n - 1))], None),
                (step_days[-1], "R05"),
            ]
        if p.completes and rng.random() < 0.6:
            return [(step_days[-1], None)]
        return [(step_days[int(rng.integers(n // 2, n))], None)]

    def run(self) -> None:
        """Simulate every programme, then the breaches that need other programmes or patients."""
        starts = self._start_days()
        progs = [self._new_programme(i, int(d)) for i, d in enumerate(starts)]
        self._assign_specials(progs)
        for p in progs:
            self._schedule(p)
        want = max(1, round(BREACH_RATE * len(progs)))
        progs.extend(self._repeat_initiations(progs, want))
        self.n_patients = self._steps_without_initiation(want, next_patient=len(starts))
        self._steps_before_programme_start(progs, want)
        progs.sort(key=lambda p: (p.start, p.patient, p.repeat))
        for number, p in enumerate(progs, 1):
            p.number = number
        self.programmes = progs

    def _repeat_initiations(self, progs: list[Programme], want: int) -> list[Programme]:
        """R01: a patient who stopped re-initiates a new programme after the first one's last
        event."""
        rng, cal = self.rng, self.cal
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
        return repeats

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
                    (next_patient, pharmacy, day, REDUCTION_CNK_BY_CAPSULES[step_days], 1, "R02")
                )
                self.loose_prescriber.append(prescriber)
                day = cal.on_or_before(day + step_days - 1, int(rng.integers(0, 3)))
            next_patient += 1
        return next_patient

    def _steps_before_programme_start(self, progs: list[Programme], want: int) -> None:
        """R11: a step delivered before programme_start to a patient who initiates later."""
        rng, cal = self.rng, self.cal
        ps = self.params.programme_start.toordinal()
        if self.start < ps or ps - 31 < EARLIEST_DATE.toordinal():
            return
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
