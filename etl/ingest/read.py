"""Opening a billing export: detect its format, encoding and delimiter, and expose it to DuckDB.

Every reader yields the same shape: a SQL relation (a DuckDB table function over the file) and
one VARCHAR expression per header of the file, exposed as `c0`, `c1`, ... so that odd headers
(accents, quotes, duplicates) never reach SQL text. The relation yields the records in file
order: a table created from it keeps that order, and its rowid numbers the records (see
etl/ingest/load.py).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import stat
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from etl.base.errors import first_line

SAMPLE_BYTES = 1 << 20
LINE_BREAK = re.compile(r"\r\n|\r|\n")
DELIMITERS = (";", ",", "\t", "|")
DELIMITER_NAMES = {";": ";", ",": ",", "\t": "tab", "|": "|"}
# A billing export has about 15 columns; DuckDB takes seconds per 10,000 columns and memory
# without bound beyond (issue 19: 100,000 columns, 86 s and 1.3 GB). Wider files are refused
# from their header, before DuckDB reads them.
MAX_COLUMNS = 5_000
MAX_LINE_BYTES = 4 << 20  # a longer line is a reject (line_too_long)


def check_width(path: Path, n_columns: int) -> None:
    """Refuse a file of more than MAX_COLUMNS columns, with a plain message."""
    if n_columns > MAX_COLUMNS:
        raise FileRefused(
            f"{path}: {n_columns:,} columns; at most {MAX_COLUMNS:,} are accepted (a billing "
            "export has about 15). Keep the columns the monitor reads; nothing was loaded"
        )


class FileRefused(Exception):
    """The file loads nothing; the message says why in plain words (English, for the command
    line). `key` names the reason for readers in other languages (the dashboard's upload says
    it with the catalogue word data_upload_<key>, filled with `values`); None: no such word."""

    def __init__(self, message: str, *, key: str | None = None, **values: str):
        super().__init__(message)
        self.key = key
        self.values = values


@dataclass
class Source:
    """An opened export, ready to be scanned by DuckDB."""

    path: Path
    file_format: str  # csv | csv.gz | parquet | xlsx
    headers: list[str]
    relation: str  # the file as a DuckDB table function, records in file order
    column_exprs: list[str]  # per header, a VARCHAR expression over the relation's columns
    first_line: int  # line number of the first data record (2 below a header row)
    encoding: str | None = None  # utf-8 | windows-1252
    delimiter: str | None = None
    csv_rejects: bool = False  # the scan stores malformed records in temp reject tables
    csv_params: dict = field(default_factory=dict)
    temp_files: list[Path] = field(default_factory=list)
    streams: list[Utf8Stream] = field(default_factory=list)  # see as_windows_1252
    # Records the reader set aside itself (xlsx: formulas without a value): (line, reason,
    # detail, raw text), like DuckDB's rejects of a delimited file.
    extra_rejects: list[tuple[int, str, str, str]] = field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        return [f"c{i}" for i in range(len(self.headers))]

    @property
    def scan_sql(self) -> str:
        """A SELECT of the file's values as text, one column c0..cN per header."""
        columns = ", ".join(f"{e} as c{i}" for i, e in enumerate(self.column_exprs))
        return f"select {columns} from {self.relation}"


def sql_literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def open_source(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    workdir: Path | None = None,
    limits: ExpansionLimits | None = None,
) -> Source:
    """Detect what `path` is and prepare its scan; refuse files that cannot be read.

    A gzip file is first checked against `limits` (see `check_expansion`). The caller deletes
    `source.temp_files` once the load is over (see `duckdb_path`).
    """
    if not path.exists():
        raise FileRefused(f"{path}: no such file")
    try:
        with open_regular(path) as fh:
            head = fh.read(8)
    except NotRegularFile as exc:
        raise FileRefused(f"{path}: {exc}") from exc
    except OSError as exc:
        raise FileRefused(f"{path}: cannot be read ({exc.strerror})") from exc
    if not head:
        raise FileRefused(f"{path}: the file is empty", key="refused_empty")
    if head.startswith(b"PK\x03\x04"):
        return _open_xlsx(con, path)  # read by fastexcel, which takes the name as it is
    temp_files: list[Path] = []
    try:
        read_path = duckdb_path(path, workdir, temp_files)
        if head.startswith(b"PAR1"):
            source = _open_parquet(con, path, read_path)
        else:
            gzipped = head.startswith(b"\x1f\x8b")
            source = _open_delimited(path, gzipped)  # reads a 1 MiB sample only
            if gzipped:  # after the sample's checks: a bomb of zeros is refused as binary at once
                expanded = check_expansion(path, limits or ExpansionLimits())
                source.csv_params["expanded_bytes"] = expanded
            if read_path != path:
                source.csv_params["read_path"] = read_path
                source.relation = csv_relation(source)
    except BaseException:
        for temp in temp_files:
            temp.unlink(missing_ok=True)
        raise
    source.temp_files = temp_files
    return source


