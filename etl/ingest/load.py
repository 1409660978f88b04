"""Loading billing exports into the warehouse: atomic per file, idempotent, nothing lost.

One file goes through these steps (SPEC §3):
1. `etl.ingest.read.open_source` detects the format and prepares a scan of the raw text values;
2. the header is matched to the canonical columns (aliases and an optional mapping file);
3. one pass over the records, on every thread, counts them, drops other medicines (counted
   as skipped) and keeps programme lines, BZRA lines (SPEC §14: ATC under N05BA, N05CD or
   N05CF from the export's `atc` column, else from the product reference by CNK; clonazepam
   N03AE01 too, kept apart) and rows with an invalid CNK, numbered in file order;
4. `sql/load/normalise_lines.sql` checks and normalises the kept rows (line_kind programme,
   bzra or clonazepam);
5. the national-register-number check may refuse the whole file; national register numbers
   it does not count (below its threshold, written with `BE` or slashes, in other columns)
   give warnings in the summary and the ledger;
6. one transaction adds the ledger row, the new lines (programme lines to billing_lines, BZRA
   and clonazepam lines to bzra_lines) and the rejects.
A refused file raises `FileRefused` before step 6, so the warehouse is left as it was.
"""

from __future__ import annotations

import datetime as dt
import errno
import getpass
import hashlib
import json
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

import sql as sql_pkg
from etl.base import audit, publish, store
from etl.base.codes import PROGRAMME_CNKS
from etl.base.config import Config
from etl.ingest.columns import (
    CANONICAL,
    REQUIRED,
    AmbiguousColumns,
    describe_aliases,
    match_headers,
    read_mapping,
)
from etl.ingest.read import (
    MAX_LINE_BYTES,
    ExpansionLimits,
    FileRefused,
    Source,
    Utf8Stream,
    as_windows_1252,
    default_workdir,
    first_line,
    open_regular,
    open_source,
    remove_orphans,
    restore_cp1252,
    restore_cp1252_sql,
    sql_literal,
    transcode_by_stream,
)

ProgressCallback = Callable[[float], None]

REASONS = {
    "missing_required": "required value missing",
    "date_unreadable": "delivery date unreadable",
    "date_before_2020": "delivery date before 2020-01-01",
    "date_after_load_day": "delivery date after the day of loading",
    "cnk_invalid": "CNK not 1 to 7 digits",
    "quantity_not_integer": "quantity not an integer",
    "quantity_zero": "quantity is 0",
    "quantity_out_of_range": "quantity outside -3..3",
    "malformed_line": "line cannot be split into the header's columns",
    "encoding_error": "line is not valid text in the file's encoding",
    "line_too_long": "line longer than 4 MiB",
    "formula_without_value": "a formula cell without a computed value (xlsx)",
}
NRN_SHARE = 0.20
NRN_MIN_COUNT = 5
# Columns the load parses into dates, numbers or codes (a value there that is not one is a
# reject): not searched for national register numbers in other columns (patient_id has its
# own check). Every other column, text, is.
NRN_TYPED_COLUMNS = frozenset({
    "patient_id", "delivery_date", "cnk", "quantity", "amount_eur", "billing_month",
    "patient_birth_year", "patient_sex",
})  # fmt: skip


@dataclass
class LoadSummary:
    """What one accepted file brought (one row of the load ledger)."""

    load_id: int
    file_name: str
    file_sha256: str
    file_format: str
    encoding: str | None
    delimiter: str | None
    rows_read: int
    rows_new: int
    rows_present: int
    rows_skipped: int
    rows_rejected: int
    seconds: float
    previously_loaded_as: int | None = None
    rows_bzra: int = 0  # BZRA lines accepted (new + already present), SPEC §14
    rows_clonazepam: int = 0  # clonazepam lines (N03AE01), kept apart, not counted
    # The file's rejected rows by reason code (REASONS): they add up to rows_rejected.
    rejects_by_reason: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False  # a preview: counted as a load would, then rolled back (load_id 0)
    # Loaded, but worth a look: national register numbers outside the refusal rule (issue 19).
    warnings: list[str] = field(default_factory=list)
    nrn_columns: list[tuple[str, int]] = field(default_factory=list)  # (column, distinct numbers)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class FileDigest:
    """The SHA-256 of a file's bytes (the ledger's file_sha256), computed beside the load.

    By a thread that reads the file (`start`), or, when the load reads every byte of the file
    anyway (the UTF-8 copy of a Windows-1252 file), from that pass's blocks (`feeder`): the
    file is then read once instead of twice, and hashlib, which releases the GIL on large
    blocks, hashes on one core while the copy transcodes on the other. `hexdigest` waits for
    the digest; a pass that ended before the file's end (an error) is replaced by a full read,
    so the digest is always that of the whole file.
    """

    def __init__(self, path: Path):
        self.path = path
        self._sha = hashlib.sha256()
        self._fed: int | None = None  # bytes fed so far; None: not fed
        self._blocks: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._result: str | None = None

    def start(self) -> None:
        """Read and hash the file in a thread of its own."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()

    def _read(self) -> None:
        self._result = sha256_of(self.path)

    def feeder(self) -> Callable[[bytes | None], None] | None:
        """A function to call with each block of the file in order, then with None; None when
        the digest is already being computed (`start`, or a feeder given before)."""
        if self._thread is not None:
            return None
        blocks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)  # at most 8 blocks held
        self._blocks, self._fed = blocks, 0

        def consume() -> None:
            while (block := blocks.get()) is not None:
                self._sha.update(block)
                self._fed += len(block)

        self._thread = threading.Thread(target=consume, daemon=True)
        self._thread.start()
        return blocks.put

    def join(self) -> None:
        """Wait for the thread (if any) to end; a feeder not ended (its pass never ran, or
        was stopped before it began) is ended here."""
        if self._blocks is not None and self._thread is not None and self._thread.is_alive():
            self._blocks.put(None)  # (after the pass's own None, a second one stays unread)
        if self._thread is not None:
            self._thread.join()

    def hexdigest(self) -> str:
        """The file's SHA-256, in hexadecimal."""
        self.join()
        if self._result is None:
            if self._fed is not None and self._fed == self.path.stat().st_size:
                self._result = self._sha.hexdigest()
            else:  # never started, or the feeding pass stopped early
                self._result = sha256_of(self.path)
        return self._result


