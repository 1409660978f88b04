"""The synthetic data generator (etl/synthetic/): formats, styles, determinism, ground truth."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from etl.base.codes import INITIATION_CNK_BY_SCHEME, PROGRAMME_CNKS
from etl.ingest.columns import CANONICAL, match_headers
from etl.synthetic.billing import BAD_CNK
from etl.synthetic.calibration import RULES, Calendar
from etl.synthetic.generate import generate
from etl.synthetic.oracle import (
    WorkingDays,
    belgian_public_holidays,
    easter_sunday,
    read_lines,
    reference_cohorts,
    reference_compliance,
    reference_state_of_play,
)
from etl.synthetic.simulation import SCENARIOS
from etl.synthetic.styles import CANONICAL_ORDER, STYLES
from etl.synthetic.writers import XLSX_MAX_ROWS

SMALL = {"weekly_starts": 20.0, "start": date(2024, 1, 1), "end": date(2024, 6, 30)}
# long enough for every breach (R07 needs an event more than 360 days after a start)
LONG = {"weekly_starts": 12.0, "start": date(2023, 2, 1), "end": date(2024, 6, 30)}
INITIATIONS = set(INITIATION_CNK_BY_SCHEME.values())


def _read_text_export(path: Path, style: str) -> pl.DataFrame:
    """A CSV/CSV.gz export as text columns with canonical names."""
    st = STYLES[style]
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    text = data.decode("utf-8-sig" if st.encoding == "utf-8" else "cp1252")
    df = pl.read_csv(
        text.encode("utf-8"),
        separator=st.delimiter,
        infer_schema=False,
    )
    assert df.columns == list(st.headers)
    return df.rename(dict(zip(st.headers, CANONICAL_ORDER, strict=True)))


def _typed(df: pl.DataFrame, style: str) -> pl.DataFrame:
    """Text columns -> typed (unparseable values become null, as the loader would reject)."""
    st = STYLES[style]
    return df.with_columns(
        pl.col("delivery_date").str.strptime(pl.Date, st.date_format, strict=False),
        pl.col("quantity").cast(pl.Int64, strict=False),
        pl.col("amount_eur").str.replace(",", ".", literal=True).cast(pl.Float64),
    )


def _read_all(result, style: str) -> pl.DataFrame:
    return pl.concat([_read_text_export(p, style) for p in result.files])


def _valid(df: pl.DataFrame) -> pl.DataFrame:
    """The rows a loader accepts (SPEC §3 row checks)."""
    return df.filter(
        pl.col("patient_id").is_not_null()
        & pl.col("delivery_date").is_not_null()
        & pl.col("cnk").str.contains(r"^\d{1,7}$")
        & pl.col("quantity").is_between(-3, 3)
        & (pl.col("quantity") != 0)
    )


@pytest.fixture(scope="module")
def small_fr(tmp_path_factory):
    out = tmp_path_factory.mktemp("small_fr")
    return generate(out, seed=7, other_lines=500, **SMALL)


@pytest.fixture(scope="module")
def long_iso(tmp_path_factory):
    out = tmp_path_factory.mktemp("long_iso")
    return generate(out, seed=11, style="iso", split="single", other_lines=2000, **LONG)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small_fr):
    again = generate(tmp_path / "again", seed=7, other_lines=500, **SMALL)
    first_dir = small_fr.manifest.parent
    names = sorted(p.name for p in first_dir.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "again").iterdir())
    for name in names:
        assert (first_dir / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert again.n_lines == small_fr.n_lines

    other = generate(tmp_path / "other", seed=8, other_lines=500, **SMALL)
    assert other.files[0].read_bytes() != small_fr.files[0].read_bytes()
    assert other.ground_truth.read_bytes() != small_fr.ground_truth.read_bytes()


@pytest.mark.parametrize("file_format", ["csv.gz", "parquet", "xlsx"])
def test_binary_formats_are_deterministic(tmp_path, file_format):
    kwargs = dict(
        SMALL, weekly_starts=5.0, other_lines=100, split="single", file_format=file_format
    )
    a = generate(tmp_path / "a", seed=3, **kwargs)
    b = generate(tmp_path / "b", seed=3, **kwargs)
    assert a.files[0].read_bytes() == b.files[0].read_bytes()


def test_fr_style_bytes(small_fr):
    raw = small_fr.files[0].read_bytes()
    header = (
        "id_patient;id_pharmacie;date_de_délivrance;code_cnk;quantité;montant;mois_facturation;"
        "organisme_assureur;année_naissance;sexe;code_postal;prescripteur;libellé"
    )
    assert raw.startswith(header.encode("cp1252") + b"\r\n")
    assert b"quantit\xe9" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    df = _read_text_export(small_fr.files[0], "fr")
    assert df["delivery_date"].str.contains(r"^\d{2}/\d{2}/\d{4}$").all()
    assert df["amount_eur"].str.contains(r"^-?\d+,\d{2}$").all()
    assert df["billing_month"].str.contains(r"^\d{2}/\d{4}$").all()
    assert set(df["patient_sex"]) <= {"H", "F"}
    assert set(df["cnk"].str.len_chars()) == {7}


def test_nl_style_bytes(tmp_path):
    result = generate(tmp_path, seed=5, style="nl", other_lines=300, **SMALL)
    raw = result.files[0].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfpatient;apotheek;afleverdatum;cnk;aantal;bedrag;")
    raw.decode("utf-8")
    df = _read_all(result, "nl")
    assert df["delivery_date"].str.contains(r"^\d{2}-\d{2}-\d{4}$").all()
    assert df["amount_eur"].str.contains(r"^-?\d+,\d{2}$").all()
    assert df["billing_month"].str.contains(r"^20\d{4}$").all()
    assert set(df["patient_sex"]) <= {"M", "V"}
    assert df["label"].str.contains("Afbouwstap").any()


def test_iso_style_bytes_and_quoting(long_iso):
    raw = long_iso.files[0].read_bytes()
    assert raw.startswith(",".join(CANONICAL_ORDER).encode() + b"\n")
    assert not raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8")
    assert "é" in text
    rows = list(csv.reader(io.StringIO(text)))
    assert {len(r) for r in rows} == {13}
    assert any("," in r[12] for r in rows[1:])  # labels with commas are quoted
    df = _read_text_export(long_iso.files[0], "iso")
    assert df["delivery_date"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    assert df["amount_eur"].str.contains(r"^-?\d+\.\d{2}$").all()
    assert df["billing_month"].str.contains(r"^\d{4}-\d{2}$").all()


@pytest.mark.parametrize("style", ["fr", "nl", "iso"])
def test_headers_match_the_loader_aliases(style):
    found = match_headers(list(STYLES[style].headers))
    # The styles are tarification-office exports: no ATC column (SPEC §14, tests/test_bzra*).
    assert set(found) == set(CANONICAL) - {"atc"}


def test_gzip_is_gzip_of_the_csv(tmp_path):
    kwargs = dict(SMALL, weekly_starts=5.0, other_lines=200, split="single", style="nl")
    plain = generate(tmp_path / "csv", seed=2, **kwargs)
    packed = generate(tmp_path / "gz", seed=2, file_format="csv.gz", **kwargs)
    assert packed.files[0].name == "export.csv.gz"
    assert packed.files[0].read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.files[0].read_bytes()) == plain.files[0].read_bytes()


def test_styles_carry_the_same_lines(tmp_path):
    kwargs = dict(SMALL, weekly_starts=5.0, other_lines=100, split="single")
    fr = _typed(_read_all(generate(tmp_path / "fr", seed=4, **kwargs), "fr"), "fr")
    iso = _typed(_read_all(generate(tmp_path / "iso", seed=4, style="iso", **kwargs), "iso"), "iso")
    cols = ["patient_id", "pharmacy_id", "delivery_date", "cnk", "quantity", "amount_eur"]
    assert fr.select(cols).equals(iso.select(cols))


def test_parquet_readable(tmp_path):
    kwargs = dict(SMALL, weekly_starts=5.0, other_lines=100, file_format="parquet")
    iso = generate(tmp_path / "iso", seed=1, style="iso", split="single", **kwargs)
    df = pl.read_parquet(iso.files[0])
    assert df.columns == list(CANONICAL_ORDER)
    assert df.schema["delivery_date"] == pl.Date
    assert df.schema["amount_eur"] == pl.Float64
    assert df.height == iso.file_rows["export.parquet"]
    assert iso.broken_lines.get("missing_date") == 1  # a DATE column cannot hold "2024-02-31"
    fr = generate(tmp_path / "fr", seed=1, style="fr", **kwargs)
    assert fr.files[0].name == "export_2024-01.parquet"
    df = pl.concat([pl.read_parquet(p) for p in fr.files])
    assert df.columns == list(STYLES["fr"].headers)
    assert df["date_de_délivrance"].str.contains(r"^\d{2}/\d{2}/\d{4}$").all()


def test_xlsx_readable_and_row_limit(tmp_path):
    kwargs = dict(SMALL, weekly_starts=5.0, file_format="xlsx", split="single")
    result = generate(tmp_path / "x", seed=1, style="nl", other_lines=100, **kwargs)
    import fastexcel

    sheet = fastexcel.read_excel(str(result.files[0])).load_sheet(0, dtypes="string")
    df = sheet.to_polars()  # as the loader reads it: every cell as text
    assert df.columns == list(STYLES["nl"].headers)
    assert df.height == result.file_rows["export.xlsx"]
    dates = df["afleverdatum"]
    assert dates.str.contains(r"^\d{4}-\d{2}-\d{2} 00:00:00$").sum() == df.height - 1
    assert dates.str.contains(r"^31-02-\d{4}$").sum() == 1  # the unreadable date, as text
    assert df["bedrag"].str.contains(r"^-?\d+(\.\d{1,2})?$").all()  # real numbers
    assert df["cnk"].str.contains(r"^\d{7}$|^55219X0$").all()  # text cells
    with pytest.raises(ValueError, match="XLSX"):
        generate(tmp_path / "big", seed=1, other_lines=XLSX_MAX_ROWS, **kwargs)
    assert not (tmp_path / "big").exists() or not list((tmp_path / "big").iterdir())


def test_dates_never_after_end_or_today(tmp_path):
    result = generate(tmp_path / "a", seed=9, weekly_starts=10.0, start=date(2024, 1, 1),
                      today=date(2024, 5, 17))  # fmt: skip
    args = json.loads(result.manifest.read_text())["arguments"]
    assert args["end"] == "2024-04-30"  # default: last day of the previous month
    df = _typed(_read_all(result, "fr"), "fr")
    assert df["delivery_date"].max() <= date(2024, 4, 30)
    assert df["billing_month"].max() == "04/2024"

    result = generate(tmp_path / "b", seed=9, weekly_starts=10.0, start=date(2024, 1, 1),
                      end=date(2030, 1, 1), today=date(2024, 5, 17))  # fmt: skip
    df = _typed(_read_all(result, "fr"), "fr")
    assert df["delivery_date"].max() <= date(2024, 5, 17)
    with pytest.raises(ValueError):
        generate(tmp_path / "c", start=date(2019, 6, 1), end=date(2019, 12, 31))


def test_month_split_files(small_fr):
    names = [p.name for p in small_fr.files]
    assert names == [f"export_2024-{m:02d}.csv" for m in range(1, 7)]
    for path in small_fr.files:
        df = _read_text_export(path, "fr")
        month = path.stem.split("_")[1]
        assert set(df["billing_month"]) == {f"{month[5:]}/{month[:4]}"}
        assert small_fr.file_rows[path.name] == df.height


def test_calibration_on_a_larger_run(tmp_path):
    end = date(2024, 6, 30)
    result = generate(tmp_path, seed=20250702, weekly_starts=60.0, start=date(2023, 2, 1), end=end)
    truth = pl.read_csv(result.ground_truth, try_parse_dates=True)
    weeks = (end - date(2023, 2, 1)).days / 7
    assert 55 <= truth.height / weeks <= 65
    share = dict(truth["scheme"].value_counts(normalize=True).iter_rows())
    assert share[10] == pytest.approx(0.56, abs=0.025)
    assert share[5] == pytest.approx(0.30, abs=0.025)
    assert share[7] == pytest.approx(0.14, abs=0.02)
    caps = dict(truth["capsules_per_step"].value_counts(normalize=True).iter_rows())
    assert caps[10] == pytest.approx(0.25, abs=0.025)
    assert caps[30] == pytest.approx(0.40, abs=0.025)
    # programmes started early enough to be over by `end`
    early = truth.filter(pl.col("start_date") < date(2023, 7, 1))
    assert (early["outcome"] == "in_progress").mean() < 0.01
    assert (early["outcome"] == "completed").mean() == pytest.approx(0.60, abs=0.04)
    stabs = early["n_stabilisation_steps"]
    assert (stabs == 1).mean() == pytest.approx(0.22, abs=0.03)
    assert (stabs == 2).mean() == pytest.approx(0.06, abs=0.02)
    assert early["has_follow_up"].mean() == pytest.approx(0.23, abs=0.03)
    lines = _typed(_read_all(result, "fr"), "fr")
    assert (lines["patient_sex"] == "F").mean() == pytest.approx(0.64, abs=0.03)
    assert (lines["delivery_date"].dt.weekday() == 7).sum() == 0  # never on a Sunday


def test_other_lines_are_exactly_added(tmp_path):
    kwargs = dict(SMALL, weekly_starts=8.0, split="single")
    base = _read_all(generate(tmp_path / "a", seed=12, **kwargs), "fr")
    result = generate(tmp_path / "b", seed=12, other_lines=3000, **kwargs)
    both = _read_all(result, "fr")
    assert result.n_other_lines == 3000
    assert both.height == base.height + 3000
    added = Counter(both.rows()) - Counter(base.rows())
    assert sum(added.values()) == 3000
    cnks = [row[3] for row in added.elements()]
    assert all(re.fullmatch(r"\d{7}", c) and c not in PROGRAMME_CNKS for c in cnks)
    programme = both.filter(pl.col("cnk").is_in(list(PROGRAMME_CNKS) + [BAD_CNK]))
    assert programme.height == result.n_lines


def test_ground_truth_is_the_oracles_programmes(long_iso):
    """Each simulated programme is one programme as SPEC v2 §5 reads the lines: repeat
    initiations open nothing, repeat programmes start after a completion or a stop.

    The ground truth holds every programme as drawn; the exports hold the lines billed by the
    month of `end` (June 2024), a line being billed up to 3 months after its delivery month:
    the months up to March 2024 are complete, and compared whole; later ones miss lines."""
    lines = _valid(_typed(_read_all(long_iso, "iso"), "iso"))
    truth = pl.read_csv(long_iso.ground_truth, try_parse_dates=True)
    assert truth.height == long_iso.n_programmes
    inits = lines.filter(pl.col("cnk").is_in(list(INITIATIONS)))
    assert inits["quantity"].sum() < truth["n_initiations"].sum()  # some not billed yet
    complete = date(2024, 4, 1)
    inits_before = inits.filter(pl.col("delivery_date") < complete)["quantity"].sum()
    assert inits_before > truth.filter(pl.col("start_date") < complete).height  # repeats
    reading = read_lines(lines)
    found = sorted(
        (p.patient, date.fromordinal(p.start), p.scheme, p.number > 1)
        for p in reading.programmes
        if date.fromordinal(p.start) < complete
    )
    expected = sorted(
        truth.filter(pl.col("start_date") < complete)
        .select("patient_id", "start_date", "scheme", "is_repeat_programme")
        .iter_rows()
    )
    assert found == expected
    assert truth["is_repeat_programme"].sum() >= 2


def test_every_scenario_is_there(long_iso):
    manifest = json.loads(long_iso.manifest.read_text())
    counts = manifest["counts"]
    assert set(counts["scenarios"]) == set(SCENARIOS)
    assert counts["patients_under_18"] >= 1
    assert counts["patients_exactly_18"] >= 1
    assert counts["birth_year_corrections"] >= 1
    truth = pl.read_csv(long_iso.ground_truth, try_parse_dates=True)
    repeats = truth.filter(pl.col("is_repeat_programme"))
    assert (
        repeats["patient_id"]
        .is_in(truth.filter(pl.col("scenario") == "repeated_after_stop")["patient_id"].implode())
        .any()
    )
    assert (
        repeats["patient_id"]
        .is_in(
            truth.filter(pl.col("scenario") == "repeated_after_completion")["patient_id"].implode()
        )
        .any()
    )
    lines = _read_all(long_iso, "iso")
    assert lines["prescriber_id"].is_null().any()  # R15 needs both prescribers known
    assert lines["prescriber_id"].drop_nulls().str.contains(r"^DR[0-9A-F]{10}$").all()


def test_new_scenarios_in_a_small_seeded_run(tmp_path):
    result = generate(tmp_path, seed=3, weekly_starts=8.0, start=date(2023, 2, 1),
                      end=date(2024, 6, 30))  # fmt: skip
    manifest = json.loads(result.manifest.read_text())
    assert set(manifest["counts"]["scenarios"]) == set(SCENARIOS)
    assert all(manifest["expected_compliance_flags"][r] >= 1 for r in RULES)


def test_patient_ids_are_pseudonyms(long_iso):
    df = _read_all(long_iso, "iso")
    ids = df["patient_id"].drop_nulls()
    assert ids.str.contains(r"^P[0-9A-F]{16}$").all()
    digits = ids.str.replace_all(r"[.\- ]", "")
    assert not digits.str.contains(r"^\d{11}$").any()
    assert df["pharmacy_id"].str.contains(r"^PH[0-9A-F]{10}$").all()


def test_broken_lines_match_the_manifest(long_iso):
    df = _typed(_read_all(long_iso, "iso"), "iso")
    manifest = json.loads(long_iso.manifest.read_text())
    found = Counter()
    found["missing_patient"] = df["patient_id"].is_null().sum()
    found["unreadable_date"] = df["delivery_date"].is_null().sum()
    found["bad_cnk"] = (~df["cnk"].str.contains(r"^\d{1,7}$")).sum()
    for q in (0, 5):
        found[f"quantity_{q}"] = (df["quantity"] == q).sum()
    assert {k: v for k, v in found.items() if v} == manifest["broken_lines"]
    assert sum(manifest["broken_lines"].values()) >= 4
    # broken lines are never initiations
    broken = df.filter(
        pl.col("patient_id").is_null()
        | pl.col("delivery_date").is_null()
        | ~pl.col("quantity").is_between(-3, 3)
        | (pl.col("quantity") == 0)
    )
    assert not broken["cnk"].is_in(list(INITIATIONS)).any()


def test_compliance_breaches_are_all_there(long_iso):
    manifest = json.loads(long_iso.manifest.read_text())
    injected = manifest["breaches_injected"]
    expected = manifest["expected_compliance_flags"]
    assert all(injected[r] >= 1 for r in RULES), injected
    # the only flags not injected on purpose: R11 steps are also unassigned (R02), and the
    # second unit of a quantity-2 reduction line is early (R08); and in the last months
    # (billed up to 3 months late: from April 2024 on, the export ending in June 2024), steps
    # whose programme's opening initiation is not billed yet are unassigned (R02) as well
    lines = _valid(_typed(_read_all(long_iso, "iso"), "iso"))
    incomplete = date(2024, 4, 1).toordinal()
    truth = pl.read_csv(long_iso.ground_truth, try_parse_dates=True)
    with_programme = set(truth["patient_id"])
    late_unassigned = [
        e
        for e in read_lines(lines).events
        if "R02" in e.flags and "R11" not in e.flags and e.patient in with_programme
    ]
    assert all(e.day >= incomplete for e in late_unassigned)
    incidental = {
        "R02": injected["R11"] + len(late_unassigned),
        "R08": manifest["counts"]["quantity_2_lines"],
    }
    assert expected == {r: injected[r] + incidental.get(r, 0) for r in RULES}
    assert manifest["counts"]["quantity_2_lines"] >= 1
    assert manifest["counts"]["corrections"] >= 1
    assert manifest["counts"]["unmatched_corrections"] >= 1
    # the same counts from the files as written
    assert reference_compliance(lines) == expected


def test_corrections_net_out(long_iso):
    lines = _valid(_typed(_read_all(long_iso, "iso"), "iso"))
    programme = lines.filter(pl.col("cnk").is_in(list(PROGRAMME_CNKS)))
    keys = ["patient_id", "pharmacy_id", "delivery_date", "cnk"]
    net = programme.group_by(keys).agg(pl.col("quantity").sum())
    manifest = json.loads(long_iso.manifest.read_text())
    assert (net["quantity"] < 0).sum() == manifest["counts"]["unmatched_corrections"]
    assert (programme["quantity"] == -1).sum() == (
        manifest["counts"]["corrections"]
        + manifest["counts"]["unmatched_corrections"]
        + manifest["counts"]["birth_year_corrections"]
    )
    events = manifest["counts"]["events"]
    assert net.filter(pl.col("quantity") > 0)["quantity"].sum() == sum(events.values())


def test_calendar_steps_back_over_sundays_and_holidays():
    cal = Calendar(date(2024, 1, 1), date(2024, 12, 31))
    wed = date(2024, 7, 24).toordinal()  # Sunday 21 July is also the national holiday
    assert date.fromordinal(cal.back(wed, 3)) == date(2024, 7, 20)  # Tue, Mon, Sat
    assert date.fromordinal(cal.back(date(2024, 4, 3).toordinal(), 3)) == date(2024, 3, 29)


def test_stale_exports_are_removed(tmp_path):
    (tmp_path / "export_2020-01.csv").write_text("old")
    (tmp_path / "notes.txt").write_text("keep")
    result = generate(tmp_path, seed=1, weekly_starts=3.0, start=date(2024, 1, 1),
                      end=date(2024, 1, 31))  # fmt: skip
    assert not (tmp_path / "export_2020-01.csv").exists()
    assert (tmp_path / "notes.txt").exists()
    assert result.removed_stale == [tmp_path / "export_2020-01.csv"]


def test_cli_generate(tmp_path, capsys):
    from etl.cli import main

    status = main(["generate", "--output", str(tmp_path), "--seed", "5", "--start", "2024-01-01",
                   "--end", "2024-02-29", "--weekly-starts", "5", "--format", "csv.gz",
                   "--style", "nl", "--other-lines", "50", "--split", "single"])  # fmt: skip
    assert status == 0
    assert (tmp_path / "export.csv.gz").exists()
    assert (tmp_path / "ground_truth_programmes.csv").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["arguments"]["other_lines"] == 50
    assert "programmes" in capsys.readouterr().out


# --- the oracle (etl/synthetic/oracle.py), worked out by hand from SPEC v2 ----------------------

I5, I7, I10 = INITIATION_CNK_BY_SCHEME[5], INITIATION_CNK_BY_SCHEME[7], INITIATION_CNK_BY_SCHEME[10]
R10, R20, R30 = "5521984", "5521992", "5522008"
STAB, FOLLOW_UP = "5522016", "5522024"


def _line(patient, day, cnk, qty=1, *, pharmacy="PH1", birth="1970", prescriber="DR1"):
    return {
        "patient_id": patient, "pharmacy_id": pharmacy, "delivery_date": date.fromisoformat(day),
        "cnk": cnk, "quantity": qty, "patient_birth_year": birth, "prescriber_id": prescriber,
    }  # fmt: skip


def _read(*lines, as_of=None):
    return read_lines(pl.DataFrame(list(lines)), as_of=as_of)


def _flagged(reading, rule):
    """(patient, date, cnk) of each event the rule flags."""
    return sorted(
        (e.patient, date.fromordinal(e.day).isoformat(), e.cnk)
        for e in reading.events
        if rule in e.flags
    )


def _programmes(reading):
    return [
        (p.patient, p.number, date.fromordinal(p.start).isoformat(), p.scheme, p.status)
        for p in reading.programmes
    ]


def test_oracle_working_days_are_the_specs_and_the_calendars():
    assert easter_sunday(2024) == date(2024, 3, 31) and easter_sunday(2025) == date(2025, 4, 20)
    assert sorted(belgian_public_holidays(2025)) == [
        date(2025, 1, 1), date(2025, 4, 21), date(2025, 5, 1), date(2025, 5, 29),
        date(2025, 6, 9), date(2025, 7, 21), date(2025, 8, 15), date(2025, 11, 1),
        date(2025, 11, 11), date(2025, 12, 25),
    ]  # fmt: skip
    # the oracle's reading of the SPEC agrees with the simulation's calendar (holidays package)
    cal, working = Calendar(date(2023, 1, 1), date(2026, 12, 31)), WorkingDays()
    for day in range(date(2023, 1, 8).toordinal(), date(2026, 12, 31).toordinal()):
        assert cal.back(day, 3) == working.back(day, 3)


def test_oracle_initiation_on_the_grace_limit_is_a_repeat_initiation():
    # A 10-capsule step on Mon 8 Jan 2024 covers until Wed 17 Jan; with grace_days 30 the
    # programme still runs on Fri 16 Feb (17 Jan + 30) and is stopped by Sat 17 Feb.
    reading = _read(
        _line("A", "2024-01-08", I5), _line("A", "2024-01-08", R10),
        _line("A", "2024-02-16", I7),  # on the limit: a repeat initiation, scheme unchanged
        _line("B", "2024-01-08", I5), _line("B", "2024-01-08", R10),
        _line("B", "2024-02-17", I7),  # one day after: a repeat programme
    )  # fmt: skip
    assert reading.as_of == date(2024, 2, 17)
    assert _programmes(reading) == [
        ("A", 1, "2024-01-08", 5, "stopped"),  # as of 17 Feb: 17 Feb > 17 Jan + 30
        ("B", 1, "2024-01-08", 5, "stopped"),
        ("B", 2, "2024-02-17", 7, "in_progress"),
    ]
    a = reading.programmes[0]
    assert date.fromordinal(a.covered_until) == date(2024, 1, 17) == date.fromordinal(a.stop)
    assert len(a.events) == 3
    assert _flagged(reading, "R01") == [("A", "2024-02-16", I7), ("B", "2024-02-17", I7)]
    assert _flagged(reading, "R13") == [("A", "2024-02-16", I7)]
    # without any step, the limit is start + grace_days
    reading = _read(_line("C", "2024-01-08", I5), _line("C", "2024-02-07", I5),
                    _line("D", "2024-01-08", I5), _line("D", "2024-02-08", I5))  # fmt: skip
    assert [(p.patient, p.number) for p in reading.programmes] == [("C", 1), ("D", 1), ("D", 2)]


def test_oracle_reinitiation_on_the_completion_day_and_the_day_after():
    steps = ("2024-03-04", "2024-03-14", "2024-03-24", "2024-04-03", "2024-04-13")
    lines = [_line(p, "2024-03-04", I5) for p in "CD"]
    lines += [_line(p, day, R10) for p in "CD" for day in steps]
    # on the completion day the initiation comes before the last step (SPEC §4.3): the
    # programme is not completed before that day, so it runs; the day after, it is completed
    lines += [_line("C", "2024-04-13", I5), _line("D", "2024-04-14", I5)]
    reading = _read(*lines)
    assert _programmes(reading) == [
        ("C", 1, "2024-03-04", 5, "completed"),
        ("D", 1, "2024-03-04", 5, "completed"),
        ("D", 2, "2024-04-14", 5, "in_progress"),
    ]
    assert date.fromordinal(reading.programmes[0].completion) == date(2024, 4, 13)
    assert reading.counts() == dict.fromkeys(RULES, 0) | {"R01": 2}

    # SPEC §6 for April as of 14 April: D's repeat programme counts as an initiation
    april = reference_state_of_play(reading, "2024-04")
    five = april["schemes"]["5"]
    assert april["provisional"] is True
    assert (five["patients_initiated"], five["patients_initiated_repeat"]) == (1, 1)
    assert five["patients_initiated_cumulative"] == 2  # one per patient: C and D
    assert five["initiations_billed"] == 2  # C's repeat initiation, D's second programme
    assert five["reduction_steps_delivered"] == 4
    assert five["programmes_completed"] == 2
    assert five["active_programmes_end_of_month"] == 1
    # interview 23.24 (2.2193 x 10.47), preparation 15.71 (2.2193 x 7.08)
    assert five["fees_estimated_eur"] == pytest.approx(2 * 23.24 + 4 * 15.71)
    assert five["fees_flagged_eur"] == pytest.approx(2 * 23.24)  # R01, and a repeat programme
    assert april["schemes"]["total"]["patients_initiated"] == 1
    assert reference_state_of_play(reading, "2024-03")["schemes"]["5"]["patients_initiated"] == 2


def test_oracle_early_delivery_three_working_days_around_a_public_holiday():
    # a 20-capsule step delivered Wed 31 Jul 2024 ends Mon 19 Aug; three working days back:
    # Sat 17, Fri 16, (Thu 15 Aug is a public holiday) Wed 14 Aug
    reading = _read(
        _line("E", "2024-07-31", I5), _line("E", "2024-07-31", R20),
        _line("E", "2024-08-14", R20),  # on the earliest day: allowed
        _line("F", "2024-07-31", I5), _line("F", "2024-07-31", R20),
        _line("F", "2024-08-13", R20),  # one working day earlier: R08
    )  # fmt: skip
    assert _flagged(reading, "R08") == [("F", "2024-08-13", R20)]


def test_oracle_early_collection_accumulates():
    # 10-capsule steps collected every Monday: step ends 11, 21 Sep, 1 Oct (carried forward);
    # the earliest days for steps 2, 3, 4 are Sat 7, Wed 18 and Fri 27 Sep
    days = ("2024-09-02", "2024-09-09", "2024-09-16", "2024-09-23")
    reading = _read(_line("G", days[0], I5), *(_line("G", d, R10) for d in days))
    assert _flagged(reading, "R08") == [("G", "2024-09-16", R10), ("G", "2024-09-23", R10)]
    ends = [date.fromordinal(e.step_end) for e in reading.events if e.kind == "reduction"]
    assert ends == [date(2024, 9, 11), date(2024, 9, 21), date(2024, 10, 1), date(2024, 10, 11)]


def test_oracle_coverage_ending_on_day_360_and_361_from_the_first_step():
    # D1 = Tue 2 Jan 2024, the first reduction (not the initiation): day 360 is D1 + 359 = 26 Dec
    reading = _read(
        _line("H", "2023-12-13", I10), _line("H", "2024-01-02", R30),
        _line("H", "2024-11-27", R30),  # starts D1 + 330, ends D1 + 359: allowed
        _line("H", "2024-12-26", STAB),  # delivered D1 + 359: allowed
        _line("I", "2024-01-02", I10), _line("I", "2024-01-02", R30),
        _line("I", "2024-11-28", R30),  # ends D1 + 360: R07
        _line("J", "2024-01-02", I10), _line("J", "2024-01-02", R30),
        _line("J", "2024-12-27", STAB),  # delivered D1 + 360: R07
    )  # fmt: skip
    assert _flagged(reading, "R07") == [("I", "2024-11-28", R30), ("J", "2024-12-27", STAB)]


def test_oracle_minor_by_birth_year_17_and_18():
    reading = _read(
        _line("L", "2025-03-03", I5, 2, birth="2008"),  # 2025 - 2008 = 17: the opening only
        _line("M", "2025-03-03", I5, birth="2007"),  # 18
        # the group's largest birth year counts: a line re-billed with 2008
        _line("N", "2025-03-03", I5, birth="2007"), _line("N", "2025-03-03", I5, -1, birth="2007"),
        _line("N", "2025-03-03", I5, birth="2008"),
        # an empty birth year does not count
        _line("O", "2025-03-03", I5, birth="2007"), _line("O", "2025-03-03", I5, birth=""),
        _line("O", "2025-03-03", I5, -1, birth=""),
    )  # fmt: skip
    assert _flagged(reading, "R14") == [("L", "2025-03-03", I5), ("N", "2025-03-03", I5)]
    assert _flagged(reading, "R01") == [("L", "2025-03-03", I5)]


def test_oracle_same_day_initiations_set_the_scheme_and_the_pharmacy():
    steps = [f"2024-05-{d:02d}" for d in (6, 16, 26)] + ["2024-06-05", "2024-06-15"]
    steps += ["2024-06-25", "2024-07-05", "2024-07-15", "2024-07-25", "2024-08-04"]
    reading = _read(
        _line("P", "2024-05-06", I10), _line("P", "2024-05-06", I5),  # 5 and 10 the same day
        *(_line("P", d, R10) for d in steps),
        _line("Q", "2024-05-06", I7, pharmacy="PH2"), _line("Q", "2024-05-06", I7),
        _line("Q", "2024-05-06", R10, pharmacy="PH2"),
    )  # fmt: skip
    p, q = reading.programmes
    assert (p.scheme, p.status, date.fromordinal(p.completion)) == (
        10,
        "completed",
        date(2024, 8, 4),
    )
    assert p.opening.cnk == I5  # the first initiation in the order of SPEC §4.3
    assert (q.pharmacy, q.opening.pharmacy) == ("PH2", "PH1")  # the last one's pharmacy
    assert _flagged(reading, "R13") == [("P", "2024-05-06", I5)]
    assert _flagged(reading, "R01") == [("P", "2024-05-06", I10), ("Q", "2024-05-06", I7)]
    assert _flagged(reading, "R06") == [("Q", "2024-05-06", I7)]
    assert _flagged(reading, "R03") == []


def test_oracle_follow_up_after_completion_and_prescriber_changes():
    steps = ("2024-03-04", "2024-03-14", "2024-03-24", "2024-04-03", "2024-04-13")
    reading = _read(
        _line("S", "2024-03-04", I5),
        *(
            _line("S", d, R10, prescriber=pr)
            for d, pr in zip(steps, ["DR1", "DR1", "DR2", "", "DR2"], strict=True)
        ),
        _line("S", "2024-04-13", FOLLOW_UP, prescriber=""),  # on the completion date
        _line("S", "2024-04-15", FOLLOW_UP),  # after it: R12 (and a second one: R05)
        _line("T", "2024-03-04", I5, prescriber=""),  # no initiating prescriber: no R15
        _line("T", "2024-03-04", R10, prescriber="DR2"),
    )  # fmt: skip
    assert _flagged(reading, "R12") == [("S", "2024-04-15", FOLLOW_UP)]
    assert _flagged(reading, "R05") == [("S", "2024-04-15", FOLLOW_UP)]
    assert _flagged(reading, "R15") == [("S", "2024-03-24", R10), ("S", "2024-04-13", R10)]


def test_oracle_unassigned_and_before_programme_start():
    reading = _read(
        _line("U", "2023-01-20", R10),  # before programme_start and before any programme
        _line("U", "2023-02-06", I5), _line("U", "2023-02-06", R10),
        _line("U", "2023-02-06", STAB, 1),
    )  # fmt: skip
    counts = reading.counts()
    assert (counts["R02"], counts["R11"], counts["R01"], counts["R08"]) == (1, 1, 0, 1)
    cohorts = reference_cohorts(reading)
    assert cohorts == [
        {"initiation_month": "2023-02", "scheme": "5", "programmes": 1, "completed": 0,
         "stopped": 0, "in_progress": 1, "completion_rate": None, "stabilisation_rate": 1.0,
         "follow_up_rate": None},
    ]  # fmt: skip
