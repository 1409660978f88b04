"""Opening a billing export: detect its format, encoding and delimiter, and expose it to DuckDB.

Every reader yields the same shape: a SQL relation with `line_seq` (the record's position in
the file, 1-based, in file order) and one VARCHAR column per header of the file, named `c0`,
`c1`, ... so that odd headers (accents, quotes, duplicates) never reach SQL text.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

SAMPLE_BYTES = 1 << 20
DELIMITERS = (";", ",", "\t", "|")
DELIMITER_NAMES = {";": ";", ",": ",", "\t": "tab", "|": "|"}


class FileRefused(Exception):
    """The file loads nothing; the message says why in plain words."""


@dataclass
class Source:
    """An opened export, ready to be scanned by DuckDB."""

    path: Path
    file_format: str  # csv | csv.gz | parquet | xlsx
    headers: list[str]
    scan_sql: str  # a SELECT yielding line_seq, c0..cN (VARCHAR), in file order
    first_line: int  # line number of the first data record (2 below a header row)
    encoding: str | None = None  # utf-8 | windows-1252
    delimiter: str | None = None
    csv_rejects: bool = False  # the scan stores malformed records in temp reject tables
    csv_params: dict = field(default_factory=dict)
    temp_files: list[Path] = field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.headers))]


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def open_source(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    """Detect what `path` is and prepare its scan; refuse files that cannot be read."""
    if not path.exists():
        raise FileRefused(f"{path}: no such file")
    if not path.is_file():
        raise FileRefused(f"{path}: not a file")
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise FileRefused(f"{path}: cannot be read ({exc.strerror})") from exc
    if not head:
        raise FileRefused(f"{path}: the file is empty")
    if head.startswith(b"PAR1"):
        return _open_parquet(con, path)
    if head.startswith(b"PK\x03\x04"):
        return _open_xlsx(con, path)
    return _open_delimited(path, gzipped=head.startswith(b"\x1f\x8b"))


# --- delimited text ----------------------------------------------------------------------


def _read_sample(path: Path, gzipped: bool) -> bytes:
    try:
        if gzipped:
            with gzip.open(path, "rb") as fh:
                return fh.read(SAMPLE_BYTES)
        with path.open("rb") as fh:
            return fh.read(SAMPLE_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        kind = "gzip file" if gzipped else "file"
        raise FileRefused(f"{path}: not a readable {kind} ({exc})") from exc


def detect_encoding(sample: bytes) -> str:
    """utf-8 when the sample decodes as UTF-8 (a cut multi-byte character at its end aside)."""
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason.startswith("unexpected end"):
            return "utf-8"
        return "windows-1252"


def detect_delimiter(header_line: str) -> str:
    """The candidate delimiter that occurs most often in the header row, outside quotes."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _open_delimited(path: Path, gzipped: bool) -> Source:
    sample = _read_sample(path, gzipped)
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRefused(f"{path}: UTF-16 text is not supported; save the export as UTF-8")
    if b"\x00" in sample[:4096]:
        raise FileRefused(
            f"{path}: not a text export (binary content); expected CSV, Parquet or XLSX"
        )
    encoding = detect_encoding(sample)
    text = sample.decode("utf-8-sig" if encoding == "utf-8" else "cp1252", errors="replace")
    lines = text.splitlines()
    leading = 0
    while leading < len(lines) and not lines[leading].strip():
        leading += 1
    if leading == len(lines):
        raise FileRefused(f"{path}: the file is empty")
    header_line = lines[leading]
    delimiter = detect_delimiter(header_line)
    headers = next(csv.reader(io.StringIO(header_line), delimiter=delimiter, quotechar='"'))
    headers = [h.strip() for h in headers]
    if not any(line.strip() for line in lines[leading + 1 :]) and len(sample) < SAMPLE_BYTES:
        raise FileRefused(f"{path}: the file has a header row but no data rows")
    source = Source(
        path=path,
        file_format="csv.gz" if gzipped else "csv",
        headers=headers,
        scan_sql="",
        first_line=leading + 2,
        encoding=encoding,
        delimiter=DELIMITER_NAMES[delimiter],
        csv_rejects=True,
        csv_params={
            "delim": delimiter,
            "skip": leading,
            "gzipped": gzipped,
            "read_path": path,
            # DuckDB's latin-1 reader refuses 0x80-0x9F: such files need a UTF-8 copy.
            "needs_transcode": encoding == "windows-1252"
            and any(0x80 <= b <= 0x9F for b in sample),
        },
    )
    source.scan_sql = csv_scan_sql(source)
    return source