class NotRegularFile(OSError):
    """The path is a FIFO, a device, a socket or a folder: never read as an export."""


def open_regular(path: Path):
    """Open `path` for reading in binary, refusing anything that is not a regular file.

    The file is opened without blocking and checked on the open descriptor: opening a FIFO
    normally waits for a writer, and reading /dev/zero never ends (issue 19). Raises
    `NotRegularFile` (an OSError) with a plain message, or the OSError of the open.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(
                "not a regular file (a folder, a pipe or a device): nothing was read"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@dataclass(frozen=True)
class ExpansionLimits:
    """How far a compressed export may expand ([loading] of etl/base/config.toml)."""

    max_bytes: int = 8 << 30
    max_lines: int = 100_000_000


def check_expansion(path: Path, limits: ExpansionLimits) -> int:
    """Decompress the gzip file `path` once, a block at a time, and return its expanded size;
    refuse it as soon as it expands beyond `limits` (bytes or line breaks).

    The readers after this stream the file too, but nothing else stops a small file that
    expands without end (a "gzip bomb": 6 MB to 2.2 GB and more). Memory stays at one block.
    """
    total = lines = 0
    try:
        with gzip.open(path, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK_BYTES), b""):
                total += len(block)
                lines += block.count(b"\n")
                if total > limits.max_bytes or lines > limits.max_lines:
                    what = (
                        f"more than {limits.max_bytes:,} bytes"
                        if total > limits.max_bytes
                        else f"more than {limits.max_lines:,} lines"
                    )
                    raise FileRefused(
                        f"{path}: the compressed file expands to {what} (the limit of "
                        "[loading] in the configuration); nothing was loaded"
                    )
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRefused(f"{path}: not a readable gzip file ({exc})") from exc
    return total


# Characters that make DuckDB read a file name as a glob pattern.
PATTERN_CHARACTERS = frozenset("*?[]{}\\")
TEMP_PREFIXES = ("source", "transcoded")  # temporary files of a load: <prefix>-<pid>-...


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "benzo-monitor"


def duckdb_path(path: Path, workdir: Path | None, temp_files: list[Path]) -> Path:
    """A name under which DuckDB reads exactly the file `path`.

    DuckDB takes a file name as a glob pattern: `[ab].csv` would read a.csv and b.csv instead,
    `x*.csv` every file that matches. A file whose path has such characters is read through a
    link (or, where links are not allowed, a copy) with a plain name, added to `temp_files`.
    """
    if not PATTERN_CHARACTERS & set(str(path.absolute())) and not str(path).startswith("~"):
        return path  # (a leading ~ would be read as the home folder)
    workdir = workdir or default_workdir()
    workdir.mkdir(parents=True, exist_ok=True)
    link = workdir / f"source-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        os.symlink(path.resolve(), link)
    except OSError:
        shutil.copyfile(path, link)
    temp_files.append(link)
    return link


def remove_orphans(workdir: Path | None = None) -> list[Path]:
    """Delete the temporary files (links, copies) of loads whose process is gone, in `workdir`
    and in the memory folder of `copy_folder`.

    A load deletes its own files when it ends, even on an error; a killed one cannot. Their
    names carry the process id; a file whose process no longer runs is deleted. Returns them.
    """
    removed: list[Path] = []
    if os.name != "posix":
        return removed  # elsewhere, probing a process id is not harmless
    folders = [workdir or default_workdir(), MEMORY_WORKDIR]  # see copy_folder
    for temp in [t for folder in folders if folder.is_dir() for t in folder.iterdir()]:
        prefix, _, rest = temp.name.partition("-")
        pid = rest.partition("-")[0]
        if prefix not in TEMP_PREFIXES or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            try:
                temp.unlink()
                removed.append(temp)
            except OSError:
                pass  # another user's file, or already gone
        except (OSError, OverflowError):
            pass  # the process runs (as another user) or the id is not one
    return removed


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
        raise FileRefused(
            f"{path}: UTF-16 text is not supported; save the export as UTF-8", key="refused_utf16"
        )
    if b"\x00" in sample[:4096]:
        head = sample[:256]
        if max(head[0::2].count(0), head[1::2].count(0)) >= 0.9 * (len(head) // 2):
            # Every other byte zero: text in UTF-16 without a byte order mark.
            raise FileRefused(
                f"{path}: UTF-16 text is not supported; save the export as UTF-8",
                key="refused_utf16",
            )
        raise FileRefused(
            f"{path}: not a text export (binary content); expected CSV, Parquet or XLSX",
            key="refused_binary",
        )
    encoding = detect_encoding(sample)
    text = sample.decode("utf-8-sig" if encoding == "utf-8" else "cp1252", errors="replace")
    # Lines end at \r\n, \r or \n, as DuckDB counts them for `skip` (str.splitlines also ends
    # them at \x0b, \x0c, \x1c-\x1e, \x85, \u2028 and \u2029: DuckDB would skip the header).
    lines = LINE_BREAK.split(text)
    leading = 0
    while leading < len(lines) and not lines[leading].strip():
        leading += 1
    if leading == len(lines):
        raise FileRefused(f"{path}: the file is empty", key="refused_empty")
    header_line = lines[leading]
    delimiter = detect_delimiter(header_line)
    start = 0
    for match, _ in zip(LINE_BREAK.finditer(text), range(leading), strict=False):
        start = match.end()
    try:  # from the header row's start: a quoted header may hold a line break ("Patient\nNr")
        reader = csv.reader(
            io.StringIO(text[start:], newline=""), delimiter=delimiter, quotechar='"'
        )  # newline="": a CR alone ends a line too (old Mac exports)
        headers = next(reader)
    except csv.Error as exc:  # a header longer than 131,072 characters (a quote left open?)
        raise FileRefused(f"{path}: the header row cannot be read ({exc})") from exc
    end, new_line = _header_record(text[start:], delimiter)
    header_breaks = len(LINE_BREAK.findall(text, start, start + end))
    headers = [h.strip() for h in headers]
    check_width(path, len(headers))  # (a header longer than the sample: counted from its part)
    if not any(line.strip() for line in lines[leading + 1 :]) and len(sample) < SAMPLE_BYTES:
        raise FileRefused(
            f"{path}: the file has a header row but no data rows", key="refused_no_rows"
        )
    source = Source(
        path=path,
        file_format="csv.gz" if gzipped else "csv",
        headers=headers,
        relation="",
        column_exprs=[f"c{i}" for i in range(len(headers))],
        first_line=leading + header_breaks + 2,
        encoding=encoding,
        delimiter=DELIMITER_NAMES[delimiter],
        csv_rejects=True,
        csv_params={
            "delim": delimiter,
            "skip": leading,
            "gzipped": gzipped,
            "read_path": path,
            # DuckDB's latin-1 reader refuses 0x80-0x9F: such files are read as UTF-8
            # (as_windows_1252).
            "needs_transcode": encoding == "windows-1252"
            and any(0x80 <= b <= 0x9F for b in sample),
        },
    )
    if header_breaks or new_line == "\\r":
        # A line break in a quoted header misleads DuckDB's own guess; and without
        # auto-detection DuckDB ends lines at LF only: a file of CR line ends is one line.
        source.csv_params["new_line"] = new_line
    source.relation = csv_relation(source)
    return source


def _header_record(text: str, delimiter: str) -> tuple[int, str]:
    """Where the first record of `text` ends (quotes respected) and its line end, written as
    DuckDB's new_line option wants it (\\r\\n, \\n or \\r)."""
    quoted, field_start, i = False, True, 0
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == '"':
                if text.startswith('""', i):
                    i += 1
                else:
                    quoted = False
        elif ch == '"' and field_start:
            quoted = True
        elif ch in "\r\n":
            return i, "\\r\\n" if text.startswith("\r\n", i) else ("\\r" if ch == "\r" else "\\n")
        field_start = not quoted and ch == delimiter
        i += 1
    return len(text), "\\n"


