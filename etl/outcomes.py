"""Evaluation statistics (SPEC §16): outcomes over time with censoring, and funnel plots.

Beside etl/figures.py in the figures layer: marts in, the documents of `benzo-monitor outcomes`
and `benzo-monitor funnel` (and of the pages that show them) out.

- **Outcomes over time.** The cumulative incidence of completion and of stop by days since
  start, completion and stop as competing events, programmes in progress censored
  (mart_outcome_times gives each programme's time and event). The Aalen–Johansen estimator of
  scikit-survival (`sksurv.nonparametric.cumulative_incidence_competing_risks`), with Aalen's
  variance and 95 % confidence intervals on the log(−log) scale. Tied times are handled as
  they are, with no jitter, so results are deterministic: the events of one day (of both
  kinds) are counted together, and programmes censored on a day are still at risk that day.
  Beyond the last observed time a curve is only known when nobody is left censored (the
  overall survival has reached 0); otherwise the estimate there is null.
- **Funnel plots** (Spiegelhalter 2005). Per unit (pharmacy, province, region) the rate
  y = events / cases against the national value p (every case of the country, the `unknown`
  places included) with control limits p ± z·sqrt(φ·p(1−p)/n), z = 1.96 (95 %) and 3.09
  (99.8 %), the binomial's normal approximation clipped to [0, 1]; φ, the overdispersion
  factor, is the mean square of the units' z-scores winsorised at 10 % at each end, applied
  only when above 1 (and always stated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from etl.base.disclosure import Disclosure
from etl.figures import Reader, as_of_date

OUTCOME_DAYS = (90, 180, 270, 360)
OUTCOME_EVENTS = ("completion", "stop")  # coded 1 and 2 for the estimator; 0 is censored
OUTCOME_SCHEMES = ("5", "7", "10")
OUTCOMES_METHOD = (
    "Aalen-Johansen cumulative incidence, completion and stop as competing events, "
    "programmes in progress censored at min(as-of, covered_until) (scikit-survival "
    "cumulative_incidence_competing_risks); 95 % confidence intervals from Aalen's variance "
    "on the log(-log) scale; tied days handled exactly, no jitter; null beyond the last "
    "observed day while programmes remain censored"
)
OUTCOME_KEYS = (
    "scheme",
    "start_year",
    "day",
    "event",
    "cumulative_incidence",
    "lower_95",
    "upper_95",
    "at_risk",
)

FUNNEL_MEASURES = ("completion", "early_delivery")
FUNNEL_UNITS = ("pharmacy", "province", "region")
Z_95 = 1.96
Z_998 = 3.09
WINSORISE_SHARE = 0.10
FUNNEL_METHOD = (
    "Funnel plot (Spiegelhalter 2005): control limits p ± z·sqrt(φ·p(1-p)/n) around the "
    "national value p, binomial normal approximation clipped to [0, 1], z = 1.96 (95 %) and "
    "3.09 (99.8 %); φ = mean square of the units' z-scores winsorised at 10 % at each end, "
    "applied when φ > 1"
)
FUNNEL_UNIT_KEYS = (
    "unit",
    "name",
    "cases",
    "events",
    "rate",
    "z_score",
    "lower_95",
    "upper_95",
    "lower_998",
    "upper_998",
    "outside_95",
    "outside_998",
)


# --- outcomes over time (Aalen–Johansen) ----------------------------------------------------


def cumulative_incidence(
    days_since_start: Sequence[int], events: Sequence[str], days: Sequence[int] = OUTCOME_DAYS
) -> list[dict]:
    """The Aalen–Johansen cumulative incidence of completion and of stop at each of `days`.

    `days_since_start[i]` is programme i's time and `events[i]` its event: 'completion',
    'stop' or 'censored'. One dict per day and event (day order, completion first):
    {"day", "event", "cumulative_incidence", "lower_95", "upper_95", "at_risk"}, `at_risk`
    being the programmes whose time is at least `day`. Estimates are null past the last
    observed time while a censored programme remains (the curve is not known there).
    """
    times = np.asarray(days_since_start, dtype=float)
    codes = np.array([{"completion": 1, "stop": 2}.get(e, 0) for e in events], dtype=int)
    rows = []
    if times.size == 0:
        return [
            {"day": day, "event": event, "cumulative_incidence": None, "lower_95": None,
             "upper_95": None, "at_risk": 0}
            for day in days for event in OUTCOME_EVENTS
        ]  # fmt: skip
    present = [k for k in (1, 2) if (codes == k).any()]
    if not present:  # nothing happened yet: both curves are 0 while anyone is observed
        unique = np.unique(times)
        cif = np.zeros((3, unique.size))
        low = high = cif
    else:
        # Imported here: scikit-survival (scikit-learn) takes seconds to import, and only
        # the outcomes need it.
        from sksurv.nonparametric import (
            cumulative_incidence_competing_risks,
            kaplan_meier_estimator,
        )

        if len(present) == 2:
            unique, cif, ci = cumulative_incidence_competing_risks(
                codes, times, conf_level=0.95, conf_type="log-log", var_type="Aalen"
            )
        else:
            # One kind of event only (no stop yet, or no completion): no competing event, so
            # its cumulative incidence is 1 - Kaplan-Meier (log-log interval, Greenwood's
            # variance) and the other curve is 0. (The library's competing-risks function
            # needs both kinds.)
            unique, survival, km_ci = kaplan_meier_estimator(
                codes > 0, times, conf_level=0.95, conf_type="log-log"
            )
            cif = np.zeros((3, unique.size))
            ci = np.zeros((3, 2, unique.size))
            cif[present[0]] = 1 - survival
            ci[present[0]] = 1 - km_ci
        low = np.nan_to_num(np.minimum(ci[:, 0, :], ci[:, 1, :]))
        high = np.nan_to_num(np.maximum(ci[:, 0, :], ci[:, 1, :]))
    last_time = unique[-1]
    # Nobody left censored: every programme had its event, the curves are final.
    closed = (cif[1, -1] + cif[2, -1]) >= 1 - 1e-12
    for day in days:
        index = int(np.searchsorted(unique, day, side="right")) - 1
        known = day <= last_time or closed
        at_risk = int((times >= day).sum())
        for k, event in enumerate(OUTCOME_EVENTS, start=1):
            if not known:
                value = lower = upper = None
            elif index < 0:
                value = lower = upper = 0.0
            else:
                value = _fraction(cif[k, index])
                lower = _fraction(low[k, index])
                upper = _fraction(high[k, index])
            rows.append(
                {
                    "day": day,
                    "event": event,
                    "cumulative_incidence": value,
                    "lower_95": lower,
                    "upper_95": upper,
                    "at_risk": at_risk,
                }
            )
    return rows


def _fraction(value: float) -> float:
    """A fraction rounded to 4 decimals (as SPEC §7's rates), inside [0, 1]."""
    return round(min(1.0, max(0.0, float(value))), 4)


def outcome_times(reader: Reader) -> list[dict]:
    """mart_outcome_times by scheme, start date and programme."""
    return reader.rows(
        "select * from {mart_outcome_times} order by scheme, start_date, programme_id"
    )


def outcome_curves(
    times: list[dict],
    disclosure: Disclosure,
    days: Sequence[int] = OUTCOME_DAYS,
    *,
    by_year: bool = True,
) -> list[dict]:
    """The curves of `outcomes` from the rows of mart_outcome_times, at `days`: per scheme
    ("5", "7", "10"), all start years together (`start_year` None) then, with `by_year`, each
    start year; per day completion then stop. Under disclosure control `at_risk` and `programmes` are counts
    (1-4 masked) and the estimates are null when the group has fewer programmes than the
    threshold."""
    curves = []
    for scheme in OUTCOME_SCHEMES:
        rows = [r for r in times if str(r["scheme"]) == scheme]
        years = sorted({r["start_year"] for r in rows}) if by_year else []
        for year in [None, *years]:
            group = [r for r in rows if year is None or r["start_year"] == year]
            n = len(group)
            estimates = cumulative_incidence(
                [r["days_since_start"] for r in group], [r["outcome_event"] for r in group], days
            )
            for row in estimates:
                curves.append(
                    {
                        "scheme": scheme,
                        "start_year": year,
                        "day": row["day"],
                        "event": row["event"],
                        "cumulative_incidence": disclosure.rate(row["cumulative_incidence"], n),
                        "lower_95": disclosure.rate(row["lower_95"], n),
                        "upper_95": disclosure.rate(row["upper_95"], n),
                        "at_risk": disclosure.count(row["at_risk"]),
                        "programmes": disclosure.count(n),
                    }
                )
    return curves


def outcomes(reader: Reader, disclosure: Disclosure) -> dict:
    """SPEC §16: the JSON document of `benzo-monitor outcomes`.

    {"as_of", "method", "days", "curves": [{"scheme", "start_year", "day", "event",
    "cumulative_incidence", "lower_95", "upper_95", "at_risk", "programmes"}]}: the curves of
    `outcome_curves` at 90, 180, 270 and 360 days.
    """
    return {
        "as_of": as_of_date(reader).isoformat(),
        "method": OUTCOMES_METHOD,
        "days": list(OUTCOME_DAYS),
        "curves": outcome_curves(outcome_times(reader), disclosure),
    }


def outcomes_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per scheme, start year (empty: all years), day and event, after an as_of column."""
    keys = [*OUTCOME_KEYS, "programmes"]
    return ["as_of", *keys], [[doc["as_of"], *(c[k] for k in keys)] for c in doc["curves"]]


# --- funnel plots (Spiegelhalter 2005) --------------------------------------------------------


def z_score(events: int, cases: int, p: float) -> float | None:
    """(y − p) / sqrt(p(1−p)/n) with y = events / cases; None when undefined (n = 0, p 0 or 1)."""
    if cases <= 0 or not 0 < p < 1:
        return None
    return (events / cases - p) / math.sqrt(p * (1 - p) / cases)


def winsorised(values: Sequence[float], share: float = WINSORISE_SHARE) -> list[float]:
    """`values` with the floor(share·N) lowest set to the next lowest and the floor(share·N)
    highest to the next highest (Spiegelhalter 2005, section 3.2), in sorted order."""
    ordered = sorted(values)
    k = int(math.floor(share * len(ordered)))
    if k == 0:
        return ordered
    low, high = ordered[k], ordered[-k - 1]
    return [min(max(v, low), high) for v in ordered]


def overdispersion(z_scores: Sequence[float]) -> float | None:
    """φ = Σ z² / N over the z-scores winsorised at 10 % at each end (None without any)."""
    if not z_scores:
        return None
    return sum(z * z for z in winsorised(z_scores)) / len(z_scores)


def control_limits(p: float, n: int, z: float, phi: float | None = None) -> tuple[float, float]:
    """p ± z·sqrt(φ·p(1−p)/n), clipped to [0, 1]; φ used only when above 1."""
    inflation = phi if phi is not None and phi > 1 else 1.0
    half = z * math.sqrt(inflation * p * (1 - p) / n)
    return max(0.0, p - half), min(1.0, p + half)


def funnel_units(reader: Reader, measure: str, by: str) -> list[dict]:
    """mart_funnel_units of one measure and kind of unit, by unit code."""
    return reader.rows(
        "select * from {mart_funnel_units} where measure = ? and unit_type = ? order by unit_code",
        [measure, by],
    )


def funnel(reader: Reader, measure: str, by: str, disclosure: Disclosure, lang: str = "en") -> dict:
    """SPEC §16: the JSON document of `benzo-monitor funnel --measure M --by U` (see
    `funnel_document`), read from mart_funnel_units."""
    if measure not in FUNNEL_MEASURES or by not in FUNNEL_UNITS:
        raise ValueError(f"unknown funnel: {measure} by {by}")
    rows = funnel_units(reader, measure, by)
    return funnel_document(rows, measure, by, disclosure, as_of_date(reader).isoformat(), lang)


def funnel_document(
    rows: list[dict], measure: str, by: str, disclosure: Disclosure, as_of: str, lang: str = "en"
) -> dict:
    """The funnel of `rows` (mart_funnel_units of one measure and kind of unit).

    {"as_of", "measure", "by", "method", "national": {"cases", "events", "rate"}, "phi",
    "phi_applied", "units": [...], "outside_998": [unit codes], "not_shown": n}. Each unit:
    FUNNEL_UNIT_KEYS, its name in `lang` (null for a pharmacy). φ is estimated over every
    unit with a case but the `unknown` places; the `unknown` province or region counts in the
    national value and is not a unit of the plot. Under disclosure control a unit with fewer
    cases than the threshold is not shown (`not_shown` counts them) and counts 1-4 are masked.
    """
    cases = sum(r["n_cases"] for r in rows)
    events = sum(r["n_events"] for r in rows)
    p = events / cases if cases else None
    plotted = [r for r in rows if not r["is_unknown_place"] and r["n_cases"] > 0]
    z_scores = {r["unit_code"]: z_score(r["n_events"], r["n_cases"], p) for r in plotted} if p is not None else {}  # fmt: skip
    phi = overdispersion([z for z in z_scores.values() if z is not None])
    shown, hidden = [], 0
    for r in plotted:
        if disclosure.enabled and r["n_cases"] < disclosure.threshold:
            hidden += 1
            continue
        rate = r["n_events"] / r["n_cases"]
        limits = {}
        for name, z in (("95", Z_95), ("998", Z_998)):
            low, high = control_limits(p, r["n_cases"], z, phi)
            limits[f"lower_{name}"] = round(low, 4)
            limits[f"upper_{name}"] = round(high, 4)
            limits[f"outside_{name}"] = rate < low or rate > high
        z = z_scores.get(r["unit_code"])
        shown.append(
            {
                "unit": r["unit_code"],
                "name": r.get(f"unit_name_{lang}"),
                "cases": disclosure.count(r["n_cases"]),
                "events": disclosure.count(r["n_events"]),
                "rate": disclosure.rate(round(rate, 4), r["n_cases"]),
                "z_score": None if z is None else round(z, 3),
                **limits,
            }
        )
    return {
        "as_of": as_of,
        "measure": measure,
        "by": by,
        "method": FUNNEL_METHOD,
        "national": {
            "cases": disclosure.count(cases),
            "events": disclosure.count(events),
            "rate": None if p is None else disclosure.rate(round(p, 4), cases),
        },
        "phi": None if phi is None else round(phi, 4),
        "phi_applied": phi is not None and phi > 1,
        "units": shown,
        "outside_998": [u["unit"] for u in shown if u["outside_998"]],
        "not_shown": hidden,
    }


def funnel_csv_rows(doc: dict) -> tuple[list[str], list[list]]:
    """One row per unit shown, after as_of, measure, by, the national rate and φ."""
    head = ["as_of", "measure", "by", "national_rate", "phi", "phi_applied"]
    fixed = [doc["as_of"], doc["measure"], doc["by"], doc["national"]["rate"], doc["phi"],
             "true" if doc["phi_applied"] else "false"]  # fmt: skip
    return [*head, *FUNNEL_UNIT_KEYS], [
        [*fixed, *(str(u[k]).lower() if isinstance(u[k], bool) else u[k] for k in FUNNEL_UNIT_KEYS)]
        for u in doc["units"]
    ]
