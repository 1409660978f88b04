"""Disclosure control (SPEC §9): the one policy every figure leaving the organisation passes.

The publication view of the dashboard and every export (unless `--no-suppress`) apply it, in
this order:

1. **primary** — a count from 1 to threshold - 1 is masked, shown `"<5"`; a rate is null when
   its denominator is below the threshold, or its numerator, or its denominator minus its
   numerator, is from 1 to threshold - 1;
2. **complementary** — wherever parts are shown with their total (a `Line`), when exactly one
   cell of the line is masked, the smallest other non-zero part is masked too (ties: the first
   in the line's order), shown `"x"`, so that no masked count is the total minus the parts
   shown. A masked total masks nothing else: its line already has two masked cells. Tables
   whose cells sit in several lines (the 10/20/30-capsule split, by scheme and by capsules) are
   repeated until no line has exactly one masked cell;
3. **stocks over time** — `patients_initiated_cumulative` and `active_programmes_end_of_month`,
   when not masked, are rounded to the nearest multiple of 5 from their exact value (halves
   upwards, `round_to_5`), so that two months' stocks do not give a month's flows;
4. **fees** — a fee figure is null where any count it sums is masked (`FEE_COUNTS`).

`Disclosure.table` applies rules 1-3 to any table of counts described by its lines;
`state_of_play` and `cohort` apply the whole policy to the documents of SPEC §10, and `note` is
the header every suppressed output carries (`"disclosure"` in JSON, a column in CSV).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from etl.base.registry import Metric

COMPLEMENTARY_MASK = "x"
STOCK_ROUNDING = 5
# SPEC §9.3: stocks over time, rounded when shown.
STOCK_METRICS = ("patients_initiated_cumulative", "active_programmes_end_of_month")
# SPEC §9.4 with §6: the counts each fee figure of a block sums. A scheme block's fees are the
# fees of its initiation, reduction, stabilisation and follow-up events; the unassigned block
# has no initiation (an initiation opens a programme), its fees sum the other three.
FEE_COUNTS = (
    "initiations_billed",
    "reduction_steps_delivered",
    "stabilisation_steps_delivered",
    "follow_up_interviews",
)
FEE_METRICS = ("fees_estimated_eur", "fees_flagged_eur")
# SPEC §9.2: a cohort row's parts, in the row's order, and their total.
COHORT_PARTS = ("completed", "stopped", "in_progress")
COHORT_TOTAL = "programmes"
# The rules, as named in the "disclosure" header of an output (words: disclosure_rule_<name>).
RULES = ("primary", "complementary", "rounded_stocks", "fees")
SCHEMES = ("5", "7", "10")
TOTAL = "total"
SPLIT_KEY = "reduction_steps_by_capsules"
CAPSULES = ("10", "20", "30")


@dataclass(frozen=True)
class Line:
    """Parts shown with their total (total = sum of parts): cell keys, parts in display order."""

    parts: tuple[Hashable, ...]
    total: Hashable


def is_masked(value) -> bool:
    """Whether a shown count is masked ("<5" or "x")."""
    return isinstance(value, str)


def round_to_5(value: float) -> int:
    """`value` rounded to the nearest multiple of 5, a half upwards: 12.5 -> 15, 7 -> 5,
    8 -> 10. (Counts are whole numbers, so a half never occurs in a published figure.)"""
    return int(STOCK_ROUNDING * math.floor(value / STOCK_ROUNDING + 0.5))


@dataclass(frozen=True)
class Disclosure:
    """SPEC §9 at `threshold` (configuration `suppression_threshold`); `enabled` False gives the
    exact figures (the analysts' view, `--no-suppress`)."""

    threshold: int
    enabled: bool = True

    @property
    def mask(self) -> str:
        """How a count masked by the primary rule is shown: "<5" with the default threshold."""
        return f"<{self.threshold}"

    def small(self, value: int | None) -> bool:
        """Whether `value` is from 1 to threshold - 1 (the primary rule's range)."""
        return value is not None and 0 < value < self.threshold

    # --- rule 1: primary ----------------------------------------------------------------

    def count(self, value: int | None) -> int | str | None:
        """A count on its own (no total shown beside it): the mask when it is from 1 to
        threshold - 1 (rule 1)."""
        if value is None or not self.enabled:
            return value
        return self.mask if self.small(value) else value

    def rate(
        self, value: float | None, denominator: int | None, numerator: int | None = None
    ) -> float | None:
        """A rate, or None when its denominator is below the threshold, or (numerator given)
        its numerator or denominator minus numerator is from 1 to threshold - 1 (rule 1)."""
        if value is None or not self.enabled:
            return value
        if (denominator or 0) < self.threshold:
            return None
        if numerator is not None and (self.small(numerator) or self.small(denominator - numerator)):
            return None
        return value

    def stock(self, value: int | None) -> int | str | None:
        """A stock over time on its own: masked (rule 1), else rounded to 5 (rule 3)."""
        shown = self.count(value)
        if not self.enabled or shown is None or is_masked(shown):
            return shown
        return round_to_5(shown)

    def metric(self, metric: Metric, row: Mapping):
        """The value of `metric` in a mart row on its own, after rules 1 and 3 (a table with
        totals goes through `table`, `state_of_play` or `cohort`)."""
        value = row[metric.column]
        if metric.disclosure == "count":
            return self.stock(value) if metric.id in STOCK_METRICS else self.count(value)
        if metric.disclosure == "rate":
            numerator = row.get(metric.numerator_column) if metric.numerator_column else None
            return self.rate(value, row[metric.denominator_column], numerator)
        return amount(value)

    # --- rules 1-3 on a table -----------------------------------------------------------

    def table(
        self,
        cells: Mapping[Hashable, int | None],
        lines: Sequence[Line] = (),
        stocks: Sequence[Hashable] = (),
        fixed: Mapping[Hashable, int | str | None] | None = None,
    ) -> dict:
        """`cells` (key -> exact count) as shown: primary (rule 1), complementary along
        `lines` (rule 2), and the cells in `stocks` rounded to 5 when not masked (rule 3).
        `fixed` cells (key -> as already shown) take part in the lines but are never masked
        here: a table of our own beside figures SPEC §9 has already decided.

        Complementary: a line with exactly one masked cell (a part, or its total masked by
        another line) gets the smallest non-zero part not yet masked masked too, "x" (ties:
        the first in the line); with no such part, its total. Repeated until every line has
        none or at least two masked cells. Where lines share cells (the 10/20/30-capsule split
        by scheme and by capsules), a masked cell may still follow from several lines at once
        (solved exactly): the smallest non-zero part of a line through it is masked too, and
        so on until no masked cell can be worked out. Lines that share no cell (every table
        SPEC §9 names) never need this step.
        """
        if not self.enabled:
            return dict(cells)
        fixed = dict(fixed or {})
        shown = {key: fixed.get(key, self.count(value)) for key, value in cells.items()}
        while True:
            changed = True
            while changed:
                changed = False
                for line in lines:
                    masked = [k for k in (*line.parts, line.total) if is_masked(shown[k])]
                    if len(masked) == 1 and _mask_another(
                        line.parts, line.total, cells, shown, fixed
                    ):
                        changed = True
            # Lines that share cells (a table with totals both ways) can still give a masked
            # cell by combining them; mask one more cell beside it until none is given.
            fixed = _recoverable(shown, lines)
            if not fixed:
                break
            masked_now = {k for k, v in shown.items() if is_masked(v)}
            for near in (fixed, masked_now):  # beside the cell given, else beside any mask
                around = [ln for ln in lines if near & {*ln.parts, ln.total}]
                parts = tuple(dict.fromkeys(k for ln in around for k in ln.parts))
                totals = tuple(dict.fromkeys(ln.total for ln in around))
                if _mask_another(parts, None, cells, shown, fixed) or _mask_another(
                    totals, None, cells, shown, fixed
                ):
                    break
            else:
                break  # every cell of these lines is masked or 0: nothing more to mask
        for key in stocks:
            if key not in fixed and shown[key] is not None and not is_masked(shown[key]):
                shown[key] = round_to_5(shown[key])
        return shown

    # --- the documents of SPEC §10 ------------------------------------------------------

    def state_of_play(
        self,
        blocks: Mapping[str, Mapping],
        counts: Sequence[str],
        amounts: Sequence[str],
    ) -> dict[str, dict]:
        """The state of play's blocks ("5", "7", "10", "total", "unassigned": each a dict of
        exact figures, the 10/20/30 split under SPLIT_KEY) after the whole policy.

        Lines: each count in `counts` across 5, 7, 10 -> total (SPEC §9 exactly); then the
        split by capsules, on its own (across 5, 7, 10 -> total, and 10 + 20 + 30 -> the
        reduction steps as shown), never changing a figure of §6. The unassigned block is
        outside `total`. Stocks (STOCK_METRICS) rounded; each fee in
        `amounts` null when one of the block's FEE_COUNTS is masked."""
        # The figures of SPEC §6, as §9 says: each count across 5, 7, 10 -> total.
        cells: dict[tuple, int | None] = {}
        for block, figures in blocks.items():
            for key in counts:
                if key in figures:
                    cells[(block, key)] = figures[key]
        lines = []
        if TOTAL in blocks:
            for key in counts:
                lines.append(Line(tuple((s, key) for s in SCHEMES), (TOTAL, key)))
        stocks = [k for k in cells if k[1] in STOCK_METRICS]
        shown = self.table(cells, lines, stocks)
        # The 10/20/30 split (an extra of ours) is protected on its own, beside the figures
        # above, which it may not change: its cells across 5, 7, 10 -> total, and in each
        # block 10 + 20 + 30 -> the reduction steps as shown.
        split: dict[tuple, int | None] = {}
        for block, figures in blocks.items():
            for capsules in CAPSULES:
                split[(block, capsules)] = figures[SPLIT_KEY][capsules]
        fixed = {k: v for k, v in shown.items() if k[1] == "reduction_steps_delivered"}
        split_lines = []
        if TOTAL in blocks:
            for capsules in CAPSULES:
                split_lines.append(Line(tuple((s, capsules) for s in SCHEMES), (TOTAL, capsules)))
        for block in blocks:
            if (block, "reduction_steps_delivered") in fixed:
                split_lines.append(
                    Line(tuple((block, c) for c in CAPSULES), (block, "reduction_steps_delivered"))
                )
        exact_reductions = {k: cells[k] for k in fixed}
        shown.update(self.table({**split, **exact_reductions}, split_lines, (), fixed))
        out = {}
        for block, figures in blocks.items():
            doc = {}
            for key in figures:
                if key == SPLIT_KEY:
                    doc[key] = {c: shown[(block, c)] for c in CAPSULES}
                elif key in amounts:
                    hidden = any(is_masked(shown.get((block, c))) for c in FEE_COUNTS)
                    doc[key] = None if self.enabled and hidden else amount(figures[key])
                elif (block, key) in shown:
                    doc[key] = shown[(block, key)]
                else:
                    doc[key] = figures[key]
            out[block] = doc
        return out

    def cohort(self, row: Mapping, rates: Sequence[Metric]) -> dict:
        """A cohort row (SPEC §7) after the policy: programmes = completed + stopped + in
        progress is a line; each rate of `rates` by rule 1."""
        keys = (*COHORT_PARTS, COHORT_TOTAL)
        shown = self.table({k: row[k] for k in keys}, [Line(COHORT_PARTS, COHORT_TOTAL)])
        out = {k: shown[k] for k in (COHORT_TOTAL, *COHORT_PARTS)}
        # Rates by rule 1 only, as SPEC §9 says: beside an "x" part a rate can give that part
        # back (completion rate x (completed + stopped)); a gap of the spec, reported.
        for metric in rates:
            out[metric.id] = self.metric(metric, row)
        return out

    def header(self, rules: Sequence[str] = RULES) -> dict:
        """What a JSON document adds when it is suppressed: {"disclosure": {"applied": true,
        "threshold": 5, "rules": [the rules of RULES it applies], "stock_rounding": 5}};
        nothing when the figures are exact (`--no-suppress`: the documents of SPEC §10 as
        they are)."""
        if not self.enabled:
            return {}
        note = {
            "applied": True,
            "threshold": self.threshold,
            "rules": list(rules),
            "stock_rounding": STOCK_ROUNDING,
        }
        return {"disclosure": note}


def _mask_another(
    parts: Sequence[Hashable],
    total: Hashable | None,
    cells: Mapping,
    shown: dict,
    fixed: Mapping = MappingProxyType({}),
) -> bool:
    """Mask (shown["x"]) the smallest non-zero part not yet masked (ties: the first), else
    `total` when it is non-zero and shown; never a `fixed` cell; whether a cell was masked."""
    candidates = [
        k for k in parts if k not in fixed and not is_masked(shown[k]) and (cells[k] or 0) > 0
    ]
    if candidates:
        pick = min(candidates, key=lambda k: (cells[k], parts.index(k)))
    elif (
        total is not None
        and total not in fixed
        and not is_masked(shown[total])
        and (cells[total] or 0) > 0
    ):
        pick = total
    else:
        return False
    shown[pick] = COMPLEMENTARY_MASK
    return True


def _recoverable(shown: Mapping, lines: Sequence[Line]) -> set:
    """The masked cells that the lines (parts = total), with every cell shown exactly
    substituted, determine. The equations in reduced row echelon form (exact, over the
    rationals): a cell is determined when a row of it is that cell alone."""
    unknowns = [k for k, v in shown.items() if is_masked(v)]
    index = {k: i for i, k in enumerate(unknowns)}
    basis: dict[int, dict[int, Fraction]] = {}  # pivot -> row; a pivot is in no other row
    for line in lines:
        row: dict[int, Fraction] = {}
        for key, sign in [*((p, 1) for p in line.parts), (line.total, -1)]:
            if key in index:
                row[index[key]] = row.get(index[key], Fraction(0)) + sign
        for pivot, b in basis.items():
            if row.get(pivot):
                factor = row[pivot] / b[pivot]
                for i, c in b.items():
                    row[i] = row.get(i, Fraction(0)) - factor * c
        row = {i: c for i, c in row.items() if c != 0}
        if not row:
            continue
        pivot = min(row)
        for other in basis.values():  # keep the form reduced: clear the pivot elsewhere
            if other.get(pivot):
                factor = other[pivot] / row[pivot]
                for i, c in row.items():
                    other[i] = other.get(i, Fraction(0)) - factor * c
                for i in [i for i, c in other.items() if c == 0]:
                    del other[i]
        basis[pivot] = row
    return {unknowns[pivot] for pivot, row in basis.items() if len(row) == 1}


def csv_note(doc: Mapping) -> list[str]:
    """The `disclosure` cell a CSV row of `doc` ends with: `["threshold=5;primary;..."]` when
    the document was suppressed (see Disclosure.header), `[]` when its figures are exact (no
    such column then). Headers use `csv_note_header`."""
    note = doc.get("disclosure")
    if not note:
        return []
    return [";".join([f"threshold={note['threshold']}", *note["rules"]])]


def csv_note_header(doc: Mapping) -> list[str]:
    """`["disclosure"]`, the last column's name, when `doc` was suppressed; else `[]`."""
    return ["disclosure"] if doc.get("disclosure") else []


def amount(value) -> float | None:
    """A euro amount as a JSON number with at most 2 decimals."""
    return None if value is None else round(float(value), 2)
