"""National register numbers outside what the refusal rule counts (issue 19, item 8).

SPEC §3 refuses a file when at least 20 % of the distinct patient_id values (and at least 5)
are Belgian national register numbers (NRN: 11 digits once `.`, `-` and spaces are removed,
check digits 97 - (first 9 digits mod 97), or with "2" before them for births from 2000). That
rule stays. Everything else that looks like an NRN loads, with a warning in the load summary
and in the ledger (`loads.warnings`) naming the column and the count: NRNs in another column
(pharmacy, prescriber, any other text column of the file: not the ones parsed as dates,
numbers or codes), NRNs written with a `BE` prefix or with
slashes, and patient NRNs below the refusal threshold.
"""

from __future__ import annotations

import json

from tests.conftest import CANONICAL_HEADER, query, write_delimited

INIT5 = "5521950"


def nrn(first9: str) -> str:
    """An NRN with its check digits (SPEC §3), born before 2000."""
    return first9 + f"{97 - int(first9) % 97:02d}"


def nrn_2000(first9: str) -> str:
    """An NRN of someone born from 2000 ("2" before the 9 digits)."""
    return first9 + f"{97 - int('2' + first9) % 97:02d}"


FIVE = [nrn("850730123"), nrn("920101456"), nrn("850730124"), nrn_2000("050315789"),
        nrn("610912001")]  # fmt: skip


def row(patient: str, pharmacy: str = "PH1", day: str = "14/03/2025") -> list[str]:
    return [patient, pharmacy, day, INIT5, "1", "1"]


def warnings_of(db) -> list[str | None]:
    return [r[0] for r in query(db, "select warnings from loads order by load_id")]


def test_patient_nrns_below_the_threshold_warn(cli, db, tmp_path):
    """5 NRNs among 26 distinct patient ids: 5/26 = 19.2 % < 20 %, so the file loads (SPEC
    §3), with a warning naming patient_id and "5 of 26" (19 %). The 26 lines are all stored."""
    ids = FIVE + [f"P{i}" for i in range(21)]
    path = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, [row(p) for p in ids])
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0
    text = " ".join(out.split())
    assert "warning" in text and "patient_id" in text and "5 of 26" in text and "19 %" in text
    assert query(db, "select count(*) from billing_lines") == [(26,)]
    (warning,) = warnings_of(db)
    assert "patient_id" in warning and "5 of 26" in warning


def test_patient_nrns_at_the_threshold_are_still_refused(cli, db, tmp_path):
    """5 of 25 distinct ids (20 %): refused, as SPEC §3 says; nothing is loaded."""
    ids = FIVE + [f"P{i}" for i in range(20)]
    path = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, [row(p) for p in ids])
    status, out, _ = cli("--db", db, "load", path)
    assert status == 1 and "national register numbers" in out
    assert query(db, "select count(*) from loads") == [(0,)]


def test_prefixed_and_slashed_patient_nrns_warn_but_do_not_count_for_refusal(cli, db, tmp_path):
    """All 6 distinct patient ids are NRNs written as `BE85073012345`, `BE 92.01.01-456.xx`,
    `85/07/30/124-xx`: SPEC §3 removes only `.`, `-` and spaces, so they are not NRNs for the
    refusal rule (0 of 6): the file loads. The warning names patient_id and counts 6 of 6."""
    ids = [
        "BE" + FIVE[0],
        "BE " + FIVE[1][:2] + "." + FIVE[1][2:4] + "." + FIVE[1][4:6] + "-" + FIVE[1][6:9]
        + "." + FIVE[1][9:],
        FIVE[2][:2] + "/" + FIVE[2][2:4] + "/" + FIVE[2][4:6] + "/" + FIVE[2][6:9] + "-"
        + FIVE[2][9:],
        "be" + FIVE[3],
        FIVE[4][:6] + "/" + FIVE[4][6:],
        "BE-" + nrn("700101001"),
    ]  # fmt: skip
    path = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, [row(p) for p in ids])
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0
    text = " ".join(out.split())
    assert "patient_id" in text and "6 of 6" in text
    assert "patient_id" in warnings_of(db)[0]


