"""SPEC §16 funnel plots by hand (Spiegelhalter 2005): control limits, the overdispersion factor
φ from 10 %-winsorised z-scores, mart_funnel_units and `benzo-monitor funnel`.

Limits for a unit with n cases around the national value p: p ± z·sqrt(φ·p(1−p)/n), z = 1.96
(95 %) and 3.09 (99.8 %), clipped to [0, 1], φ used only when above 1.
"""

from __future__ import annotations

import pytest

from etl.base.disclosure import Disclosure
from etl.base.warehouse import connect
from etl.outcomes import control_limits, funnel_document, overdispersion, winsorised, z_score
from tests.sqlcase import INIT5, RED10, build, cli_json, every, programme, query, run_cli


def test_limits_for_a_given_p_and_n():
    """p = 0.2, n = 100: SE = sqrt(0.2 · 0.8 / 100) = sqrt(0.0016) = 0.04.
    95 %: 0.2 ± 1.96 · 0.04 = 0.2 ± 0.0784 -> (0.1216, 0.2784).
    99.8 %: 0.2 ± 3.09 · 0.04 = 0.2 ± 0.1236 -> (0.0764, 0.3236).
    With φ = 2.25 (sqrt φ = 1.5): 99.8 % 0.2 ± 0.1854 -> (0.0146, 0.3854).
    With φ = 0.8 (below 1): not applied, the limits of φ = 1.
    p = 0.05, n = 10: SE = sqrt(0.0475 / 10) = 0.068920; 95 % half-width 0.135083 ->
    (−0.085083 clipped to 0, 0.185083)."""
    assert control_limits(0.2, 100, 1.96) == pytest.approx((0.1216, 0.2784), abs=1e-9)
    assert control_limits(0.2, 100, 3.09) == pytest.approx((0.0764, 0.3236), abs=1e-9)
    assert control_limits(0.2, 100, 3.09, 2.25) == pytest.approx((0.0146, 0.3854), abs=1e-9)
    assert control_limits(0.2, 100, 3.09, 0.8) == pytest.approx((0.0764, 0.3236), abs=1e-9)
    assert control_limits(0.05, 10, 1.96) == pytest.approx((0.0, 0.185083), abs=1e-6)


def test_z_score_and_phi_on_a_small_set():
    """z for 30 events in 100 cases, p = 0.2: (0.3 − 0.2) / 0.04 = 2.5.

    φ on ten z-scores [−3, −1, −0.5, 0, 0, 0.5, 1, 1, 2, 5]: 10 % of 10 is 1 at each end, so
    −3 becomes the next lowest, −1, and 5 the next highest, 2:
    [−1, −1, −0.5, 0, 0, 0.5, 1, 1, 2, 2]; Σz² = 1 + 1 + 0.25 + 0 + 0 + 0.25 + 1 + 1 + 4 + 4
    = 12.5; φ = 12.5 / 10 = 1.25. With fewer than 10 units nothing is winsorised:
    [3, −1] -> (9 + 1) / 2 = 5."""
    assert z_score(30, 100, 0.2) == pytest.approx(2.5)
    assert z_score(0, 0, 0.2) is None and z_score(1, 10, 0.0) is None
    scores = [-3, -1, -0.5, 0, 0, 0.5, 1, 1, 2, 5]
    assert winsorised(scores) == [-1, -1, -0.5, 0, 0, 0.5, 1, 1, 2, 2]
    assert overdispersion(scores) == pytest.approx(1.25)
    assert overdispersion([3, -1]) == pytest.approx(5.0)
    assert overdispersion([]) is None


# --- on a warehouse ----------------------------------------------------------------------------