def _copies_whole_file(source: Source, workdir: Path) -> bool:
    """Will the load read `source` through a UTF-8 copy on disk of the whole plain file (a
    Windows-1252 file, not gzip, not streamed: etl/ingest/read.py transcode_by_stream)? Its
    blocks then give the file's digest (`FileDigest.feeder`), and it can be begun beforehand
    (`PreparedCopy`)."""
    params = source.csv_params
    return bool(
        params.get("needs_transcode")
        and not params["gzipped"]
        and not transcode_by_stream(source, workdir)
    )


class CopyCancelled(OSError):
    """A prepared copy stopped because no load will take it (an OSError: the copy then
    removes its file as after a read error, etl/ingest/read.py as_windows_1252)."""


class PreparedCopy:
    """The UTF-8 copy of a Windows-1252 file, begun before the warehouse is open (issue 20).

    `benzo-monitor load` opens the warehouse first (a new one creates its tables and views:
    0.5-0.8 s, mostly on one core) and only then reads the file, whose UTF-8 copy (Python,
    1.7 s of CPU for the 10-million-line export) runs on one core too. Begun in a thread before
    the warehouse opens, the copy runs beside it. The load takes it as it would have made it
    (`Loader.load_file`): the same copy, checked the same way, its digest made from its
    blocks, and the ledger's start and seconds counted from the moment the copy began.

    Only a plain (not gzip) delimited file that the load would copy is prepared; anything
    else, or any error, leaves the file to the load itself. `close` deletes a copy no load
    took (a load of other files, or a warehouse that could not be opened).
    """

    def __init__(self, path: Path, workdir: Path | None = None):
        self.path = Path(path)
        self.workdir = workdir or default_workdir()
        self.started = dt.datetime.now()
        self.clock = time.perf_counter()
        self.digest = FileDigest(self.path)
        self.source: Source | None = None  # the file as opened (open_source)
        self.copy: Source | None = None  # its UTF-8 form (as_windows_1252)
        self._taken = False
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._prepare, daemon=True)
        self._thread.start()

    def _prepare(self) -> None:
        source = None
        try:
            with open_regular(self.path) as fh:
                head = fh.read(4)
            if head.startswith((b"PK\x03\x04", b"PAR1", b"\x1f\x8b")):
                return  # a workbook, Parquet or gzip file: nothing to copy beforehand
            source = open_source(None, self.path, self.workdir)  # (text: no connection used)
            if not _copies_whole_file(source, self.workdir):
                return
            feed = self.digest.feeder()

            def on_block(block: bytes | None) -> None:
                if block is not None and self._cancel.is_set():
                    raise CopyCancelled("the copy is no longer needed")
                feed(block)

            self.copy = as_windows_1252(source, self.workdir, stream=False, on_block=on_block)
            self.source = source
        except Exception:  # noqa: BLE001 - the load meets the same error and says it
            self.copy = None
        finally:
            if self.copy is None and source is not None:
                for temp in source.temp_files:
                    temp.unlink(missing_ok=True)

    def take(self, path: Path) -> PreparedCopy | None:
        """This prepared copy, when it is `path`'s (waiting for it); the caller then owns its
        temporary files. None otherwise."""
        if self._taken or Path(path) != self.path:
            return None
        self._thread.join()
        if self.copy is None:
            return None
        self._taken = True
        return self

    def close(self) -> None:
        """Stop or wait for the copy, and delete it unless a load took it."""
        if not self._taken:
            self._cancel.set()
        self._thread.join()
        if not self._taken:
            self._taken = True
            for prepared in (self.source, self.copy):
                for temp in prepared.temp_files if prepared else []:
                    temp.unlink(missing_ok=True)
        self.digest.join()


def prepare_copy(paths: list[Path]) -> PreparedCopy | None:
    """Begin the UTF-8 copy of the first file, if it needs one (`PreparedCopy`)."""
    return PreparedCopy(Path(paths[0])) if paths else None


def _run(con: duckdb.DuckDBPyConnection, query: str, progress: ProgressCallback | None):
    """Execute `query`, reporting DuckDB's progress (0-100) while it runs."""
    if progress is None:
        return con.execute(query)
    outcome: dict = {}

    def work():
        try:
            outcome["result"] = con.execute(query)
        except BaseException as exc:  # re-raised in the calling thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
            try:
                value = con.query_progress()
            except duckdb.Error:
                value = -1
            if value >= 0:
                progress(value)
    except KeyboardInterrupt:
        con.interrupt()
        worker.join()
        raise
    if "error" in outcome:
        raise outcome["error"]
    progress(100.0)
    return outcome["result"]


def _nrn_digits(value: str, broad: bool = False) -> str:
    """SQL: `value` with the separators SPEC §3 removes (`.`, `-`, spaces); `broad` also
    removes slashes and a leading `BE` (ways of writing an NRN the refusal rule does not
    count, but that still identify someone: issue 19)."""
    if broad:
        return f"regexp_replace(upper({value}), '^ *BE|[./\\- ]', '', 'g')"
    return f"regexp_replace({value}, '[.\\- ]', '', 'g')"