def test_nrns_in_other_columns_warn_with_the_column(cli, db, tmp_path):
    """Pharmacy, prescriber and an unmapped column `Remarque` carry NRNs on kept lines:
    pharmacy 2 distinct NRNs (one written with dots), prescriber 3 (one `BE`-prefixed; one
    written plain and with slashes, the same number once), Remarque 1; patient ids are
    pseudonyms. Counts are of distinct numbers once the prefix and separators are removed. The file loads (10 lines) and the warning
    names each column with its count; `cnk`, dates and amounts are not mistaken for NRNs."""
    header = CANONICAL_HEADER + ["prescriber_id", "Remarque"]
    dotted = (
        FIVE[1][:2]
        + "."
        + FIVE[1][2:4]
        + "."
        + FIVE[1][4:6]
        + "-"
        + FIVE[1][6:9]
        + "."
        + FIVE[1][9:]
    )
    rows = [
        row(f"P{i}", pharmacy) + [prescriber, note]
        for i, (pharmacy, prescriber, note) in enumerate(
            [
                (FIVE[0], "BE" + FIVE[2], ""),
                (dotted, FIVE[3], FIVE[4]),
                (FIVE[0], FIVE[3][:6] + "/" + FIVE[3][6:], "ok"),
                ("PH2", "DR1", ""),
                ("PH2", nrn("750505050"), ""),
                ("PH2", "DR1", "12345678901"),  # 11 digits, wrong check digits: not an NRN
                ("PH2", "DR1", ""),
                ("PH2", "DR1", ""),
                ("PH2", "DR1", ""),
                ("PH2", "DR1", ""),
            ]
        )
    ]  # fmt: skip
    assert nrn("123456789") != "12345678901" and nrn_2000("123456789") != "12345678901"
    path = write_delimited(tmp_path / "a.csv", header, rows)
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0
    assert query(db, "select count(*) from billing_lines") == [(10,)]
    text = " ".join(out.split())
    (warning,) = warnings_of(db)
    for shown in (text, warning):
        assert "pharmacy_id: 2 distinct value" in shown, shown
        assert "prescriber_id: 3 distinct value" in shown, shown
        assert "'Remarque': 1 distinct value" in shown, shown
        assert "patient_id" not in shown and "cnk" not in shown
    status, out, _ = cli("--db", db, "loads", "--format", "json")
    assert "pharmacy_id: 2 distinct value" in json.loads(out)[0]["warnings"]


def test_a_clean_file_has_no_warning(cli, db, tmp_path):
    """Pseudonyms everywhere: no warning, `warnings` null in the ledger."""
    path = write_delimited(tmp_path / "a.csv", CANONICAL_HEADER, [row(f"P{i}") for i in range(5)])
    status, out, _ = cli("--db", db, "load", path)
    assert status == 0 and "warning" not in out.lower()
    assert warnings_of(db) == [None]


def test_the_upload_summary_names_the_columns_in_the_readers_language(db, tmp_path):
    """The dashboard's upload summary (data page) shows the same warning from the catalogues:
    prescriber_id with its 2 distinct numbers, in French and Dutch words, no English."""
    from dashboard.app import create_app
    from etl.base.warehouse import connect
    from etl.ingest.load import load_paths

    header = CANONICAL_HEADER + ["prescriber_id"]
    rows = [row(f"P{i}") + [p] for i, p in enumerate([FIVE[0], FIVE[1], "DR1", FIVE[0]])]
    path = write_delimited(tmp_path / "a.csv", header, rows)
    con = connect(db)
    try:
        (outcome,) = load_paths(con, [path])
    finally:
        con.close()
    assert outcome.summary.nrn_columns == [("prescriber_id", 2)]
    create_app(db)
    # From dashboard.ui, not the page module: importing a page by its package name beside the
    # app's own import of it registers its path twice (Dash refuses the next app's pages).
    from dashboard.ui import nrn_notes

    french = str(nrn_notes(outcome.summary, "fr")[0].children)
    dutch = str(nrn_notes(outcome.summary, "nl")[0].children)
    assert "registre national" in french and "prescriber_id (2)" in french
    assert "rijksregisternummers" in dutch and "prescriber_id (2)" in dutch