START = "2025-01-06"
POSTCODES = {"PHB": "1000", "PHF": "2000", "PHW": "5000", "PHU": None}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    """Closed scheme-5 programmes as of 2025-06-30, by pharmacy and its postcode:
    - PHB (1000, Brussels-Capital): 5 completed (5 steps every 10 days), 1 stopped (one step);
    - PHF (2000, Antwerp, Flanders): 1 completed, 5 stopped;
    - PHW (5000, Namur, Wallonia): 1 completed, 1 stopped;
    - PHU (no postcode: unknown): 2 stopped.
    The completed programmes' reductions are 10 days apart, the earliest allowed, none early.
    """
    lines = []
    plan = {"PHB": (5, 1), "PHF": (1, 5), "PHW": (1, 1), "PHU": (0, 2)}
    for pharmacy, (completed, stopped) in plan.items():
        for i in range(completed):
            lines += programme(f"{pharmacy}c{i}", START, INIT5, every(START, 10, 5, RED10),
                               pharmacy=pharmacy)  # fmt: skip
        for i in range(stopped):
            lines += programme(f"{pharmacy}s{i}", START, INIT5, [(START, RED10)],
                               pharmacy=pharmacy)  # fmt: skip
    path = build(tmp_path_factory.mktemp("funnel"), lines)
    con = connect(path)
    try:
        for pharmacy, postcode in POSTCODES.items():
            con.execute(
                "update billing_lines set pharmacy_postcode = ? where pharmacy_id = ?",
                [postcode, pharmacy],
            )
    finally:
        con.close()
    return path


def test_mart_funnel_units(db):
    rows = query(
        db,
        "select unit_type, unit_code, n_cases, n_events, is_unknown_place from mart_funnel_units "
        "where measure = 'completion' order by unit_type, unit_code",
        "2025-06-30",
    )
    got = {(r["unit_type"], r["unit_code"]): (r["n_cases"], r["n_events"]) for r in rows}
    assert got == {
        ("pharmacy", "PHB"): (6, 5),
        ("pharmacy", "PHF"): (6, 1),
        ("pharmacy", "PHU"): (2, 0),
        ("pharmacy", "PHW"): (2, 1),
        ("province", "BE-BRU"): (6, 5),
        ("province", "BE-VAN"): (6, 1),
        ("province", "BE-WNA"): (2, 1),
        ("province", "unknown"): (2, 0),
        ("region", "BE-BRU"): (6, 5),
        ("region", "BE-VLG"): (6, 1),
        ("region", "BE-WAL"): (2, 1),
        ("region", "unknown"): (2, 0),
    }
    assert [r["unit_code"] for r in rows if r["is_unknown_place"]] == ["unknown", "unknown"]
    # Early delivery: 5·(5+1+1) + (1+5+1+2) = 44 reduction events, none early.
    (early,) = query(
        db,
        "select sum(n_cases) as n, sum(n_events) as e from mart_funnel_units "
        "where measure = 'early_delivery' and unit_type = 'region'",
        "2025-06-30",
    )
    assert (early["n"], early["e"]) == (44, 0)


def test_funnel_by_region_worked_by_hand(db):
    """National p = 7 completed / 16 closed = 0.4375 (the unknown region counts);
    p(1 − p) = 0.24609375. Units (unknown not plotted): Brussels 5/6, Flanders 1/6, Wallonia 1/2.
    SE(6) = sqrt(0.24609375 / 6) = 0.202523; SE(2) = sqrt(0.24609375 / 2) = 0.350780.
    z: Brussels (0.833333 − 0.4375) / 0.202523 = 1.954509; Flanders (0.166667 − 0.4375) /
    0.202523 = −1.337296; Wallonia 0.0625 / 0.350780 = 0.178174.
    N = 3: 10 % of 3 rounds down to 0, nothing winsorised;
    φ = (3.820106 + 1.788360 + 0.031746) / 3 = 1.880071 > 1: applied.
    Brussels 95 %: half-width 1.96 · sqrt(1.880071) · 0.202523 = 0.544274 ->
    (−0.106774 -> 0, 0.981774); 99.8 %: 3.09 · 1.371157 · 0.202523 = 0.858065 -> (0, 1).
    Nobody is outside 99.8 %.
    Under disclosure control Wallonia (2 cases < 5) is not shown."""
    doc = cli_json(
        db, "funnel", "--measure", "completion", "--by", "region", "--as-of", "2025-06-30",
        "--no-suppress",
    )  # fmt: skip
    assert doc["measure"] == "completion" and doc["by"] == "region"
    assert doc["national"] == {"cases": 16, "events": 7, "rate": 0.4375}
    assert doc["phi"] == pytest.approx(1.8801, abs=1e-4)
    assert doc["phi_applied"] is True
    units = {u["unit"]: u for u in doc["units"]}
    assert set(units) == {"BE-BRU", "BE-VLG", "BE-WAL"}
    brussels = units["BE-BRU"]
    assert brussels["name"] == "Brussels-Capital"
    assert (brussels["cases"], brussels["events"], brussels["rate"]) == (6, 5, 0.8333)
    assert brussels["z_score"] == pytest.approx(1.955, abs=1e-3)
    assert (brussels["lower_95"], brussels["upper_95"]) == (0.0, 0.9818)
    assert (brussels["lower_998"], brussels["upper_998"]) == (0.0, 1.0)
    assert units["BE-VLG"]["z_score"] == pytest.approx(-1.337, abs=1e-3)
    assert units["BE-WAL"]["z_score"] == pytest.approx(0.178, abs=1e-3)
    assert doc["outside_998"] == [] and doc["not_shown"] == 0

    published = cli_json(
        db, "funnel", "--measure", "completion", "--by", "region", "--as-of", "2025-06-30"
    )
    assert [u["unit"] for u in published["units"]] == ["BE-BRU", "BE-VLG"]
    assert published["not_shown"] == 1
    assert published["phi"] == doc["phi"]  # estimated on every unit, shown or not


