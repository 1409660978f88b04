"""SPEC §9 v2, disclosure control: each rule by hand, a property test that tries to recover a
masked count from what is published, and the command line end to end (default: suppressed).

The attacker of the property test does what a reader of the publication view can do with the
tables: subtract (any combination of the lines "parts = total" whose cells are shown exactly,
solved exactly with fractions), use a cohort's completion rate as an equation, and difference two
consecutive cumulative figures (each known only to its rounding to 5). A masked count is
recovered when these leave it one possible value; that must never happen.
"""

from __future__ import annotations

import importlib
from fractions import Fraction

import dash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.base.disclosure import (
    CAPSULES,
    Disclosure,
    Line,
    csv_note,
    is_masked,
    round_to_5,
)
from etl.base.registry import load_registry
from tests.sqlcase import (
    INIT5,
    INIT7,
    INIT10,
    SPEC_STATE_OF_PLAY_METRICS,
    build,
    cli_json,
    line,
    run_cli,
)

POLICY = Disclosure(5)
SCHEMES = ("5", "7", "10")
AMOUNTS = ("fees_estimated_eur", "fees_flagged_eur")
# SPEC §6's counts, in the order of its table (tests/sqlcase.py writes them out from the spec).
COUNTS = tuple(m for m in SPEC_STATE_OF_PLAY_METRICS if m not in AMOUNTS)
STOCKS = ("patients_initiated_cumulative", "active_programmes_end_of_month")
UNASSIGNED = (
    "reduction_steps_delivered",
    "stabilisation_steps_delivered",
    "follow_up_interviews",
    "fees_estimated_eur",
)
RATES = [
    m
    for m in load_registry().group("cohorts")
    if m.disclosure == "rate" and not m.id.startswith("bzra_")
]


def line_of(parts: list[int]) -> list:
    """Parts 5, 7, 10 and their total through the policy (one line)."""
    cells = dict(zip([*SCHEMES, "total"], [*parts, sum(parts)], strict=True))
    shown = POLICY.table(cells, [Line(SCHEMES, "total")])
    return [shown[k] for k in (*SCHEMES, "total")]


# --- rule 1: primary --------------------------------------------------------------------------


def test_primary_counts():
    """Threshold 5: 1 to 4 are "<5"; 0 and 5 are shown; a missing figure stays missing."""
    assert [POLICY.count(v) for v in (0, 1, 4, 5, 120, None)] == [0, "<5", "<5", 5, 120, None]
    assert Disclosure(3).count(2) == "<3" and Disclosure(3).count(3) == 3
    assert Disclosure(5, enabled=False).count(1) == 1


def test_primary_rates():
    """A rate is null when its denominator is below 5 (0.5 of 4), or its numerator (3 of 10)
    or denominator minus numerator (7 of 10: 3 not completed) is from 1 to 4; 0 of 10, 10 of
    10 and 5 of 10 are shown."""
    assert POLICY.rate(0.5, 4, 2) is None
    assert POLICY.rate(0.3, 10, 3) is None
    assert POLICY.rate(0.7, 10, 7) is None
    assert POLICY.rate(0.0, 10, 0) == 0.0
    assert POLICY.rate(1.0, 10, 10) == 1.0
    assert POLICY.rate(0.5, 10, 5) == 0.5


# --- rule 2: complementary -----------------------------------------------------------------


def test_complementary_masks_the_smallest_other_part():
    """3, 8, 6 -> 17: 3 is "<5"; of 8 and 6 the smallest, scheme 10's 6, becomes "x" (else
    17 - 8 - 6 = 3)."""
    assert line_of([3, 8, 6]) == ["<5", 8, "x", 17]


def test_complementary_ties_take_the_first_scheme():
    """2, 6, 6 -> 14: 6 and 6 tie; the first of 5, 7, 10 (scheme 7) becomes "x"."""
    assert line_of([2, 6, 6]) == ["<5", "x", 6, 14]


def test_complementary_skips_zeros():
    """2, 0, 9 -> 11: the smallest non-zero other part is 9, not the 0 (a 0 hides nothing)."""
    assert line_of([2, 0, 9]) == ["<5", 0, "x", 11]


