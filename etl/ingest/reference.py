"""The product reference (SPEC v2 §14): CNK -> ATC, substance, strength, units per pack.

A BZRA line's ATC comes from the export's `atc` column or, failing that, from this reference by
CNK, so it is loaded with `benzo-monitor reference load FILE` before the exports that need it
(tarification-office exports carry no ATC). A file is CSV (any delimiter the exports may use,
UTF-8 or Windows-1252, optionally gzip), Parquet or XLSX, with a header row; headers match like
the exports' (case, accents, spaces, `_`, `-` and `.` ignored). Every row is checked; one bad row
refuses the whole file, with a message naming the lines, and the warehouse is left as it was.
Loading replaces the rows of the file's CNKs and keeps the others.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from etl.ingest.columns import header_key
from etl.ingest.read import FileRefused, open_source, remove_orphans

# canonical column -> (required, accepted headers besides its own name)
REFERENCE_COLUMNS: dict[str, tuple[bool, tuple[str, ...]]] = {
    "cnk": (True, ("code_cnk", "cnk_code")),
    "atc": (True, ("code_atc", "atc_code", "atc7")),
    "substance": (False, ("molecule", "molécule", "principe_actif", "werkzame_stof",
                          "active_substance", "dci", "inn", "stof")),
    "strength_mg": (False, ("strength", "dosage", "dose_mg", "sterkte", "sterkte_mg")),
    "units_per_pack": (False, ("units", "pack_size", "conditionnement", "unites",
                               "unités_par_conditionnement", "verpakking", "eenheden")),
}  # fmt: skip
MAX_ERRORS_SHOWN = 10
BZRA_ATC_REGEX = "N05(BA|CD|CF).*"  # SPEC §14 (etl/ingest/load.py scans with the same)


@dataclass
class ReferenceSummary:
    """What one reference file brought."""

    file_name: str
    rows: int  # products in the file
    new: int  # CNKs not in the reference before
    replaced: int  # CNKs whose row the file replaced
    bzra_products: int  # products of the file with a BZRA ATC (N05BA, N05CD, N05CF)
    earlier_loads: int  # exports loaded before: their lines of these CNKs were skipped


def _columns(headers: list[str], path: Path) -> dict[str, int]:
    table = {}
    for name, (_, aliases) in REFERENCE_COLUMNS.items():
        for alias in (name, *aliases):
            table[header_key(alias)] = name
    found: dict[str, int] = {}
    for i, header in enumerate(headers):
        name = table.get(header_key(header))
        if name and name not in found:
            found[name] = i
    missing = [n for n, (required, _) in REFERENCE_COLUMNS.items() if required and n not in found]
    if missing:
        accepted = "\n".join(
            f"  {n}: {', '.join((n, *aliases))}" for n, (_, aliases) in REFERENCE_COLUMNS.items()
        )
        shown = ", ".join(repr(h) for h in headers[:30]) or "none"
        raise FileRefused(
            f"{path}: not a product reference: column(s) missing: {', '.join(missing)}.\n"
            f"Headers found: {shown}.\nHeaders accepted (case, accents, spaces, '_', '-' and "
            f"'.' ignored):\n{accepted}"
        )
    return found


CHECKS_SQL = """
with typed as (
    select
        line_number,
        nullif(trim(cnk), '') as cnk_text,
        nullif(upper(replace(trim(atc), ' ', '')), '') as atc,
        nullif(trim(substance), '') as substance,
        nullif(trim(strength), '') as strength_text,
        try_cast(replace(trim(strength), ',', '.') as decimal(10, 3)) as strength_mg,
        nullif(trim(units), '') as units_text,
        try_cast(replace(trim(units), ',', '.') as double) as units_number
    from reference_rows
),

checked as (
    select
        *,
        case
            when cnk_text is null then 'the CNK is empty'
            when not regexp_full_match(cnk_text, '[0-9]{1,7}')
                then 'the CNK is not 1 to 7 digits: ' || cnk_text
            when atc is null then 'the ATC code is empty'
            when not regexp_full_match(atc, '[A-Z][0-9]{2}[A-Z]{2}[0-9]{2}')
                then 'the ATC code is not a 7-character ATC code (such as N05BA01): ' || atc
            when strength_text is not null and (strength_mg is null or strength_mg < 0)
                then 'the strength is not a number of mg: ' || strength_text
            when units_text is not null and (units_number is null or units_number <= 0
                    or units_number <> trunc(units_number))
                then 'the units per pack is not a whole number above 0: ' || units_text
        end as problem,
        lpad(cnk_text, 7, '0') as cnk
    from typed
),

duplicates as (
    select cnk, min(line_number) as first_line
    from checked
    where problem is null
    group by cnk
    having count(distinct atc) > 1
)

select
    checked.line_number,
    coalesce(
        checked.problem,
        case when duplicates.cnk is not null then
            'the CNK ' || checked.cnk || ' has another ATC code on line '
            || duplicates.first_line end
    ) as problem,
    checked.cnk,
    checked.atc,
    checked.substance,
    checked.strength_mg,
    case when checked.units_number is not null then checked.units_number::integer end
        as units_per_pack
from checked
left join duplicates on duplicates.cnk = checked.cnk
    and duplicates.first_line <> checked.line_number