def csv_relation(source: Source) -> str:
    """The DuckDB scan of a delimited file: every field as text in columns c0..cN, malformed
    lines set aside in the temp tables load_csv_reject_errors and load_csv_reject_scans."""
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
        f"max_line_size = {MAX_LINE_BYTES}",
    ]
    if params.get("new_line"):
        options.append(f"new_line = {sql_literal(params['new_line'])}")
    return f"read_csv({sql_literal(str(params['read_path']))}, {', '.join(options)})"


# Windows-1252 and latin-1 agree on every byte but 0x80-0x9F, which DuckDB's latin-1 reader
# refuses (and DuckDB reads latin-1 at about half its UTF-8 speed). Its UTF-8 form (streamed or
# copied, see as_windows_1252) decodes the file as latin-1 and writes it as UTF-8, which Python
# does at C speed and loses nothing: a byte
# 0x80-0x9F becomes the C1 control character U+0080-U+009F, which Windows-1252 text cannot
# otherwise hold. `restore_cp1252_sql` maps those back to the Windows-1252 characters on the few
# values the load keeps; the five bytes Windows-1252 leaves undefined come back as U+FFFD, as a
# decoder with errors="replace" would give.
C1_CONTROLS = bytes(range(0x80, 0xA0)).decode("latin-1")
CP1252_CHARACTERS = bytes(range(0x80, 0xA0)).decode("cp1252", errors="replace")
BLOCK_BYTES = 1 << 20