def test_two_masked_parts_need_nothing_more():
    """1, 2, 9 -> 12: subtraction gives only 1 + 2 = 3."""
    assert line_of([1, 2, 9]) == ["<5", "<5", 9, 12]


def test_a_masked_total_masks_nothing_else():
    """3, 0, 0 -> 3: the total is "<5" too; nothing more is masked."""
    assert line_of([3, 0, 0]) == ["<5", 0, 0, "<5"]
    assert line_of([1, 2, 0]) == ["<5", "<5", 0, "<5"]


def test_complementary_in_the_order_of_a_cohort_row():
    """Cohort 20 = 6 completed + 10 stopped + 4 in progress: 4 is "<5"; the smallest other,
    completed 6, becomes "x"; the completion rate 6/16 = 0.375 passes rule 1 (16 closed, 6
    and 10) and is shown, as SPEC §9 says (rates: rule 1 only) — though with stopped 10 shown
    it gives completed = 6 back: a gap of the spec, reported in the issue note."""
    row = {
        "programmes": 20,
        "completed": 6,
        "stopped": 10,
        "in_progress": 4,
        "n_closed": 16,
        "completion_rate": 0.375,
        "n_with_reduction": 20,
        "n_with_reduction_and_stabilisation": 10,
        "stabilisation_rate": 0.5,
        "n_closed_with_follow_up": 8,
        "follow_up_rate": 0.5,
    }
    shown = POLICY.cohort(row, RATES)
    assert [shown[k] for k in ("programmes", "completed", "stopped", "in_progress")] == [
        20,
        "x",
        10,
        "<5",
    ]
    assert shown["completion_rate"] == 0.375
    assert (shown["stabilisation_rate"], shown["follow_up_rate"]) == (0.5, 0.5)


def test_complementary_ties_in_a_cohort_row_take_the_first():
    """12 = 6 completed + 6 stopped + 0 in progress... with 2 in progress: 14 = 6 + 6 + 2: the
    6s tie, completed (first in the row's order) becomes "x"."""
    row = {"programmes": 14, "completed": 6, "stopped": 6, "in_progress": 2}
    shown = POLICY.cohort(row, [])
    assert [shown[k] for k in ("completed", "stopped", "in_progress")] == ["x", 6, "<5"]


# --- rule 3: stocks -------------------------------------------------------------------------


def test_round_to_5_and_its_halves():
    """Nearest multiple of 5; a half goes up (12.5 -> 15, 7.5 -> 10, 2.5 -> 5)."""
    assert [round_to_5(v) for v in (5, 7, 8, 12, 13, 100, 102, 103)] == [
        5,
        5,
        10,
        10,
        15,
        100,
        100,
        105,
    ]
    assert [round_to_5(v) for v in (12.5, 7.5, 2.5, 12.4)] == [15, 10, 5, 10]


def test_stocks_rounded_the_total_from_its_own_value():
    """Cumulative 7, 7, 7 -> 21: each part 5; the total from 21, 20 (not 5 + 5 + 5 = 15). A
    masked stock stays masked: 3, 7, 9 -> 19 is "<5", "x" (7, the smallest other), 10, 20."""
    stocks = [(s, "c") for s in (*SCHEMES, "total")]
    line = Line(tuple(stocks[:3]), stocks[3])
    shown = POLICY.table(dict(zip(stocks, [7, 7, 7, 21], strict=True)), [line], stocks)
    assert [shown[k] for k in stocks] == [5, 5, 5, 20]
    shown = POLICY.table(dict(zip(stocks, [3, 7, 9, 19], strict=True)), [line], stocks)
    assert [shown[k] for k in stocks] == ["<5", "x", 10, 20]
    assert POLICY.stock(4) == "<5" and POLICY.stock(18) == 20


# --- rule 4: fees -----------------------------------------------------------------------


def block(**counts) -> dict:
    """A state-of-play block: every count 0 unless given, fees 100.00 and 20.00."""
    figures = {key: counts.get(key, 0) for key in COUNTS}
    figures.update(fees_estimated_eur=100.0, fees_flagged_eur=20.0)
    figures["reduction_steps_by_capsules"] = dict.fromkeys(CAPSULES, 0)
    return figures


