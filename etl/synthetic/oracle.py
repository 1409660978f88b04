"""The reference reading of the synthetic data, used by the generator's manifest and the tests.

`net_events` and `reference_compliance` read SPEC §4, §5 and §8 in plain Python, independently
of the warehouse's SQL views, so that the two can be checked against each other;
`ground_truth` says what each simulated programme was.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from datetime import date

import polars as pl

from etl.base.codes import BY_CNK, PROGRAMME_CNKS
from etl.synthetic.calibration import EARLIEST_DATE, KIND_ORDER, RULES, Calendar, Params
from etl.synthetic.simulation import Programme


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
    params = Params.from_config(config)
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


def ground_truth(
    programmes: list[Programme], patient_ids: list[str], pharmacy_ids: list[str]
) -> pl.DataFrame:
    """One row per simulated programme: what it was drawn to be and what it delivered."""
    out: dict[str, list] = defaultdict(list)
    for p in programmes:
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