def restore_cp1252_sql(expression: str) -> str:
    """SQL: a value read from the UTF-8 copy, with its Windows-1252 characters back (only the
    values holding a C1 control character go through DuckDB's translate(), which is slow; and
    only those holding a character beyond ASCII, as many bytes as characters, are searched)."""
    return (
        f"case when strlen({expression}) <> length({expression}) "
        f"and regexp_matches({expression}, '[\\x{{80}}-\\x{{9f}}]') "
        f"then translate({expression}, {sql_literal(C1_CONTROLS)}, "
        f"{sql_literal(CP1252_CHARACTERS)}) else {expression} end"
    )


def restore_cp1252(text: str) -> str:
    """Python: the same as `restore_cp1252_sql`."""
    return text.translate(str.maketrans(C1_CONTROLS, CP1252_CHARACTERS))


def as_windows_1252(
    source: Source,
    workdir: Path,
    stream: bool = False,
    on_block: Callable[[bytes | None], None] | None = None,
) -> Source:
    """The same delimited file read as Windows-1252.

    Without bytes 0x80-0x9F, DuckDB reads the file itself as latin-1. With them, DuckDB reads
    the file's UTF-8 form (see above): with `stream` (where named pipes exist), through a named
    pipe fed by a thread as DuckDB reads it (`Utf8Stream`: nothing is written to disk or to
    memory beyond a block); otherwise from a temporary UTF-8 copy on disk (`copy_folder`).
    The copy of a plain (not gzip) file calls `on_block` with each block of the file's bytes
    in order, then with None (see `_copy_as_utf8`); it is not called otherwise.
    The caller closes `new.streams` and deletes `new.temp_files` once the load is over.
    """
    params = dict(source.csv_params)
    new = Source(
        **{
            **source.__dict__,
            "encoding": "windows-1252",
            "csv_params": params,
            "temp_files": [],
            "streams": [],
        }
    )
    pipe = None
    if params.get("needs_transcode") and stream and hasattr(os, "mkfifo"):
        try:
            pipe = Utf8Stream(source.path, params["gzipped"], workdir)
        except OSError:
            pipe = None  # a folder without named pipes (some network or foreign file systems)
    if pipe is not None:
        params.update(read_path=pipe.path, gzipped=False, transcoded=True)
        new.streams = [pipe]
    elif params.get("needs_transcode"):
        folder = copy_folder(source, workdir)
        fd, name = tempfile.mkstemp(  # the pid: see remove_orphans
            prefix=f"transcoded-{os.getpid()}-", suffix=".csv", dir=folder
        )
        try:
            _copy_as_utf8(source, fd, None if params["gzipped"] else on_block)
        except (OSError, EOFError, zlib.error) as exc:
            Path(name).unlink(missing_ok=True)
            raise FileRefused(f"{source.path}: cannot be read ({exc})") from exc
        params.update(read_path=Path(name), gzipped=False, transcoded=True)
        new.temp_files = [Path(name)]
    new.relation = csv_relation(new)
    return new