def test_fees_null_where_a_count_they_sum_is_masked():
    """Scheme 5: follow-ups 2 ("<5") -> both its fees null. Scheme 7: follow-ups 0 -> "x" is not
    possible (0), scheme 10's 6 becomes "x" -> its fees null. The total (8 follow-ups, 10
    initiations) keeps its fees. The unassigned block: 1 reduction step -> its fee null
    (15.71 would say: one step)."""
    blocks = {
        "5": block(follow_up_interviews=2, initiations_billed=5),
        "7": block(initiations_billed=5),
        "10": block(follow_up_interviews=6),
        "total": block(follow_up_interviews=8, initiations_billed=10),
    }
    unassigned = {key: 0 for key in UNASSIGNED}
    unassigned.update(reduction_steps_delivered=1, fees_estimated_eur=15.71)
    unassigned["reduction_steps_by_capsules"] = {"10": 1, "20": 0, "30": 0}
    shown = POLICY.state_of_play({**blocks, "unassigned": unassigned}, COUNTS, AMOUNTS)
    assert [shown[b]["follow_up_interviews"] for b in (*SCHEMES, "total")] == ["<5", 0, "x", 8]
    assert [shown[b]["fees_estimated_eur"] for b in (*SCHEMES, "total")] == [
        None,
        100.0,
        None,
        100.0,
    ]
    assert shown["5"]["fees_flagged_eur"] is None and shown["7"]["fees_flagged_eur"] == 20.0
    assert shown["unassigned"]["fees_estimated_eur"] is None
    assert shown["unassigned"]["reduction_steps_by_capsules"] == {"10": "<5", "20": 0, "30": 0}


def test_exact_figures_when_not_suppressed():
    blocks = {"5": block(follow_up_interviews=2), "total": block(follow_up_interviews=2)}
    shown = Disclosure(5, enabled=False).state_of_play(blocks, COUNTS, AMOUNTS)
    assert shown["5"]["follow_up_interviews"] == 2 and shown["5"]["fees_estimated_eur"] == 100.0
    assert Disclosure(5, enabled=False).header() == {}


def test_the_csv_note():
    """A suppressed document's CSV rows end with the threshold and the rules applied."""
    doc = POLICY.header()
    assert csv_note(doc) == ["threshold=5;primary;complementary;rounded_stocks;fees"]
    assert csv_note({}) == []


# --- the attacker ------------------------------------------------------------------------


def determined(equations: list[tuple[dict, Fraction]], unknowns: list) -> set:
    """The unknowns that `equations` (sum of coeff * unknown = constant) fix to one value: in
    the reduced row echelon form of the equations (exact, over the rationals), those alone in
    a row."""
    index = {u: i for i, u in enumerate(unknowns)}
    rows = []
    for coeffs, _ in equations:
        row = [Fraction(0)] * len(unknowns)
        for u, c in coeffs.items():
            row[index[u]] += Fraction(c)
        rows.append(row)
    basis = reduce_rows(rows)
    return {
        unknowns[i]
        for row in basis
        for i in [j for j, x in enumerate(row) if x != 0]
        if sum(x != 0 for x in row) == 1
    }


def reduce_rows(rows: list[list[Fraction]]) -> list[list[Fraction]]:
    """The reduced row echelon form of `rows`, zero rows dropped (Gauss-Jordan)."""
    rows = [list(r) for r in rows]
    out: list[list[Fraction]] = []
    width = len(rows[0]) if rows else 0
    for col in range(width):
        pivot = next((r for r in rows if r[col] != 0), None)
        if pivot is None:
            continue
        rows.remove(pivot)
        pivot = [x / pivot[col] for x in pivot]
        for r in (*rows, *out):
            if r[col] != 0:
                factor = r[col]
                r[:] = [x - factor * y for x, y in zip(r, pivot, strict=True)]
        out.append(pivot)
    return out


