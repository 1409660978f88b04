"""Issue 19, item 2: a canonical column matched by two headers is refused, not guessed.

SPEC §3 matches headers to canonical columns by alias (case, accents, spaces, `_`, `-`, `.`
ignored). `Patient` and `Patient_pseudonym` are both aliases of patient_id. Before, the first
header won silently: the names in `Patient` were stored as pseudonyms (exit 0). Now the file is
refused (exit 1, "refused:"), the message names both headers, the warehouse is unchanged (every
raw table compared row by row), and a mapping file naming one header settles it.
"""

from __future__ import annotations

from tests.conftest import CANONICAL_HEADER, query, warehouse_content, write_delimited

ROWS = [
    ["Jean Dupont", "PSEUDO-1", "PH1", "2024-03-04", "5521950", 1],
    ["Marie Peeters", "PSEUDO-2", "PH1", "2024-03-05", "5521950", 1],
]
HEADER = ["Patient", "Patient_pseudonym", "pharmacy_id", "delivery_date", "cnk", "quantity"]


def _base(db, cli, tmp_path):
    base = write_delimited(
        tmp_path / "base.csv", CANONICAL_HEADER, [["B-1", "PH9", "2024-02-01", "5521950", 1, "0"]]
    )
    assert cli("--db", db, "load", "--no-progress", base)[0] == 0
    return warehouse_content(db)


def test_two_patient_headers_are_refused_and_both_named(db, cli, tmp_path):
    before = _base(db, cli, tmp_path)
    export = write_delimited(tmp_path / "two.csv", HEADER, ROWS)
    status, out, err = cli("--db", db, "load", "--no-progress", export)
    text = " ".join((out + err).split())  # the table wraps long lines
    assert status == 1
    assert "refused:" in text
    assert "'Patient' and 'Patient_pseudonym'" in text and "patient_id" in text
    assert "Traceback" not in text
    assert warehouse_content(db) == before


def test_two_patient_columns_the_first_empty_are_refused(db, cli, tmp_path):
    """Before: every row rejected (patient missing) with exit 0. Now: refused, nothing stored."""
    before = _base(db, cli, tmp_path)
    rows = [["", pseudo, *rest] for _, pseudo, *rest in ROWS]
    export = write_delimited(tmp_path / "empty-first.csv", HEADER, rows)
    status, out, err = cli("--db", db, "load", "--no-progress", export)
    assert status == 1 and "Patient_pseudonym" in " ".join(out.split())
    assert warehouse_content(db) == before


def test_a_mapping_file_settles_which_header_is_the_patient(db, cli, tmp_path):
    """`"Patient_pseudonym" = "patient_id"`: the 2 rows load with PSEUDO-1 and PSEUDO-2 (the
    names in `Patient` are not read), 2 new lines."""
    _base(db, cli, tmp_path)
    export = write_delimited(tmp_path / "two.csv", HEADER, ROWS)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('"Patient_pseudonym" = "patient_id"\n', encoding="utf-8")
    status, out, err = cli("--db", db, "load", "--no-progress", "--mapping", mapping, export)
    assert status == 0, out + err
    assert query(db, "select rows_new from loads where file_name = 'two.csv'") == [(2,)]
    assert query(
        db, "select patient_id from billing_lines where patient_id <> 'B-1' order by 1"
    ) == [
        ("PSEUDO-1",),
        ("PSEUDO-2",),
    ]


def test_two_headers_for_an_optional_column_are_refused_too(db, cli, tmp_path):
    """`Amount` and `Montant` both mean amount_eur: which is the paid amount is not ours to guess."""
    before = _base(db, cli, tmp_path)
    export = write_delimited(
        tmp_path / "amounts.csv",
        [*CANONICAL_HEADER[:5], "Amount", "Montant"],
        [["A-1", "PH1", "2024-03-04", "5521950", 1, "0", "12,50"]],
    )
    status, out, _ = cli("--db", db, "load", "--no-progress", export)
    assert status == 1 and "'Amount' and 'Montant'" in " ".join(out.split())
    assert warehouse_content(db) == before