class Utf8Stream:
    """A Windows-1252 file (plain or gzip) as UTF-8 text (decoded as latin-1, see above),
    served through a named pipe in `workdir` that DuckDB reads as a file.

    Issue 20: the UTF-8 copy of a 10-million-line export took 1.3 GiB of /dev/shm, later of
    disk, and its writing came before the scan. Here a thread writes the text a block at a time
    while DuckDB reads it: memory stays at about two blocks plus the pipe's buffer, nothing goes
    to disk, and the transcoding runs beside the scan (DuckDB reads a pipe on one thread).

    Each opening of the pipe reads the whole text from its start (a load may scan the file
    twice): once the text is written, a new pipe takes the name before the old one is closed,
    so the next opening never sees the end of the last. A reader that leaves early makes the
    writer start again for the next one. `error` holds a read error of the file (the reader
    then saw the text end early): `check` raises it as FileRefused after each scan.
    """

    def __init__(self, path: Path, gzipped: bool, workdir: Path):
        self.source, self.gzipped = path, gzipped
        workdir.mkdir(parents=True, exist_ok=True)
        # The pid: see remove_orphans (a killed load leaves its pipe behind).
        self.path = workdir / f"transcoded-{os.getpid()}-{os.urandom(6).hex()}.pipe"
        os.mkfifo(self.path, 0o600)
        self.error: BaseException | None = None
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY)  # waits for a reader
            except OSError:
                return  # the pipe was removed: closing
            try:
                if not self._closing.is_set():
                    self._write(fd)
            except BrokenPipeError:
                pass  # the reader left early: the next one starts from the beginning
            except Exception as exc:  # noqa: BLE001 - any failure ends the text early: say so
                self.error = exc
            finally:
                self._renew()
                os.close(fd)

    def _write(self, fd: int) -> None:
        opener = gzip.open if self.gzipped else open
        with opener(self.source, "rb") as src:
            for block in iter(lambda: src.read(BLOCK_BYTES), b""):
                if self._closing.is_set():
                    return
                data = memoryview(block.decode("latin-1").encode("utf-8"))
                while data:
                    data = data[os.write(fd, data) :]

    def _renew(self) -> None:
        """A new pipe under the same name (the old one stays open to its current reader)."""
        if self._closing.is_set():
            return
        fresh = self.path.with_name(self.path.name + "-next")
        try:
            os.mkfifo(fresh, 0o600)
            os.replace(fresh, self.path)
        except OSError as exc:
            self.error = self.error or exc

    def check(self) -> None:
        """Raise FileRefused when the file could not be read to its end."""
        if self.error is not None:
            raise FileRefused(f"{self.source}: cannot be read ({self.error})") from self.error

    def close(self) -> None:
        """Stop the writer and delete the pipe."""
        self._closing.set()
        while self._thread.is_alive():
            try:  # an opening for reading ends the writer's wait for a reader; reading what
                # it wrote ends its wait for room in the pipe
                fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                fd = None
            self._thread.join(0.05)
            if fd is not None:
                try:
                    os.read(fd, 1 << 20)
                except OSError:
                    pass
                os.close(fd)
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + "-next").unlink(missing_ok=True)


# Earlier versions put the copy in memory (/dev/shm): nothing bounded it, and a compressed
# export could fill the machine's RAM. The folder is still swept for their orphans.
MEMORY_WORKDIR = Path("/dev/shm/benzo-monitor")