def subtraction_attack(shown: dict, lines: list[Line]) -> set:
    """The masked cells that the lines, with the cells shown exactly, fix to one value."""
    unknowns = [k for k, v in shown.items() if is_masked(v)]
    equations = []
    for ln in lines:
        coeffs: dict = {}
        constant = Fraction(0)
        for key, sign in [*((p, 1) for p in ln.parts), (ln.total, -1)]:
            if is_masked(shown[key]):
                coeffs[key] = coeffs.get(key, 0) + sign
            else:
                constant -= sign * shown[key]
        if coeffs:
            equations.append((coeffs, constant))
    return determined(equations, unknowns)


def state_lines(doc: dict) -> list[Line]:
    """The lines of a state of play whose cells are exact when shown (stocks are rounded).
    Not checked: patients initiated = repeat where the cumulative is 0 (no first programme),
    which SPEC §9 does not make a line — a gap of the spec, reported in the issue note."""
    counts = [c for c in COUNTS if c not in STOCKS]
    lines = [Line(tuple((s, c) for s in SCHEMES), ("total", c)) for c in [*counts, *CAPSULES]]
    for b in doc:
        lines.append(Line(tuple((b, c) for c in CAPSULES), (b, "reduction_steps_delivered")))
    return lines


def cells_of(doc: dict) -> dict:
    """A state-of-play document's count cells keyed (block, metric or capsules)."""
    cells = {}
    for b, figures in doc.items():
        for key, value in figures.items():
            if key == "reduction_steps_by_capsules":
                cells.update({(b, c): v for c, v in value.items()})
            elif key not in AMOUNTS:
                cells[(b, key)] = value
    return cells


def interval(value) -> tuple[int, int]:
    """What a reader knows of an exact stock from its shown value (rounded to 5, or "<5")."""
    if value == "<5":
        return (1, 4)
    if value == 0:
        return (0, 0)
    return (max(value - 2, 5), value + 2)  # shown, so not from 1 to 4


def month_block(draw) -> dict:
    """One scheme's exact figures for a month, small enough to be masked often."""
    small = st.integers(0, 9)
    split = {c: draw(small) for c in CAPSULES}
    figures = {
        "patients_initiated_repeat": draw(st.sampled_from([0, 0, 1, 2, 6])),
        "initiations_billed": draw(small),
        "active_programmes_end_of_month": draw(st.integers(0, 40)),
        "stabilisation_steps_delivered": draw(small),
        "follow_up_interviews": draw(small),
        "programmes_completed": draw(small),
        "programmes_stopped": draw(small),
        "reduction_steps_by_capsules": split,
    }
    return figures


def exact_state(blocks: dict, starts: dict, cumulative: dict) -> dict:
    """The blocks 5, 7, 10 and total as the mart gives them (counts and fees)."""
    out = {}
    for s in SCHEMES:
        f = dict(blocks[s])
        f["patients_initiated"] = starts[s] + f["patients_initiated_repeat"]
        f["patients_initiated_cumulative"] = cumulative[s]
        f["reduction_steps_delivered"] = sum(f["reduction_steps_by_capsules"].values())
        f["fees_estimated_eur"] = 10.0
        f["fees_flagged_eur"] = 0.0
        out[s] = f
    total = {k: sum(out[s][k] for s in SCHEMES) for k in (*COUNTS, *AMOUNTS)}
    total["reduction_steps_by_capsules"] = {
        c: sum(out[s]["reduction_steps_by_capsules"][c] for s in SCHEMES) for c in CAPSULES
    }
    out["total"] = total
    return out


@st.composite
def series(draw):
    """2 to 4 consecutive months: per month and scheme, first programmes, repeats and the
    other counts; the cumulative is the running sum of first programmes."""
    small = st.integers(0, 9)
    n = draw(st.integers(2, 4))
    cumulative = {s: draw(st.integers(0, 12)) for s in SCHEMES}
    out = []
    for _ in range(n):
        blocks, starts = {}, {}
        for s in SCHEMES:
            starts[s] = draw(small)
            cumulative[s] += starts[s]
            blocks[s] = month_block(draw)
        state = exact_state(blocks, starts, dict(cumulative))
        unassigned = {
            "reduction_steps_delivered": 0,
            "stabilisation_steps_delivered": draw(small),
            "follow_up_interviews": draw(small),
            "fees_estimated_eur": 5.0,
            "reduction_steps_by_capsules": {c: draw(small) for c in CAPSULES},
        }
        unassigned["reduction_steps_delivered"] = sum(
            unassigned["reduction_steps_by_capsules"].values()
        )
        state["unassigned"] = unassigned
        out.append((state, starts))
    return out