def _nrn_expr(value: str, broad: bool = False) -> str:
    """SQL: is `value` a Belgian national register number (SPEC §3; `broad`: see
    `_nrn_digits`)?"""
    digits = _nrn_digits(value, broad)
    first9 = f"substr({digits}, 1, 9)"
    check = f"try_cast(substr({digits}, 10, 2) as integer)"
    return (
        f"(coalesce(regexp_full_match({digits}, '[0-9]{{11}}'), false) and ("
        f"97 - (try_cast({first9} as bigint) % 97) = {check} or "
        f"97 - (try_cast('2' || {first9} as bigint) % 97) = {check}))"
    )


# The two tests the scan makes on every row of a full export (10 million rows: about 1.4 s
# with regular expressions alone, on two threads). Each first tries a GLOB pattern that settles
# nearly every row and means the same as the full test on the rows it matches; the regular
# expression only sees the others.
SEVEN_DIGITS = "'" + "[0-9]" * 7 + "'"


def other_medicine_sql(value: str) -> str:
    """SQL: is the CNK `value` another medicine's code (a valid code, not the programme's)?

    Comparisons, not IN or list_contains: DuckDB turns those into a join, which would cost the
    scan its file order (see Loader._scan).
    """
    codes = sorted(PROGRAMME_CNKS)

    def is_programme(code: str) -> str:
        return (
            f"({code} between {sql_literal(codes[0])} and {sql_literal(codes[-1])} and ("
            + " or ".join(f"{code} = {sql_literal(c)}" for c in codes)
            + "))"
        )

    cnk = f"trim({value})"
    padded = f"lpad({cnk}, 7, '0')"
    return (
        f"(case when {value} glob {SEVEN_DIGITS} then not {is_programme(value)} "
        f"else coalesce(regexp_full_match({cnk}, '[0-9]{{1,7}}'), false) "
        f"and not {is_programme(padded)} end)"
    )


# --- BZRA lines (SPEC §14) -----------------------------------------------------------------
# The ATC groups of BZRA lines, and clonazepam (kept apart). The same test is written in
# sql/load/normalise_lines.sql, which decides each kept row's line_kind.
BZRA_ATC_REGEX = "N05(BA|CD|CF).*"
CLONAZEPAM_ATC = "N03AE01"


def bzra_atc_sql(value: str) -> str:
    """SQL: is the ATC text `value` a BZRA or clonazepam code (case and spaces ignored)?

    A GLOB settles the rows whose value cannot be one (no "N0" in it, or empty) cheaply.
    """
    atc = f"upper(trim({value}))"
    return (
        f"(coalesce({value} glob '*[Nn]0[35]*', false) and "
        f"(regexp_full_match({atc}, '{BZRA_ATC_REGEX}') or {atc} = '{CLONAZEPAM_ATC}'))"
    )


def code_in_sql(value: str, codes: list[str]) -> str:
    """SQL: is `value` one of `codes`? A binary search written as nested CASE comparisons.

    Not IN or list_contains, which DuckDB may plan as a join that loses the file's order (see
    check_order_kept); a chain of equalities would cost one comparison per code and row. Here a
    row costs about log2(len(codes)) comparisons.
    """
    codes = sorted(set(codes))
    if not codes:
        return "false"

    def tree(part: list[str]) -> str:
        if len(part) <= 3:
            return "(" + " or ".join(f"{value} = {sql_literal(c)}" for c in part) + ")"
        middle = len(part) // 2
        return (
            f"(case when {value} < {sql_literal(part[middle])} then {tree(part[:middle])} "
            f"else {tree(part[middle:])} end)"
        )

    return tree(codes)


def bzra_keep_sql(cnk: str, atc: str | None, reference_cnks: list[str]) -> str:
    """SQL: does the scan keep this row as a BZRA (or clonazepam) line? Its ATC is the
    export's `atc` value when not empty, else the product reference's for its CNK
    (`reference_cnks`: the reference's CNKs of BZRA and clonazepam products)."""
    if reference_cnks:
        padded = (
            f"(case when {cnk} glob {SEVEN_DIGITS} then {cnk} else lpad(trim({cnk}), 7, '0') end)"
        )
        by_reference = code_in_sql(padded, reference_cnks)
    else:
        by_reference = "false"
    if atc is None:
        return by_reference
    if by_reference == "false":
        return bzra_atc_sql(atc)
    return (
        f"(case when {bzra_atc_sql(atc)} then true "
        f"when coalesce(trim({atc}), '') = '' then {by_reference} else false end)"
    )


def _nrn_like(value: str) -> str:
    """SQL: could the patient `value` be a national register number (11 digits among spaces,
    dots, dashes and slashes, perhaps after `BE`: 11 to 24 characters)? A value starting with
    a letter other than B cannot (one GLOB settles nearly every pseudonym)."""
    patient = f"trim({value})"
    return (
        f"(case when {value} glob '[AC-Zac-z]*' then false "  # one GLOB: B may start BE
        f"else coalesce(length({patient}) between 11 and 24 "
        f"and regexp_full_match({patient}, '(?i)(BE)?[ .\\-]*[0-9][0-9 ./\\-]*[0-9]'), false) end)"
    )


# The operators of a plan that keeps its input's order (DuckDB's order preservation).
ORDER_KEEPING = frozenset({"PROJECTION", "FILTER", "TABLE_SCAN", "READ_CSV", "READ_PARQUET",
                           "ARROW_SCAN", "PYTHON_ARROW_SCAN", "SEQ_SCAN"})  # fmt: skip