TRANSCODE_ENV = "BENZO_MONITOR_TRANSCODE"  # stream | copy | auto (the default)


def transcode_by_stream(source: Source, workdir: Path) -> bool:
    """Whether the UTF-8 form of a Windows-1252 file goes through a named pipe (True) or a
    checked copy on disk (False). By default the copy when the work folder has room for it,
    else the stream: measured side by side on a quiet 2-core machine (docs/scaling.md), the
    10-million-line export loads in 5.2 s through the copy, which DuckDB scans on every
    thread, against 8.2 s through the pipe, which it reads on one; both peak at about 0.5 GiB
    and neither touches /dev/shm. $BENZO_MONITOR_TRANSCODE=stream or =copy forces one."""
    choice = os.environ.get(TRANSCODE_ENV, "auto").strip().lower()
    if choice in ("stream", "copy"):
        return choice == "stream"
    needed, free = _copy_space(source, workdir)
    return free < needed


def _copy_space(source: Source, workdir: Path) -> tuple[int, int]:
    """(bytes the UTF-8 copy may need, bytes free in the work folder)."""
    params = source.csv_params
    text = params.get("expanded_bytes") or source.path.stat().st_size
    workdir.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(workdir)
    return 2 * text, stats.f_bavail * stats.f_frsize


def copy_folder(source: Source, workdir: Path) -> Path:
    """Where the temporary copy of a Windows-1252 file goes: the work folder on disk (TMPDIR),
    once its free space is checked.

    The copy is UTF-8: at most twice the text (each byte 0x80-0xFF becomes two), the text being
    the file or, for a gzip file, its expanded size (`check_expansion`). Refused with a plain
    message when the folder has less free space than that.
    """
    needed, free = _copy_space(source, workdir)
    if free < needed:
        raise FileRefused(
            f"{source.path}: not enough free disk space for its temporary copy in {workdir} "
            f"(needs up to {needed / 2**20:,.0f} MiB, {free / 2**20:,.0f} MiB free); free some "
            "space or set TMPDIR to a larger disk. Nothing was loaded"
        )
    return workdir


def _copy_as_utf8(
    source: Source, fd: int, on_block: Callable[[bytes | None], None] | None = None
) -> None:
    """Copy the file into `fd`, decoded as latin-1 and written as UTF-8 (see above).

    `on_block` (if any) gets each block read, in order, then None once the copy ends (whole
    or not): the load hashes the file from them instead of reading it a second time.
    """
    opener = gzip.open if source.csv_params["gzipped"] else open
    try:
        with opener(source.path, "rb") as src, os.fdopen(fd, "wb") as dst:
            for block in iter(lambda: src.read(BLOCK_BYTES), b""):
                if on_block is not None:
                    on_block(block)
                dst.write(block.decode("latin-1").encode("utf-8"))
    finally:
        if on_block is not None:
            on_block(None)


# --- Parquet and Excel: typed columns, turned into text the way an office would write them --


def _text_expr(column: str, duckdb_type: str) -> str:
    """A VARCHAR expression for a typed column: dates as ISO, whole floats without '.0'."""
    ref = '"' + column.replace('"', '""') + '"'
    t = duckdb_type.upper()
    if t == "DATE":
        return f"strftime({ref}, '%Y-%m-%d')"
    if t.startswith("TIMESTAMPTZ") or t.endswith("WITH TIME ZONE"):
        # TIMESTAMPTZ_NS has no direct cast to TIMESTAMP (it would refuse the whole file).
        return f"strftime({ref}::timestamptz::timestamp, '%Y-%m-%d %H:%M:%S')"
    if t.startswith("TIMESTAMP"):
        return f"strftime({ref}::timestamp, '%Y-%m-%d %H:%M:%S')"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        return (
            f"case when isfinite({ref}) and {ref} = trunc({ref}) and abs({ref}) < 1e15 "
            f"then cast(cast({ref} as bigint) as varchar) else cast({ref} as varchar) end"
        )
    return f"cast({ref} as varchar)"