@settings(max_examples=300, deadline=None)
@given(series())
def test_no_masked_count_of_the_state_of_play_can_be_recovered(months):
    """For each month: no masked cell (a "<5" or an "x") is fixed by subtraction along the
    published lines; for each two consecutive months, no masked count of patients initiated
    is fixed by the difference of the two cumulative figures (patients initiated = first
    programmes + repeat programmes; first programmes = the cumulative's increase)."""
    shown_months = []
    for state, _ in months:
        shown = POLICY.state_of_play(state, COUNTS, AMOUNTS)
        shown_months.append(shown)
        cells = cells_of(shown)
        assert not subtraction_attack(cells, state_lines(shown)), shown
        # Fees: null wherever a count they sum is masked (else fee / unit fee = the count).
        for figures in shown.values():
            keys = [k for k in ("initiations_billed", *UNASSIGNED[:3]) if k in figures]
            if any(is_masked(figures[k]) for k in keys):
                assert figures["fees_estimated_eur"] is None
        # Stocks: masked, 0, or a multiple of 5.
        for b in (*SCHEMES, "total"):
            for key in STOCKS:
                value = shown[b][key]
                assert is_masked(value) or value % 5 == 0
    for before, now in zip(shown_months, shown_months[1:], strict=False):
        for s in (*SCHEMES, "total"):
            p, r = now[s]["patients_initiated"], now[s]["patients_initiated_repeat"]
            c0, c1 = (
                before[s]["patients_initiated_cumulative"],
                now[s]["patients_initiated_cumulative"],
            )
            if not is_masked(p) or is_masked(r) or is_masked(c0) or is_masked(c1):
                continue
            lo0, hi0 = interval(c0)
            lo1, hi1 = interval(c1)
            low = 1 if p == "<5" else 5
            candidates = {d + r for d in range(lo1 - hi0, hi1 - lo0 + 1) if d >= 0 and d + r >= low}
            if p == "<5":
                candidates &= set(range(1, 5))
            assert len(candidates) != 1, (s, p, r, c0, c1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(*(st.integers(0, 12) for _ in range(3))), min_size=1, max_size=6))
def test_no_masked_count_of_a_cohort_row_can_be_recovered(rows):
    """Cohort rows (completed, stopped, in progress; programmes their sum): no masked count is
    fixed by the row's sum. (Its completion rate, shown by rule 1 alone as SPEC §9 says, can
    give an "x" back: a gap of the spec, not checked here.)"""
    for completed, stopped, in_progress in rows:
        closed = completed + stopped
        row = {
            "programmes": closed + in_progress,
            "completed": completed,
            "stopped": stopped,
            "in_progress": in_progress,
            "n_closed": closed,
            "completion_rate": Fraction(completed, closed) if closed else None,
            "n_with_reduction": 0,
            "n_with_reduction_and_stabilisation": 0,
            "stabilisation_rate": None,
            "n_closed_with_follow_up": 0,
            "follow_up_rate": None,
        }
        shown = POLICY.cohort(row, RATES)
        cells = {k: shown[k] for k in ("completed", "stopped", "in_progress", "programmes")}
        lines = [Line(("completed", "stopped", "in_progress"), "programmes")]
        unknowns = [k for k, v in cells.items() if is_masked(v)]
        equations = []
        for ln in lines:
            coeffs, constant = {}, Fraction(0)
            for key, sign in [*((p, 1) for p in ln.parts), (ln.total, -1)]:
                if is_masked(cells[key]):
                    coeffs[key] = sign
                else:
                    constant -= sign * cells[key]
            if coeffs:
                equations.append((coeffs, constant))
        assert not determined(equations, unknowns), (row, shown)