def check_order_kept(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Make sure DuckDB plans `query` with operators that keep the file's order.

    Line numbers come from that order (Loader._scan). An operator such as a join (which
    DuckDB may make of an IN list) would shuffle the rows, and every line number with them;
    this stops the load instead of numbering lines wrongly.
    """
    plan = json.loads(con.execute(f"explain (format json) {query}").fetchall()[0][1])
    names, stack = set(), list(plan)
    while stack:
        node = stack.pop()
        names.add(str(node.get("name", "")).upper())
        stack.extend(node.get("children", []))
    if names - ORDER_KEEPING:
        raise RuntimeError(
            f"the scan would not keep the file's order (plan: {', '.join(sorted(names))})"
        )


class Loader:
    """Loads files into one open warehouse connection (see `load_file`)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        mapping: dict[str, str] | None = None,
        mapping_name: str | None = None,
        workdir: Path | None = None,
        limits: ExpansionLimits | None = None,
    ):
        self.con = con
        self.limits = limits or ExpansionLimits()
        self.workdir = workdir or Path(tempfile.gettempdir()) / "benzo-monitor"
        self._temp_files: list[Path] = []
        self._streams: list[Utf8Stream] = []
        self._nrn_columns: list[tuple[str, int]] = []
        self._digest: FileDigest | None = None  # to be fed by the UTF-8 copy (load_file)
        self.prepared: PreparedCopy | None = None  # a copy begun beforehand (load_paths)
        self._prepared_copy: Source | None = None  # the file's, taken by load_file
        remove_orphans(self.workdir)  # temporary files of loads that were killed
        # DuckDB only measures a query's progress when its progress bar is on (not printed).
        con.execute("set enable_progress_bar = true")
        con.execute("set enable_progress_bar_print = false")
        self.mapping = mapping or {}
        self.mapping_name = mapping_name

    # -- the steps -------------------------------------------------------------------------

    def _reference_cnks(self) -> list[str]:
        """CNKs of the product reference whose ATC makes a BZRA (or clonazepam) line."""
        rows = self.con.execute(
            "select cnk from product_reference "
            f"where regexp_full_match(atc, '{BZRA_ATC_REGEX}') or atc = '{CLONAZEPAM_ATC}'"
        ).fetchall()
        return [row[0] for row in rows]

    def _columns(self, source: Source) -> dict[str, str]:
        try:
            matched = match_headers(source.headers, self.mapping)
        except AmbiguousColumns as exc:
            raise FileRefused(
                f"{source.path}: {exc}", key="refused_ambiguous", columns=exc.columns
            ) from exc
        missing = [name for name in REQUIRED if name not in matched]
        if missing:
            # At most 30 headers of at most 60 characters: a message, not a dump of the file.
            shown = [repr(h if len(h) <= 60 else h[:57] + "...") for h in source.headers[:30]]
            if len(source.headers) > 30:
                shown.append(f"... ({len(source.headers):,} headers in all)")
            found = ", ".join(shown) or "none"
            raise FileRefused(
                f"{source.path}: required column(s) missing: {', '.join(missing)}.\n"
                f"Headers found: {found}.\n"
                "Headers accepted (case, accents, spaces, '_', '-' and '.' ignored):\n"
                f"{describe_aliases(tuple(missing))}\n"
                "Use --mapping FILE to name other headers.",
                key="refused_missing_columns",
                missing=", ".join(missing),
                found=found,
                accepted=describe_aliases(tuple(missing)),
            )
        index = {}
        for canonical, header in matched.items():
            index[canonical] = f"c{source.headers.index(header)}"
        return index

    def _scan(self, source: Source, columns: dict[str, str], progress) -> tuple[int, int, int]:
        """One pass over every record: count them, the other medicines and the patient values
        that could be national register numbers; keep the other rows in temp table load_kept
        (line_seq, c0..cN), numbered in file order."""

        def expr(name: str) -> str:
            return source.column_exprs[int(columns[name][1:])]

        is_other = other_medicine_sql(expr("cnk"))
        # SPEC §14: BZRA lines are kept too (no extra test at all when the file has no `atc`
        # column and the product reference has no BZRA product).
        keep_bzra = bzra_keep_sql(
            expr("cnk"), expr("atc") if "atc" in columns else None, self._reference_cnks()
        )
        if keep_bzra != "false":
            is_other = f"({is_other} and not {keep_bzra})"
        if source.csv_rejects:
            self.con.execute("drop table if exists load_csv_reject_errors")
            self.con.execute("drop table if exists load_csv_reject_scans")
        # A table created from the scan keeps the file's order (DuckDB preserves insertion
        # order, on every thread), so its rowid numbers the records: each record leaves a row,
        # which holds its values only when the load keeps it. (Numbering with row_number()
        # over () carries every value of every record through one ordered stream instead:
        # about twice as long for a delimited file of 10 million lines.) The values are text
        # expressions of the file's columns, evaluated on the kept records only.
        marks = f"""
            select
                case when not {is_other} then [{", ".join(source.column_exprs)}] end as kept,
                {_nrn_like(expr("patient_id"))} as nrn_like
            from {source.relation}
        """
        check_order_kept(self.con, marks)
        _run(self.con, f"create or replace temp table load_marks as {marks}", progress)
        n_rows, n_kept, n_nrn_like = self.con.execute(
            "select count(*), count(kept), count(*) filter (where nrn_like) from load_marks"
        ).fetchone()
        # A Windows-1252 file read through its UTF-8 copy gets its characters back here, on
        # the kept rows only (etl/ingest/read.py as_windows_1252). No ORDER BY: the table keeps
        # the order of load_marks (as load_marks keeps the file's), and line_seq is its rowid.
        restore = restore_cp1252_sql if source.csv_params.get("transcoded") else str
        values = ", ".join(
            f"{restore(f'kept[{i + 1}]')} as c{i}" for i in range(len(source.column_exprs))
        )
        self.con.execute(
            "create or replace temp table load_kept as select rowid + 1 as line_seq, "
            f"{values} from load_marks where kept is not null"
        )
        self.con.execute("drop table load_marks")
        return n_rows, n_rows - n_kept, n_nrn_like

    def _csv_rejects(self, source: Source) -> list[tuple[int, str, str, str]]:
        """(line, reason, detail, raw text) of records DuckDB could not split."""
        if not source.csv_rejects:
            return list(source.extra_rejects)
        rows = self.con.execute(
            """
            select line, arg_min(error_type, coalesce(column_idx, -1)),
                   arg_min(error_message, coalesce(column_idx, -1)),
                   arg_min(csv_line, coalesce(column_idx, -1))
            from load_csv_reject_errors group by line order by line
            """
        ).fetchall()  # (an error of the whole line, such as its size, has no column_idx)
        out = []
        for line, error_type, message, raw in rows:
            kind = str(error_type).upper()
            if "ENCODING" in kind or "UNICODE" in kind:
                reason = "encoding_error"
            elif "LINE SIZE" in kind:
                reason = "line_too_long"
                size = re.search(r"Actual Size:\s*(\d+)", str(message))
                message = (
                    f"line of {int(size[1]):,} bytes" if size else "line"
                ) + f", over the limit of 4 MiB ({MAX_LINE_BYTES:,} bytes)"
                out.append((int(line), reason, message, raw))
                continue
            else:
                reason = "malformed_line"
            if raw is not None and source.csv_params.get("transcoded"):
                raw = restore_cp1252(raw)
            out.append((int(line), reason, f"{error_type}: {message}", raw))
        return out

    def _check_pseudonyms(
        self, source: Source, columns: dict[str, str], n_nrn_like: int
    ) -> list[str]:
        """Refuse the file under SPEC §3's rule (at least 20 % of the distinct patient ids,
        and at least 5, are national register numbers); below it, or for numbers written in
        ways the rule does not count (a `BE` prefix, slashes), a warning (issue 19)."""
        if n_nrn_like == 0:
            return []
        patient = f"nullif(trim({columns['patient_id']}), '')"
        n_patients, n_nrn, n_broad, n_variant = self.con.execute(
            f"""
            select count(distinct patient), count(distinct patient) filter (where is_nrn),
                   count(distinct digits) filter (where is_broad),
                   count(distinct digits) filter (where is_broad and not is_nrn)
            from (select {patient} as patient, {_nrn_expr(patient)} as is_nrn,
                         {_nrn_expr(patient, broad=True)} as is_broad,
                         {_nrn_digits(patient, broad=True)} as digits
                  from ({source.scan_sql}))
            """
        ).fetchone()
        if n_nrn >= NRN_MIN_COUNT and n_nrn >= NRN_SHARE * n_patients:
            raise FileRefused(
                f"{source.path}: refused: {n_nrn} of {n_patients} distinct patient identifiers "
                f"({n_nrn / n_patients:.0%}) are Belgian national register numbers. Exports "
                "must be pseudonymised before loading; nothing was loaded."
            )
        if not n_broad:
            return []
        variant = (
            f" - {n_variant} of them written with a BE prefix or slashes, which that rule "
            "does not count"
            if n_variant
            else ""
        )
        self._nrn_columns.append((self._label(source, columns, "patient_id"), n_broad))
        return [
            f"{self._label(source, columns, 'patient_id')}: {n_broad} of {n_patients} distinct "
            f"values ({100 * n_broad / n_patients:.0f} %) look like national register numbers "
            f"(a file is refused from 20 % and 5 values){variant}"
        ]

    @staticmethod
    def _label(source: Source, columns: dict[str, str], canonical: str | None, index=None):
        """How a warning names a column: its canonical name, with the file's header when
        that differs; a column the load does not use by its header."""
        if canonical is None:
            header = source.headers[index]
            return repr(header if len(header) <= 60 else header[:57] + "...")
        header = source.headers[int(columns[canonical][1:])]
        return canonical if header == canonical else f"{canonical} ({header!r})"

    def _nrn_in_other_columns(self, source: Source, columns: dict[str, str]) -> list[str]:
        """Warnings for national register numbers (as `_nrn_expr(broad=True)` reads them) in
        the text columns (all but patient_id and NRN_TYPED_COLUMNS), on the rows the load keeps (the lines it stores and the
        rows it rejects, whose raw values are stored too): one per column, with the number of
        distinct numbers (issue 19). Other medicines' rows are not stored, so not searched."""
        by_index = {int(c[1:]): name for name, c in columns.items()}
        names = [
            f"c{i}" for i in range(len(source.headers)) if by_index.get(i) not in NRN_TYPED_COLUMNS
        ]
        if not names:
            return []
        cheap = "length({0}) between 11 and 24 and ({0} glob '[0-9]*' or {0} glob '[Bb][Ee]*' or {0} glob ' *')"
        if len(names) <= 50:
            # Per column, a filtered scan of that column alone (the store is columnar): the
            # cheap tests (length, first character) leave few values for the exact one.
            candidates = " union all ".join(
                f"select '{c}' as name, {c} as value from load_kept where {cheap.format(c)}"
                for c in names
            )
        else:  # thousands of columns: one long column of (name, value), planned once
            candidates = (
                f"select name, value from (unpivot (select {', '.join(names)} from load_kept) "
                f"on {', '.join(names)} into name name value value) "
                f"where {cheap.format('value')}"
            )
        rows = self.con.execute(
            f"""
            select name, count(distinct {_nrn_digits("value", broad=True)})
            from ({candidates})
            where {_nrn_expr("value", broad=True)}
            group by name
            """
        ).fetchall()
        warnings = []
        for name, n in sorted(rows, key=lambda r: int(r[0][1:])):
            i = int(name[1:])
            label = self._label(source, columns, by_index.get(i), i)
            self._nrn_columns.append((label, n))
            warnings.append(
                f"{label}: {n} distinct value(s) look like national register numbers; "
                "check that the export is pseudonymised"
            )
        return warnings

    def _normalise(self, source: Source, columns: dict[str, str], shifts: list[int]) -> None:
        """Create temp table load_rows: the kept rows checked and in canonical form."""
        self.con.execute("create or replace temp table load_line_shift (threshold bigint)")
        if shifts:
            self.con.executemany("insert into load_line_shift values (?)", [[s] for s in shifts])

        canonical = ", ".join(
            f"{columns[name] if name in columns else 'null::varchar'} as {name}"
            for name in CANONICAL
        )
        first = source.first_line
        # The file's values c0..cN stay in the view for the rejects (`_commit`): their raw
        # values are made after the join with the rejected rows, for those rows only.
        self.con.execute(
            f"""
            create or replace temp view load_source as
            select
                line_seq + {first - 1}
                    + (select count(*) from load_line_shift where threshold <= line_seq)
                    as line_number,
                {canonical},
                {", ".join(source.column_names)}
            from load_kept
            """
        )
        # One statement checks, normalises and numbers the occurrences (normalise_lines.sql).
        self.con.execute(
            "create or replace temp table load_rows as "
            + sql_pkg.read_sql("load/normalise_lines.sql")
        )
        self.con.execute(
            "create or replace temp view load_valid as select * from load_rows where reason is null"
        )

    # -- the whole file --------------------------------------------------------------------

    def load_file(
        self, path: Path, progress: ProgressCallback | None = None, dry_run: bool = False
    ) -> LoadSummary:
        """Load one file; raise FileRefused (warehouse unchanged) when it cannot be accepted.

        `dry_run`: every step of a load, the writing transaction included, then a rollback
        instead of the commit: the summary says what the load would bring (the dashboard's
        upload preview), the warehouse is left as it was. Its load_id is 0 (no id is drawn).
        """
        started = dt.datetime.now()
        clock = time.perf_counter()
        prepared = None if dry_run or self.prepared is None else self.prepared.take(path)
        if prepared is not None:  # its copy was begun before the warehouse opened
            started, clock, digest = prepared.started, prepared.clock, prepared.digest
            source = prepared.source
            self._temp_files.extend(source.temp_files + prepared.copy.temp_files)
            self._prepared_copy = prepared.copy
        else:
            digest = FileDigest(path)
            source = open_source(self.con, path, self.workdir, self.limits)
            self._temp_files.extend(source.temp_files)
            if _copies_whole_file(source, self.workdir):
                self._digest = digest  # hashed from the blocks of the UTF-8 copy (_as_cp1252)
            else:
                digest.start()
        try:
            columns = self._columns(source)
            source, (n_rows, n_skipped, n_nrn_like), csv_rejects = self._scan_text(
                source, columns, progress
            )
            if n_rows == 0 and not csv_rejects:
                raise FileRefused(f"{path}: the file has no data rows")
            self._nrn_columns = []
            warnings = self._check_pseudonyms(source, columns, n_nrn_like)
            for stream in source.streams:
                stream.check()  # (the check scans the file again when it has to)
            warnings += self._nrn_in_other_columns(source, columns)
            reject_lines = sorted({line for line, *_ in csv_rejects})
            shifts = [
                line - source.first_line - i + 2 for i, line in enumerate(reject_lines, start=1)
            ]
            self._normalise(source, columns, shifts)
            summary = self._commit(
                path, source, digest.hexdigest(), started, clock, n_rows, n_skipped, csv_rejects,
                warnings, dry_run,
            )  # fmt: skip
            summary.nrn_columns = self._nrn_columns
            return summary
        finally:
            for stream in self._streams:
                stream.close()
            self._streams.clear()
            for temp in self._temp_files:
                temp.unlink(missing_ok=True)
            self._temp_files.clear()
            self._digest = self._prepared_copy = None
            digest.join()

    def _scan_text(self, source: Source, columns: dict[str, str], progress):
        """Scan, switching to Windows-1252 when the text turns out not to be UTF-8."""
        if source.csv_params.get("needs_transcode"):
            source = self._as_cp1252(source, transcode=True)
        while True:
            try:
                counts = self._scan(source, columns, progress)
                for stream in source.streams:
                    stream.check()  # a read error ends the streamed text early
            except duckdb.Error as exc:
                if "latin-1" in str(exc) and not source.csv_params.get("transcoded"):
                    source = self._as_cp1252(source, transcode=True)
                    continue
                raise FileRefused(f"{source.path}: cannot be read: {first_line(exc)}") from exc
            csv_rejects = self._csv_rejects(source)
            if (
                source.encoding == "utf-8"
                and any(r[1] == "encoding_error" for r in csv_rejects)
                and not self._kept_non_ascii(source)
            ):
                # Not UTF-8 after all (the sample was plain ASCII): read it as Windows-1252.
                # Unless the kept rows hold UTF-8 text (other than ASCII): then the file mixes
                # encodings, and re-reading it as Windows-1252 would garble that text (`Pé`
                # as `PÃ©`); it stays UTF-8 and its other lines are encoding_error rejects.
                source = self._as_cp1252(source, transcode=False)
                continue
            return source, counts, csv_rejects

    def _kept_non_ascii(self, source: Source) -> bool:
        """Does a row the scan kept hold a character beyond ASCII (read as valid UTF-8)?"""
        if not source.column_names:
            return False
        test = " or ".join(
            f"coalesce(regexp_matches({c}, '[^\\x00-\\x7f]'), false)" for c in source.column_names
        )
        return self.con.execute(f"select exists (select 1 from load_kept where {test})").fetchone()[
            0
        ]

    def _as_cp1252(self, source: Source, transcode: bool) -> Source:
        if transcode and self._prepared_copy is not None:  # made already (PreparedCopy)
            new, self._prepared_copy = self._prepared_copy, None
            return new
        source.csv_params["needs_transcode"] = transcode
        stream = transcode and transcode_by_stream(source, self.workdir)
        # The copy reads every byte of a plain file: the file's digest is made from its blocks.
        on_block = None
        if transcode and not stream and self._digest is not None:
            on_block = self._digest.feeder()
        self._digest = None
        new = as_windows_1252(source, self.workdir, stream=stream, on_block=on_block)
        self._temp_files.extend(new.temp_files)
        self._streams.extend(new.streams)
        return new

    def _commit(
        self,
        path,
        source,
        sha,
        started,
        clock,
        n_rows,
        n_skipped,
        csv_rejects,
        warnings=(),
        dry_run=False,
    ):
        con = self.con
        n_valid, n_present, n_rejected, min_date, max_date, n_bzra, n_clonazepam = con.execute(
            """
            select
                (select count(*) from load_valid),
                (select count(*) from load_valid v
                 semi join billing_lines b using (fingerprint, occurrence)
                 where v.line_kind = 'programme')
                + (select count(*) from load_valid v
                   semi join bzra_lines b using (fingerprint, occurrence)
                   where v.line_kind <> 'programme'),
                (select count(*) from load_rows where reason is not null),
                (select min(delivery_date) from load_valid where line_kind = 'programme'),
                (select max(delivery_date) from load_valid where line_kind = 'programme'),
                (select count(*) from load_valid where line_kind = 'bzra'),
                (select count(*) from load_valid where line_kind = 'clonazepam')
            """
        ).fetchone()
        previous = con.execute(
            "select min(load_id) from loads where file_sha256 = ?", [sha]
        ).fetchone()[0]
        finished = dt.datetime.now()
        load_id = 0 if dry_run else con.execute("select nextval('load_id_seq')").fetchone()[0]
        summary = LoadSummary(
            load_id=load_id,
            file_name=path.name,
            file_sha256=sha,
            file_format=source.file_format,
            encoding=source.encoding,
            delimiter=source.delimiter,
            rows_read=n_rows + len(csv_rejects),
            rows_new=n_valid - n_present,
            rows_present=n_present,
            rows_skipped=n_skipped,
            rows_rejected=n_rejected + len(csv_rejects),
            seconds=round(time.perf_counter() - clock, 3),
            previously_loaded_as=previous,
            rows_bzra=n_bzra,
            rows_clonazepam=n_clonazepam,
            warnings=list(warnings),
        )
        con.execute("begin transaction")
        try:
            con.execute(
                """
                insert into loads values
                (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    load_id, path.name, sha, path.stat().st_size, source.file_format,
                    source.encoding, source.delimiter, self.mapping_name,
                    summary.rows_read, summary.rows_new, summary.rows_present,
                    summary.rows_skipped, summary.rows_rejected, min_date, max_date, started,
                    finished, summary.seconds, _user(), n_bzra, n_clonazepam,
                    "; ".join(summary.warnings) or None,
                ],
            )  # fmt: skip
            con.execute(
                f"""
                insert into billing_lines
                select fingerprint, occurrence, {load_id}, line_number, patient_id, pharmacy_id,
                       delivery_date, cnk, quantity, amount_eur, billing_month, insurer_code,
                       patient_birth_year, patient_sex, pharmacy_postcode, prescriber_id
                from load_valid v
                anti join billing_lines b using (fingerprint, occurrence)
                where v.line_kind = 'programme'
                """
            )
            con.execute(
                f"""
                insert into bzra_lines
                select fingerprint, occurrence, {load_id}, line_number, patient_id, pharmacy_id,
                       delivery_date, cnk, atc, quantity
                from load_valid v
                anti join bzra_lines b using (fingerprint, occurrence)
                where v.line_kind <> 'programme'
                """
            )
            con.execute(
                "create or replace temp table load_rejects "
                "(line_number bigint, reason varchar, detail varchar, raw_values varchar)"
            )
            raw = ", ".join(f"{sql_literal(h)}, s.c{i}" for i, h in enumerate(source.headers))
            con.execute(
                "insert into load_rejects "
                f"select r.line_number, r.reason, r.detail, json_object({raw})::varchar "
                "from load_rows r join load_source s using (line_number) "
                "where r.reason is not null"
            )
            if csv_rejects:
                con.executemany(
                    "insert into load_rejects values (?, ?, ?, ?)",
                    [[line, reason, detail, json.dumps({"line": raw}, ensure_ascii=False)]
                     for line, reason, detail, raw in csv_rejects],
                )  # fmt: skip
            con.execute(
                """
                insert into rejects
                select ?, ?, ?, r.line_number, r.reason, r.detail, r.raw_values
                from load_rejects r
                where not exists (
                    select 1 from rejects x
                    where x.file_sha256 = ? and x.line_number = r.line_number
                )
                order by r.line_number
                """,
                [load_id, path.name, sha, sha],
            )
            summary.rejects_by_reason = dict(
                con.execute(
                    "select reason, count(*) from load_rejects group by reason order by reason"
                ).fetchall()
            )
            summary.dry_run = dry_run
            con.execute("rollback" if dry_run else "commit")
        except BaseException:
            try:
                con.execute("rollback")
            except duckdb.Error:
                pass  # a commit that failed (a full disk) has ended the transaction itself
            raise
        finally:
            for kind, name in (("view", "load_valid"), ("table", "load_kept"),
                               ("table", "load_rows"), ("table", "load_rejects")):  # fmt: skip
                try:
                    con.execute(f"drop {kind} if exists {name}")
                except duckdb.Error:
                    pass  # temp tables go with the connection anyway (after a failed commit)
        return summary


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return None


# --- command-line entry points ------------------------------------------------------------


class DiskFull(Exception):
    """The disk filled up during a load; the message says what changed (usually nothing)."""


def is_disk_full(exc: BaseException) -> bool:
    """Is `exc` (or an exception it was raised from) a full disk or an exceeded quota?"""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(exc, duckdb.Error) and "no space left on device" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _disk_full(
    exc: BaseException, what: str, loaded: list[str], then: str = "run the load again"
) -> DiskFull:
    before = (
        f" The file(s) loaded before it in this command stay loaded: {', '.join(loaded)}."
        if loaded
        else ""
    )
    return DiskFull(
        f"{what} ({first_line(exc)}).{before} Free some space (the warehouse's disk and the "
        f"temporary folder, TMPDIR) and {then}."
    )


@dataclass
class FileOutcome:
    path: Path
    summary: LoadSummary | None = None
    refused: str | None = None
    # Why, for readers in other languages: the catalogue key and its values (FileRefused).
    refused_key: str | None = None
    refused_values: dict[str, str] = field(default_factory=dict)


def load_paths(
    con: duckdb.DuckDBPyConnection,
    paths: list[Path],
    mapping_path: Path | None = None,
    progress_factory: Callable[[Path], ProgressCallback | None] | None = None,
    config: Config | None = None,
    prepared: PreparedCopy | None = None,
) -> list[FileOutcome]:
    """Load each file in turn (each atomically); a refused file does not stop the others.

    `prepared`: the UTF-8 copy of a file, begun before the warehouse was opened
    (`prepare_copy`); taken by that file's load, deleted here if none took it.

    With `config`, and once a dashboard has served this warehouse (its snapshot folder
    exists), a snapshot is published for readers when at least one file loaded (etl/base/publish.py).
    """
    try:
        mapping = read_mapping(mapping_path) if mapping_path else None
        limits = (
            ExpansionLimits(config.max_expanded_bytes, config.max_expanded_lines)
            if config
            else None
        )
        loader = Loader(con, mapping, str(mapping_path) if mapping_path else None, limits=limits)
        loader.prepared = prepared
        return _load_each(con, loader, paths, progress_factory, config)
    finally:
        if prepared is not None:
            prepared.close()


def _load_each(con, loader, paths, progress_factory, config) -> list[FileOutcome]:
    outcomes = []
    loaded: list[str] = []
    for path in paths:
        progress = progress_factory(path) if progress_factory else None
        try:
            outcomes.append(FileOutcome(path, summary=loader.load_file(Path(path), progress)))
        except FileRefused as exc:
            outcomes.append(
                FileOutcome(path, refused=str(exc), refused_key=exc.key, refused_values=exc.values)
            )
        except Exception as exc:
            if is_disk_full(exc):  # the transaction was rolled back: the warehouse is as it was
                name = Path(path).name
                raise _disk_full(
                    exc, f"disk full — nothing changed: {name} was not loaded", loaded
                ) from exc
            raise
        if outcomes[-1].summary:
            loaded.append(outcomes[-1].summary.file_name)
        try:
            audit.record_load(con, outcomes[-1])  # etl/base/audit.py: who loaded which file, when
        except OSError as exc:
            if is_disk_full(exc):
                raise _disk_full(
                    exc, "disk full — the audit file could not record the load", loaded
                ) from exc
            raise
    if config is not None and any(o.summary for o in outcomes):
        try:  # the core store for the patients loaded (etl/base/store.py)
            store.refresh_store(con, config)
        except Exception as exc:
            if is_disk_full(exc):  # the files stay loaded; the store is as it was
                raise _disk_full(
                    exc,
                    f"disk full — {', '.join(loaded)} loaded, but the core store could not be "
                    "brought up to date",
                    [],  # (named above)
                    then="run `benzo-monitor publish`, which brings it up to date; until then "
                    "reports compute the core from the lines (slower, the same figures)",
                ) from exc
            raise
        if publish.snapshot_dir(publish.database_path(con)).exists():
            try:
                publish.publish(con, config)
            except Exception as exc:
                if is_disk_full(exc):
                    raise _disk_full(
                        exc,
                        "disk full — the dashboard's snapshot could not be published (the "
                        "dashboard shows the previous one)",
                        loaded,
                    ) from exc
                raise
    return outcomes


def preview_path(
    con: duckdb.DuckDBPyConnection, path: Path, config: Config | None = None
) -> FileOutcome:
    """What loading `path` would bring, without changing the warehouse: the loader's own
    steps and writing transaction, rolled back (`Loader.load_file(dry_run=True)`), so the
    counts are those the load gives. Not audited and not published: nothing changed."""
    limits = (
        ExpansionLimits(config.max_expanded_bytes, config.max_expanded_lines) if config else None
    )
    loader = Loader(con, limits=limits)
    try:
        return FileOutcome(path, summary=loader.load_file(Path(path), dry_run=True))
    except FileRefused as exc:
        return FileOutcome(path, refused=str(exc), refused_key=exc.key, refused_values=exc.values)
