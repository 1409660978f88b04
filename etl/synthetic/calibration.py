"""What the synthetic data is calibrated on: the pilot's public figures (SPEC §13 and the brief),
the decree's parameters (from the configuration) and Belgian working days.

Every figure the simulation draws from lives here, so that a change of calibration is a change
of this module only.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import holidays
import numpy as np

from etl.base.codes import BY_CNK

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
# billing month = delivery month + 0, 1, 2, 3: most lines in the delivery month, a share one and
# two months later, a few three months later; a month is about 55 % known at the end of its
# delivery month, 85 % a month later, 95 % two months later (docs/methodology.md, §15 notes)
LAG_P = (0.55, 0.30, 0.10, 0.05)
BREACH_RATE = 0.005  # share of programmes per scenario (at least 1 when feasible)
GRACE_EDGE_SHARE = 0.1  # of the repeat programmes, share starting on the first day allowed
UNKNOWN_PRESCRIBER_P = 0.01  # lines whose prescriber is left empty
QTY2_RATE = 0.002
CORRECTION_RATE = 0.01
UNMATCHED_PER_YEAR = 5
BROKEN_EVERY = 20000
MIN_BROKEN = 4
BRUSSELS_POSTCODES = (1000, 1020, 1030, 1040, 1050, 1060, 1070, 1080, 1081, 1082, 1083, 1090,
                      1120, 1130, 1140, 1150, 1160, 1170, 1180, 1190, 1200, 1210)  # fmt: skip
REGION_P = (0.106, 0.579, 0.315)  # Brussels, Flanders, Wallonia (population shares)

# --- the SPEC's vocabulary and dates ----------------------------------------------------------

EARLIEST_DATE = date(2020, 1, 1)  # the loader rejects older dates
RULES = tuple(f"R{i:02d}" for i in range(1, 16))  # SPEC v2 §8 on programme events
KIND_ORDER = {"initiation": 0, "reduction": 1, "stabilisation": 2, "follow_up": 3}
EPOCH = date(1970, 1, 1).toordinal()  # day ordinal of polars' date 0


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    """The decree's parameters the simulation and the reference reading use (SPEC §5, §8)."""

    programme_start: date = date(2023, 2, 1)
    grace_days: int = 30
    max_programme_days: int = 360
    early_delivery_working_days: int = 3
    stabilisation_days: int = 30
    interview_coefficient: float = 10.47
    preparation_coefficient: float = 7.08
    key_letter_values: tuple[tuple[date, float], ...] = ((date(2023, 1, 1), 2.2193),)

    @classmethod
    def from_config(cls, config) -> Params:
        """The parameters of a loaded configuration, or the defaults when `config` is None."""
        if config is None:
            return cls()
        return cls(
            programme_start=config.programme_start,
            grace_days=config.grace_days,
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
        """Whether the day (an ordinal inside the calendar) is a working day."""
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
        """The latest working day on or before `day`, or the k-th working day before that one."""
        return self.days[bisect.bisect_right(self.days, day) - 1 - k]

    def on_or_after(self, day: int) -> int:
        """The first working day on or after `day`."""
        return self.days[bisect.bisect_left(self.days, day)]


def month_index(day_ordinal: int) -> int:
    """A day ordinal's month as year * 12 + month - 1 (how billing months are counted)."""
    d = date.fromordinal(day_ordinal)
    return d.year * 12 + d.month - 1