def _typed_columns(con: duckdb.DuckDBPyConnection, relation: str) -> tuple[list[str], list[str]]:
    """The headers of `relation` and, per header, its value as text."""
    described = con.execute(f"describe select * from {relation}").fetchall()
    return [row[0] for row in described], [_text_expr(row[0], row[1]) for row in described]


def _open_parquet(
    con: duckdb.DuckDBPyConnection, path: Path, read_path: Path | None = None
) -> Source:
    name = sql_literal(str(read_path or path))
    relation = f"read_parquet({name})"
    try:
        headers, exprs = _typed_columns(con, relation)
        rows = con.execute(f"select num_rows from parquet_file_metadata({name})").fetchone()
    except duckdb.Error as exc:
        raise FileRefused(f"{path}: not a readable Parquet file ({first_line(exc)})") from exc
    check_width(path, len(headers))
    nested = [
        row[0]
        for row in con.execute(f"describe select * from {relation}").fetchall()
        if any(word in str(row[1]).upper() for word in ("STRUCT", "MAP", "UNION", "[]"))
    ]
    if nested:
        shown = ", ".join(repr(n if len(n) <= 60 else n[:57] + "...") for n in nested[:30])
        raise FileRefused(
            f"{path}: nested columns (struct, list or map) cannot be loaded: {shown}. Export "
            "them as plain columns, or leave them out; nothing was loaded"
        )
    if not rows or not rows[0]:
        raise FileRefused(f"{path}: the Parquet file has no rows", key="refused_no_rows")
    return Source(
        path=path,
        file_format="parquet",
        headers=headers,
        relation=relation,
        column_exprs=exprs,
        first_line=1,
    )


def _open_xlsx(con: duckdb.DuckDBPyConnection, path: Path) -> Source:
    import fastexcel

    try:
        zipfile.ZipFile(path).close()
        reader = fastexcel.read_excel(str(path))
        if not reader.sheet_names:
            raise FileRefused(f"{path}: the workbook has no sheet")
        book = workbook_layout(path)
        name = book.sheet if book and book.sheet in reader.sheet_names else None
        if book and book.sheet is None:
            raise FileRefused(f"{path}: every sheet of the workbook is hidden")
        # Every cell as text: typed inference could turn a stray text cell into a null.
        sheet = reader.load_sheet(name if name is not None else 0, dtypes="string")
        frame = sheet.to_polars()
    except FileRefused:
        raise
    except Exception as exc:  # fastexcel raises its own error types for corrupt workbooks
        raise FileRefused(f"{path}: not a readable Excel workbook ({first_line(exc)})") from exc
    if frame.height == 0:
        raise FileRefused(
            f"{path}: the sheet has a header row but no data rows", key="refused_no_rows"
        )
    check_width(path, frame.width)
    rejects: list[tuple[int, str, str, str]] = []
    if book and book.member:
        frame, rejects = _fix_cells(path, book, frame)
    con.register("load_xlsx_source", frame.to_arrow())
    headers, exprs = _typed_columns(con, "load_xlsx_source")
    return Source(
        path=path,
        file_format="xlsx",
        headers=[str(h) for h in headers],
        relation="load_xlsx_source",
        column_exprs=exprs,
        first_line=2,
        extra_rejects=rejects,
    )


@dataclass
class WorkbookLayout:
    """What the loader needs from an xlsx's own XML (fastexcel does not say it)."""

    sheet: str | None  # the sheet to load: the active one if visible, else the first visible
    member: str | None  # its XML file in the zip
    recalculate: bool  # calcPr fullCalcOnLoad: cached formula values were never computed