def csv_scan_sql(source: Source) -> str:
    """The DuckDB scan of a delimited file: every field as text, malformed lines set aside."""
    params = source.csv_params
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(source.headers)))
    encoding = "utf-8" if source.encoding == "utf-8" or params.get("transcoded") else "latin-1"
    options = [
        f"delim = {sql_literal(params['delim'])}",
        "quote = '\"'",
        "escape = '\"'",
        "header = true",
        f"skip = {params['skip']}",
        "auto_detect = false",
        f"columns = {{{columns}}}",
        f"encoding = {sql_literal(encoding)}",
        f"compression = {sql_literal('gzip' if params['gzipped'] else 'none')}",
        "ignore_errors = true",
        "store_rejects = true",
        "rejects_table = 'load_csv_reject_errors'",
        "rejects_scan = 'load_csv_reject_scans'",
        "null_padding = false",
        "max_line_size = 4194304",
    ]
    relation = f"read_csv({sql_literal(str(params['read_path']))}, {', '.join(options)})"
    return f"select row_number() over () as line_seq, * from {relation}"


def as_windows_1252(source: Source, workdir: Path) -> Source:
    """The same delimited file read as Windows-1252.

    DuckDB's latin-1 reader refuses bytes 0x80-0x9F (the euro sign, curly quotes...), which
    Windows-1252 uses; when a file has them, it is transcoded to a temporary UTF-8 copy.
    """
    params = dict(source.csv_params)
    new = Source(
        **{**source.__dict__, "encoding": "windows-1252", "csv_params": params, "temp_files": []}
    )
    if params.get("needs_transcode"):
        workdir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="transcoded-", suffix=".csv", dir=workdir)
        opener = gzip.open if params["gzipped"] else open
        try:
            with opener(source.path, "rb") as src, os.fdopen(fd, "wb") as dst:
                for block in iter(lambda: src.read(1 << 22), b""):
                    dst.write(block.decode("cp1252", errors="replace").encode("utf-8"))
        except (OSError, EOFError, zlib.error) as exc:
            Path(name).unlink(missing_ok=True)
            raise FileRefused(f"{source.path}: cannot be read ({exc})") from exc
        params.update(read_path=Path(name), gzipped=False, transcoded=True)
        new.temp_files = [Path(name)]
    new.scan_sql = csv_scan_sql(new)
    return new


# --- Parquet and Excel: typed columns, turned into text the way an office would write them --


def _text_expr(column: str, duckdb_type: str) -> str:
    """A VARCHAR expression for a typed column: dates as ISO, whole floats without '.0'."""
    ref = '"' + column.replace('"', '""') + '"'
    t = duckdb_type.upper()
    if t == "DATE":
        return f"strftime({ref}, '%Y-%m-%d')"
    if t.startswith("TIMESTAMP"):
        return f"strftime({ref}::timestamp, '%Y-%m-%d %H:%M:%S')"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return (
            f"case when isfinite({ref}) and {ref} = trunc({ref}) and abs({ref}) < 1e15 "
            f"then cast(cast({ref} as bigint) as varchar) else cast({ref} as varchar) end"
        )
    return f"cast({ref} as varchar)"


def _typed_scan(
    con: duckdb.DuckDBPyConnection, relation: str, row_expr: str
) -> tuple[list[str], str]:
    described = con.execute(f"describe select * from {relation}").fetchall()
    headers = [row[0] for row in described if row[0] not in ("file_row_number", "__line_seq")]
    types = {row[0]: row[1] for row in described}
    projections = [f"{_text_expr(h, types[h])} as c{i}" for i, h in enumerate(headers)]
    scan = f"select {row_expr} as line_seq, {', '.join(projections)} from {relation}"
    return headers, scan


def _open_parquet(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    relation = f"read_parquet({sql_literal(str(path))}, file_row_number = true)"
    try:
        headers, scan = _typed_scan(con, relation, "file_row_number + 1")
        rows = con.execute(
            f"select num_rows from parquet_file_metadata({sql_literal(str(path))})"
        ).fetchone()
    except duckdb.Error as exc:
        raise FileRefused(f"{path}: not a readable Parquet file ({first_line(exc)})") from exc
    if not rows or not rows[0]:
        raise FileRefused(f"{path}: the Parquet file has no rows")
    return Source(path=path, file_format="parquet", headers=headers, scan_sql=scan, first_line=1)


def _open_xlsx(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    import fastexcel

    try:
        zipfile.ZipFile(path).close()
        reader = fastexcel.read_excel(str(path))
        if not reader.sheet_names:
            raise FileRefused(f"{path}: the workbook has no sheet")
        # Every cell as text: typed inference could turn a stray text cell into a null.
        sheet = reader.load_sheet(0, dtypes="string")
        frame = sheet.to_polars()
    except FileRefused:
        raise
    except Exception as exc:  # fastexcel raises its own error types for corrupt workbooks
        raise FileRefused(f"{path}: not a readable Excel workbook ({first_line(exc)})") from exc
    if frame.height == 0:
        raise FileRefused(f"{path}: the first sheet has a header row but no data rows")
    table = frame.with_row_index("__line_seq", offset=1).to_arrow()
    con.register("load_xlsx_source", table)
    headers, scan = _typed_scan(con, "load_xlsx_source", "__line_seq")
    return Source(
        path=path,
        file_format="xlsx",
        headers=[str(h) for h in headers],
        scan_sql=scan,
        first_line=2,
    )


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (library errors can run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