def test_the_attacker_finds_what_v1_left_open():
    """The attacker is not blind: with primary suppression only (v1), 3, 8, 6 -> 17 gives the
    3 back (17 - 8 - 6)."""
    cells = {"5": "<5", "7": 8, "10": 6, "total": 17}
    assert subtraction_attack(cells, [Line(SCHEMES, "total")]) == {"5"}


# --- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """March 2025: 2 five-step programmes (03-03), 6 seven-step (03-03), 8 ten-step (6 on
    03-03, 2 on 03-10); initiations only, one pharmacy."""
    lines = [line(f"F{i}", "2025-03-03", INIT5) for i in range(2)]
    lines += [line(f"S{i}", "2025-03-03", INIT7) for i in range(6)]
    lines += [line(f"T{i}", "2025-03-03", INIT10) for i in range(6)]
    lines += [line(f"U{i}", "2025-03-10", INIT10) for i in range(2)]
    return build(tmp_path_factory.mktemp("disclosure"), lines)


def test_report_is_suppressed_by_default(tiny):
    """As of 03-10 (the last delivery) every programme is active. Patients, initiations,
    cumulative and active: 2, 6, 8 -> 16. Rule 1: 2 -> "<5"; rule 2: the smallest other
    non-zero, scheme 7's 6 -> "x"; rule 3: cumulative and active of scheme 10, 8 -> 10, of
    the total, 16 -> 15; rule 4: schemes 5 and 7 (initiations masked) have no fees; scheme 10:
    8 initiation interviews x 23.24 = 185.92; total 16 x 23.24 = 371.84."""
    doc = cli_json(tiny, "report", "--month", "2025-03")
    s = doc["schemes"]
    for key in ("patients_initiated", "initiations_billed"):
        assert [s[b][key] for b in (*SCHEMES, "total")] == ["<5", "x", 8, 16]
    for key in STOCKS:
        assert [s[b][key] for b in (*SCHEMES, "total")] == ["<5", "x", 10, 15]
    assert [s[b]["fees_estimated_eur"] for b in (*SCHEMES, "total")] == [
        None,
        None,
        185.92,
        371.84,
    ]
    assert doc["disclosure"]["applied"] is True
    exact = cli_json(tiny, "report", "--month", "2025-03", "--no-suppress")
    assert [exact["schemes"][b]["patients_initiated"] for b in SCHEMES] == [2, 6, 8]
    assert "disclosure" not in exact


def test_report_csv_says_disclosure_was_applied(tiny):
    status, out = run_cli("--db", str(tiny), "report", "--month", "2025-03", "--format", "csv")
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split(",")[-1] == "disclosure"
    assert {r.split(",")[-1] for r in rows} == {
        "threshold=5;primary;complementary;rounded_stocks;fees"
    }
    status, out = run_cli(
        "--db", str(tiny), "report", "--month", "2025-03", "--format", "csv", "--no-suppress"
    )
    assert "disclosure" not in out.splitlines()[0]


def test_cohorts_are_suppressed_by_default(tiny):
    """As of 2025-04-05, a programme without steps is stopped when as-of > start + 30: the six
    10-step programmes of 03-03 are stopped (04-05 > 04-02), the two of 03-10 in progress
    (04-05 <= 04-09). Row 2025-03/10: 8 = 0 + 6 + 2: in progress 2 -> "<5", the smallest other
    non-zero, stopped 6 -> "x"; the completion rate 0/6 = 0.0 passes rule 1 (6 closed; 0 and 6
    not from 1 to 4) and is shown. Row 2025-03/7: 6 = 0 + 6 + 0, nothing masked; its completion rate 0/6 = 0.0."""
    doc = cli_json(tiny, "cohorts", "--as-of", "2025-04-05")
    rows = {(c["initiation_month"], c["scheme"]): c for c in doc["cohorts"]}
    ten = rows[("2025-03", "10")]
    assert [ten[k] for k in ("programmes", "completed", "stopped", "in_progress")] == [
        8,
        0,
        "x",
        "<5",
    ]
    assert ten["completion_rate"] == 0.0
    seven = rows[("2025-03", "7")]
    assert [seven[k] for k in ("programmes", "completed", "stopped", "in_progress")] == [
        6,
        0,
        6,
        0,
    ]
    assert seven["completion_rate"] == 0.0
    assert doc["disclosure"]["rules"] == ["primary", "complementary"]
    status, out = run_cli("--db", str(tiny), "cohorts", "--as-of", "2025-04-05", "--format", "csv")
    assert status == 0 and out.splitlines()[0].endswith(",disclosure")


# --- the regions page ----------------------------------------------------------------------

PROVINCES = {"BE-BRU": ["BE-BRU"], "BE-VLG": ["BE-VAN", "BE-VOV"], "BE-WAL": ["BE-WHT", "BE-WLG"]}
PROFILE = {"age_band": ["<45", "45-64", "unknown"], "sex": ["M", "F", "unknown"]}
OUTCOMES = ("n_in_progress", "n_completed", "n_stopped")
REGION_COUNTS = ("n_patients_initiated", "n_programmes", *OUTCOMES)


def region_marts(programmes: list[tuple]) -> tuple[list[dict], list[dict], list[dict]]:
    """The three marts of the regions page from programmes (region, province, age band, sex,
    scheme, outcome, first programme or not): counts per category and scheme, and `total`."""

    def rows(key, categories, attribute, extra=lambda c: {}):
        out = []
        for category in categories:
            for scheme in (*SCHEMES, "total"):
                mine = [
                    p
                    for p in programmes
                    if attribute(p) == category and (scheme == "total" or p[4] == scheme)
                ]
                out.append(
                    {
                        key: category,
                        "scheme": scheme,
                        "n_patients_initiated": sum(p[6] for p in mine),
                        "n_programmes": len(mine),
                        **{o: sum(p[5] == o for p in mine) for o in OUTCOMES},
                        **extra(category),
                    }
                )
        return out

    regions = rows("region_code", list(PROVINCES), lambda p: p[0])
    provinces = rows(
        "province_code",
        [c for cs in PROVINCES.values() for c in cs],
        lambda p: p[1],
        lambda c: {"region_code": next(r for r, cs in PROVINCES.items() if c in cs)},
    )
    profile = []
    for index, (dimension, categories) in enumerate(PROFILE.items()):
        for row in rows("category", categories, lambda p, i=index: p[2 + i]):
            profile.append({**row, "dimension": dimension})
    return regions, provinces, profile


def region_lines() -> list[Line]:
    """What a reader adds up on the regions page, written out independently of the page."""
    groups = {
        "region": list(PROVINCES),
        "province": [c for cs in PROVINCES.values() for c in cs],
        **PROFILE,
    }
    lines = []
    for group, categories in groups.items():
        for category in categories:
            for scheme in (*SCHEMES, "total"):
                lines.append(
                    Line(
                        tuple((group, category, scheme, o) for o in OUTCOMES),
                        (group, category, scheme, "n_programmes"),
                    )
                )
            for c in REGION_COUNTS:
                lines.append(
                    Line(
                        tuple((group, category, s, c) for s in SCHEMES),
                        (group, category, "total", c),
                    )
                )
        for scheme in (*SCHEMES, "total"):
            for c in REGION_COUNTS:
                lines.append(
                    Line(
                        tuple((group, k, scheme, c) for k in categories),
                        ("national", scheme, c),
                    )
                )
    for region, codes in PROVINCES.items():
        for scheme in (*SCHEMES, "total"):
            for c in REGION_COUNTS:
                lines.append(
                    Line(
                        tuple(("province", k, scheme, c) for k in codes),
                        ("region", region, scheme, c),
                    )
                )
    return lines


@st.composite
def region_programmes(draw):
    """Up to 40 programmes spread over regions, provinces, profiles, schemes and outcomes."""
    provinces = [(r, c) for r, cs in PROVINCES.items() for c in cs]
    one = st.tuples(
        st.sampled_from(provinces),
        st.sampled_from(PROFILE["age_band"]),
        st.sampled_from(PROFILE["sex"]),
        st.sampled_from(SCHEMES),
        st.sampled_from(OUTCOMES),
        st.booleans(),
    )
    return [
        (p[0], p[1], a, s, sc, o, int(f)) for p, a, s, sc, o, f in draw(st.lists(one, max_size=40))
    ]


def test_regions_page_publishes_no_recoverable_count(tiny):
    """The regions page (publication view): regions, provinces and profiles with their schemes
    and outcomes, all adding up to the national figures (not shown, but given away by any
    group shown in full). No masked count is fixed by subtraction along the lines a reader can
    add up."""
    from dashboard.app import create_app

    create_app(tiny)
    page = next(
        importlib.import_module(p["module"])
        for p in dash.page_registry.values()
        if p["path"] == "/regions"
    )

    @settings(max_examples=60, deadline=None)
    @given(region_programmes())
    def check(programmes):
        regions, provinces, profile = region_marts(programmes)
        regions, provinces, profile = page.protect(regions, provinces, profile, POLICY)
        cells = {}
        for r in regions:
            cells.update(
                {("region", r["region_code"], r["scheme"], c): r[c] for c in REGION_COUNTS}
            )
        for r in provinces:
            cells.update(
                {("province", r["province_code"], r["scheme"], c): r[c] for c in REGION_COUNTS}
            )
        for r in profile:
            cells.update(
                {(r["dimension"], r["category"], r["scheme"], c): r[c] for c in REGION_COUNTS}
            )
        # The national figures are not on the page: unknowns, solved if the page gives them.
        for scheme in (*SCHEMES, "total"):
            for c in REGION_COUNTS:
                cells[("national", scheme, c)] = "?"
        found = subtraction_attack(cells, region_lines())
        assert not {k for k in found if k[0] != "national"}

    check()


def test_compliance_page_publishes_no_recoverable_count(tiny):
    """The compliance page (publication view): flagged events per month and rule, per month and
    severity, per month, and per rule over the period. No masked count is fixed by subtraction
    (the period's per-severity and overall figures, not shown, are unknowns solved if the page
    gives them)."""
    from dashboard.app import create_app

    create_app(tiny)
    page = next(
        importlib.import_module(p["module"])
        for p in dash.page_registry.values()
        if p["path"] == "/compliance"
    )
    rules = load_registry().rules
    months = ["2025-01", "2025-02", "2025-03", "2025-04"]

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(0, 7), min_size=len(months) * len(rules),
                    max_size=len(months) * len(rules)))  # fmt: skip
    def check(values):
        grid = {
            (m, r.id): values[i * len(rules) + j]
            for i, m in enumerate(months)
            for j, r in enumerate(rules)
        }
        per_month, counts = [], {}
        for m in months:
            for r in rules:
                if grid[(m, r.id)]:
                    per_month.append({"month": m, "rule_id": r.id, "severity": r.severity,
                                      "is_per_rule": True, "is_per_severity": False,
                                      "n_findings": grid[(m, r.id)]})  # fmt: skip
                counts[r.id] = counts.get(r.id, 0) + grid[(m, r.id)]
            for severity in ("error", "warning"):
                n = sum(grid[(m, r.id)] for r in rules if r.severity == severity)
                per_month.append({"month": m, "rule_id": None, "severity": severity,
                                  "is_per_rule": False, "is_per_severity": True,
                                  "n_findings": n})  # fmt: skip
            per_month.append({"month": m, "rule_id": None, "severity": None,
                              "is_per_rule": False, "is_per_severity": False,
                              "n_findings": sum(grid[(m, r.id)] for r in rules)})  # fmt: skip
        shown = page.protect(counts, per_month, rules, POLICY)
        cells = {k: v for k, v in shown.items() if k[0] is not None or k[1] in counts}
        for key in ("error", "warning", "total"):
            cells[(None, key)] = "?"
        lines = []
        for m in [*months, None]:
            for severity in ("error", "warning"):
                ids = tuple((m, r.id) for r in rules if r.severity == severity)
                lines.append(Line(ids, (m, severity)))
            lines.append(Line(((m, "error"), (m, "warning")), (m, "total")))
        for key in [*(r.id for r in rules), "error", "warning", "total"]:
            lines.append(Line(tuple((m, key) for m in months), (None, key)))
        found = subtraction_attack(cells, lines)
        assert not {k for k in found if cells[k] != "?"}

    check()