def workbook_layout(path: Path) -> WorkbookLayout | None:
    """The sheet an office user sees on opening the workbook (issue 19: a hidden first sheet
    was loaded instead), its XML file, and whether its formulas' values are to be trusted.
    None when the workbook's XML cannot be read (fastexcel then takes the first sheet)."""
    import xml.etree.ElementTree as ET

    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    rel = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
    try:
        with zipfile.ZipFile(path) as archive:
            book = ET.fromstring(archive.read("xl/workbook.xml"))
            rels = ET.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except (KeyError, OSError, zipfile.BadZipFile, ET.ParseError):
        return None
    sheets = [
        (s.get("name"), s.get("state") or "visible", s.get(rel)) for s in book.iter(f"{main}sheet")
    ]
    view = book.find(f"{main}bookViews/{main}workbookView")
    try:
        active = int(view.get("activeTab", "0")) if view is not None else 0
    except ValueError:
        active = 0
    visible = [i for i, (_n, state, _r) in enumerate(sheets) if state == "visible"]
    if not visible:
        return WorkbookLayout(None, None, False)
    chosen = active if active in visible else visible[0]
    name, _state, rid = sheets[chosen]
    target = next((r.get("Target") for r in rels if r.get("Id") == rid and r.get("Target")), None)
    member = None
    if target:
        member = target.lstrip("/") if target.startswith("/") else "xl/" + target
    calc = book.find(f"{main}calcPr")
    recalculate = calc is not None and calc.get("fullCalcOnLoad") in ("1", "true")
    return WorkbookLayout(name, member, recalculate)


SUSPECT = re.compile(rb"<f[ >/]|<v>-?\d{16,}</v>")  # a formula, or a number of 16+ digits
CELL = re.compile(rb'<c r="([A-Z]+)(\d+)"([^>]*?)(?:/>|>(.*?)</c>)', re.S)
EXACT_LIMIT = 2**53  # above it, a number read as a float is not the one written


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ch - 64
    return number


def _fix_cells(path: Path, book: WorkbookLayout, frame):
    """Cells fastexcel cannot read right, found in the sheet's XML (only when it holds a
    formula or a long number): a formula without a computed value (no `<v>`, or a workbook
    to be recalculated on opening: its values were written by a program that computes none)
    makes its row a `formula_without_value` reject, never '0' or empty; a number of 16 digits
    or more beyond 2^53 is taken as written in the file, as text (read as a float, two ids
    would become one)."""
    import polars as pl

    try:
        with zipfile.ZipFile(path) as archive:
            xml = archive.read(book.member)
    except (KeyError, OSError, zipfile.BadZipFile):
        return frame, []
    if not SUSPECT.search(xml):
        return frame, []
    first_row = first_column = None
    formulas: dict[int, list[str]] = {}
    exact: dict[tuple[int, int], str] = {}
    for match in CELL.finditer(xml):
        letters, row_text, attributes, inner = match.groups()
        row, column = int(row_text), _column_number(letters)
        if first_row is None:
            first_row = row
        first_column = column if first_column is None else min(first_column, column)
        inner = inner or b""
        if b"<f" in inner:
            if b"<v" not in inner or book.recalculate:
                formulas.setdefault(row, []).append(letters.decode() + row_text.decode())
            continue
        if b't="' not in attributes or b't="n"' in attributes:
            number = re.search(rb"<v>(-?\d{16,})</v>", inner)
            if number and abs(int(number[1])) > EXACT_LIMIT:
                exact[(row, column)] = number[1].decode()
    if first_row is None:
        return frame, []
    by_column: dict[int, dict[int, str]] = {}
    for (row, column), text in exact.items():
        index, position = row - first_row - 1, column - first_column
        if 0 <= index < frame.height and 0 <= position < frame.width:
            by_column.setdefault(position, {})[index] = text
    for position, texts in by_column.items():  # one new column each (not one per cell)
        name = frame.columns[position]
        values = frame[name].to_list()
        for index, text in texts.items():
            values[index] = text
        frame = frame.with_columns(pl.Series(name, values, dtype=pl.String))
    rejects = []
    drop = []
    for row, cells in sorted(formulas.items()):
        index = row - first_row - 1
        if not 0 <= index < frame.height:
            continue
        values = {str(k): v for k, v in frame.row(index, named=True).items()}
        rejects.append(
            (
                index + 2,
                "formula_without_value",
                f"formula cell(s) without a computed value: {', '.join(cells[:10])}; open "
                "and save the workbook in a spreadsheet program, or export values",
                " | ".join("" if v is None else str(v) for v in values.values()),
            )
        )
        drop.append(index)
    if drop:
        keep = pl.Series(range(frame.height)).is_in(drop).not_()
        frame = frame.filter(keep)
    return frame, rejects