"""


def load_reference(con: duckdb.DuckDBPyConnection, path: Path) -> ReferenceSummary:
    """Check the product file `path` and store it; raise FileRefused (warehouse unchanged)."""
    workdir = Path(tempfile.gettempdir()) / "benzo-monitor"
    remove_orphans(workdir)
    source = open_source(con, Path(path), workdir)
    try:
        if source.csv_params.get("needs_transcode"):
            raise FileRefused(
                f"{path}: the file is Windows-1252 text with characters such as dashes or "
                "curly quotes; save it as UTF-8 and load it again"
            )
        found = _columns(source.headers, Path(path))

        def column(name: str) -> str:
            if name not in found:
                return "null::varchar"
            return source.column_exprs[found[name]]

        try:
            # A table created from the scan keeps the file's order: its rowid numbers the rows.
            con.execute(
                f"""
                create or replace temp table reference_rows as
                select {column("cnk")} as cnk, {column("atc")} as atc,
                       {column("substance")} as substance, {column("strength_mg")} as strength,
                       {column("units_per_pack")} as units
                from {source.relation}
                """
            )
            con.execute(
                "create or replace temp table reference_rows as select "
                f"rowid + {source.first_line} as line_number, * from reference_rows"
            )
        except duckdb.Error as exc:
            raise FileRefused(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from exc
        if source.csv_rejects:
            bad_lines = con.execute(
                "select distinct line from load_csv_reject_errors order by line"
            ).fetchall()
            con.execute("drop table if exists load_csv_reject_errors")
            con.execute("drop table if exists load_csv_reject_scans")
            if bad_lines:
                lines = ", ".join(str(r[0]) for r in bad_lines[:MAX_ERRORS_SHOWN])
                raise FileRefused(
                    f"{path}: refused: line(s) {lines} do not split into the header's columns; "
                    "nothing was loaded"
                )
        con.execute(f"create or replace temp table reference_checked as {CHECKS_SQL}")
        n_rows, n_bad = con.execute(
            "select count(*), count(problem) from reference_checked"
        ).fetchone()
        if n_rows == 0:
            raise FileRefused(f"{path}: the file has no products")
        if n_bad:
            problems = con.execute(
                "select line_number, problem from reference_checked where problem is not null "
                f"order by line_number limit {MAX_ERRORS_SHOWN}"
            ).fetchall()
            listed = "\n".join(f"  line {line}: {problem}" for line, problem in problems)
            more = f"\n  ... and {n_bad - len(problems)} more" if n_bad > len(problems) else ""
            raise FileRefused(
                f"{path}: refused: {n_bad} of {n_rows} product row(s) fail a check; nothing was "
                f"loaded. Correct them and load the file again:\n{listed}{more}"
            )
        return _store(con, Path(path))
    finally:
        for temp in source.temp_files:
            temp.unlink(missing_ok=True)
        for name in ("reference_rows", "reference_checked"):
            con.execute(f"drop table if exists {name}")


def _store(con: duckdb.DuckDBPyConnection, path: Path) -> ReferenceSummary:
    n_rows, n_replaced, n_bzra = con.execute(
        f"""
        select
            count(distinct cnk),
            count(distinct cnk) filter (where cnk in (select cnk from product_reference)),
            count(distinct cnk) filter (where regexp_full_match(atc, '{BZRA_ATC_REGEX}'))
        from reference_checked
        """
    ).fetchone()
    earlier_loads = con.execute("select count(*) from loads").fetchone()[0]
    con.execute("begin transaction")
    try:
        con.execute(
            """
            insert or replace into product_reference
            select cnk, any_value(atc), max(substance), max(strength_mg), max(units_per_pack),
                   ?, ?
            from reference_checked group by cnk
            """,
            [path.name, dt.datetime.now()],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return ReferenceSummary(
        file_name=path.name,
        rows=n_rows,
        new=n_rows - n_replaced,
        replaced=n_replaced,
        bzra_products=n_bzra,
        earlier_loads=earlier_loads,
    )


def reference_products(con: duckdb.DuckDBPyConnection, bzra_only: bool = True) -> list[dict]:
    """The product reference's rows (BZRA and clonazepam products only by default), by ATC
    and CNK, with the decree's molecule name where the ATC is one of its 19."""
    where = (
        f"where regexp_full_match(p.atc, '{BZRA_ATC_REGEX}') or p.atc = 'N03AE01'"
        if bzra_only
        else ""
    )
    cursor = con.execute(
        f"""
        select p.cnk, p.atc, m.molecule as decree_molecule, p.substance, p.strength_mg,
               p.units_per_pack, p.file_name, p.loaded_at
        from product_reference p
        left join stg_bzra_molecules m on m.atc = p.atc
        {where}
        order by p.atc, p.cnk
        """
    )
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def decree_molecules(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """The decree's 19 molecules (sql/staging/10_stg_bzra_molecules.sql) with the number of
    products of the reference for each."""
    cursor = con.execute(
        """
        select m.molecule, m.atc, m.duration_of_action, m.max_daily_dose_mg,
               m.diazepam_factor, count(p.cnk)::integer as products
        from stg_bzra_molecules m
        left join product_reference p on p.atc = m.atc
        group by all
        order by m.molecule
        """
    )
    names = [c[0] for c in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