def test_funnel_outside_998_is_listed():
    """Twenty pharmacies of 10 closed programmes, 19 with 5 completed and one (P19) with 10:
    p = 105 / 200 = 0.525; SE(10) = sqrt(0.525 · 0.475 / 10) = 0.157917.
    z: 19 units (0.5 − 0.525) / 0.157917 = −0.158312, P19 (1 − 0.525) / 0.157917 = 3.007912.
    Winsorised (2 at each end of 20): P19's 3.007912 becomes −0.158312, so
    φ = 20 · 0.025063 / 20 = 0.025063 < 1: not applied. P19's 99.8 % upper limit
    0.525 + 3.09 · 0.157917 = 1.012963 -> 1: inside (a rate of 1 cannot exceed it).
    Its 95 % upper limit 0.525 + 1.96 · 0.157917 = 0.834517: outside 95 %, not 99.8 %."""
    units = [
        {"unit_code": f"P{i:02d}", "n_cases": 10, "n_events": 10 if i == 19 else 5,
         "is_unknown_place": False}
        for i in range(20)
    ]  # fmt: skip
    doc = funnel_document(units, "completion", "pharmacy", Disclosure(5), "2025-06-30")
    assert doc["national"]["rate"] == 0.525
    assert doc["phi"] == pytest.approx(0.0251, abs=1e-4) and doc["phi_applied"] is False
    p19 = doc["units"][-1]
    assert p19["unit"] == "P19" and p19["outside_95"] and not p19["outside_998"]
    assert p19["upper_95"] == 0.8345
    assert doc["outside_998"] == []


def test_funnel_csv_and_bad_arguments(db, tmp_path):
    out = tmp_path / "funnel.csv"
    status, _ = run_cli(
        "--db", str(db), "funnel", "--measure", "early_delivery", "--by", "province",
        "--as-of", "2025-06-30", "--format", "csv", "--output", str(out), "--no-suppress",
    )  # fmt: skip
    assert status == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("as_of,measure,by,national_rate,phi,phi_applied,unit,name,cases")
    # 3 provinces (unknown is not a unit); p = 0: limits collapse to 0, z undefined.
    assert len(lines) == 4
    assert lines[1].startswith("2025-06-30,early_delivery,province,0.0,,false,BE-BRU,")
    with pytest.raises(SystemExit):
        run_cli("--db", str(db), "funnel", "--measure", "speed", "--by", "region")


def test_funnel_csv_defuses_a_pharmacy_id_that_looks_like_a_formula(tmp_path):
    """A pseudonymised pharmacy id is text from the export: in the CSV it must not run as a
    formula in a spreadsheet (etl/exports.py writes it behind an apostrophe)."""
    lines = programme("P1", START, INIT5, [(START, RED10)], pharmacy="=1+1")
    db = build(tmp_path, lines)
    status, out = run_cli(
        "--db", str(db), "funnel", "--measure", "completion", "--by", "pharmacy",
        "--as-of", "2025-06-30", "--format", "csv", "--no-suppress",
    )  # fmt: skip
    assert status == 0
    (row,) = out.splitlines()[1:]
    assert ",'=1+1," in row
