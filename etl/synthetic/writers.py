"""The writers of the synthetic exports: typed rows in, a CSV, CSV.gz, Parquet or XLSX file
out, in one style's headers, dates, decimals and encoding.

Typed rows have the columns of `_TYPED_SCHEMA` (amounts in cents, billing months as
year * 12 + month - 1, `tie` ignored). The files never depend on the wall clock: the gzip
header has no time and the workbook a fixed creation date, so the same rows give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
from datetime import date
from pathlib import Path

import polars as pl
import xlsxwriter

from etl.synthetic.calibration import EPOCH
from etl.synthetic.styles import CANONICAL_ORDER, Style

FORMAT_SUFFIX = {"csv": ".csv", "csv.gz": ".csv.gz", "parquet": ".parquet", "xlsx": ".xlsx"}
XLSX_MAX_ROWS = 1_000_000
EXCEL_EPOCH = date(1899, 12, 30).toordinal()

_TYPED_SCHEMA = {
    "patient_id": pl.String, "pharmacy_id": pl.String, "delivery_date": pl.Date,
    "date_text": pl.String, "cnk": pl.String, "quantity": pl.Int32, "cents": pl.Int64,
    "bm": pl.Int32, "insurer_code": pl.String, "birth_year": pl.Int32, "sex": pl.String,
    "postcode": pl.String, "prescriber_id": pl.String, "label": pl.String, "tie": pl.Float64,
}  # fmt: skip


def _text_columns(style: Style) -> list[pl.Expr]:
    """Typed rows -> the style's text columns, in CANONICAL_ORDER with the style's headers."""
    cents = pl.col("cents")
    amount = pl.concat_str([
        pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (cents.abs() // 100).cast(pl.String), pl.lit(style.decimal),
        (cents.abs() % 100).cast(pl.String).str.zfill(2),
    ])  # fmt: skip
    year = (pl.col("bm") // 12).cast(pl.String)
    month = (pl.col("bm") % 12 + 1).cast(pl.String).str.zfill(2)
    date_text = (
        pl.when(pl.col("date_text").is_not_null())
        .then(pl.col("date_text"))
        .otherwise(pl.col("delivery_date").dt.strftime(style.date_format))
    )
    sex = pl.when(pl.col("sex") == "F").then(pl.lit(style.female)).otherwise(pl.lit(style.male))
    exprs = [
        pl.col("patient_id"), pl.col("pharmacy_id"), date_text, pl.col("cnk"),
        pl.col("quantity").cast(pl.String), amount, style.billing_month(year, month),
        pl.col("insurer_code"), pl.col("birth_year").cast(pl.String), sex, pl.col("postcode"),
        pl.col("prescriber_id"), pl.col("label"),
    ]  # fmt: skip
    return [e.alias(h) for e, h in zip(exprs, style.headers, strict=True)]


class _CsvWriter:
    def __init__(self, path: Path, style: Style, gzipped: bool):
        self.style = style
        self.raw = path.open("wb")
        self.fh = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=6)
            if gzipped
            else self.raw
        )
        self.rows = 0
        self.header_done = False

    def write(self, df: pl.DataFrame) -> None:
        buf = io.BytesIO()
        df.select(_text_columns(self.style)).write_csv(
            buf,
            separator=self.style.delimiter,
            line_terminator=self.style.line_terminator,
            quote_style="necessary",
            include_header=not self.header_done,
            null_value="",
        )
        data = buf.getvalue()
        if self.style.encoding != "utf-8":
            data = data.decode("utf-8").encode(self.style.encoding)
        if not self.header_done and self.style.bom:
            data = b"\xef\xbb\xbf" + data
        self.header_done = True
        self.fh.write(data)
        self.rows += df.height

    def close(self) -> None:
        if not self.header_done:
            self.write(pl.DataFrame(schema=_TYPED_SCHEMA))
        if self.fh is not self.raw:
            self.fh.close()
        self.raw.close()


class _ParquetWriter:
    def __init__(self, path: Path, style: Style):
        self.path, self.style = path, style
        self.writer = None
        self.rows = 0

    def _frame(self, df: pl.DataFrame) -> pl.DataFrame:
        style = self.style
        h = dict(zip(CANONICAL_ORDER, style.headers, strict=True))
        typed = [
            pl.col("quantity").alias(h["quantity"]),
            (pl.col("cents") / 100).alias(h["amount_eur"]),
            pl.col("birth_year").alias(h["patient_birth_year"]),
        ]
        if style.name == "iso":  # a real DATE column: an unreadable date can only be missing
            typed.append(
                pl.when(pl.col("date_text").is_null())
                .then(pl.col("delivery_date"))
                .otherwise(None)
                .alias(h["delivery_date"])
            )
        text = df.select(_text_columns(style))
        return text.with_columns(df.select(typed).get_columns())

    def write(self, df: pl.DataFrame) -> None:
        # imported here: pyarrow.parquet takes 0.15 s to import, which the other formats and
        # every other command need not pay
        import pyarrow.parquet as pq

        table = self._frame(df).to_arrow()
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
            self.schema = table.schema
        self.writer.write_table(table.cast(self.schema))
        self.rows += df.height

    def close(self) -> None:
        if self.writer is None:
            self.write(pl.DataFrame(schema=_TYPED_SCHEMA))
        self.writer.close()


class _XlsxWriter:
    def __init__(self, path: Path, style: Style):
        self.style = style
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
        self.book.set_properties({"created": dt.datetime(2025, 7, 2), "author": "benzo-monitor"})
        self.sheet = self.book.add_worksheet("export")
        self.date_fmt = self.book.add_format({"num_format": style.excel_date_format})
        self.amount_fmt = self.book.add_format({"num_format": "0.00"})
        for c, header in enumerate(style.headers):
            self.sheet.write_string(0, c, header)
        self.rows = 0

    def write(self, df: pl.DataFrame) -> None:
        style, ws = self.style, self.sheet
        text = df.select(_text_columns(style))
        h = dict(zip(CANONICAL_ORDER, style.headers, strict=True))
        serial = (df["delivery_date"].cast(pl.Int32) + (EPOCH - EXCEL_EPOCH)).to_list()
        bad_date = df["date_text"].to_list()
        qty = df["quantity"].to_list()
        amount = (df["cents"] / 100).to_list()
        birth = df["birth_year"].to_list()
        strings = {name: text[h[name]].to_list() for name in CANONICAL_ORDER}
        plain = (
            "patient_id",
            "pharmacy_id",
            "cnk",
            "billing_month",
            "insurer_code",
            "patient_sex",
            "pharmacy_postcode",
            "prescriber_id",
            "label",
        )
        col = {name: i for i, name in enumerate(CANONICAL_ORDER)}
        write_string, write_number = ws.write_string, ws.write_number
        for i in range(df.height):
            r = self.rows + i + 1
            for name in plain:
                value = strings[name][i]
                if value is not None:
                    write_string(r, col[name], value)
            if bad_date[i] is None:
                write_number(r, col["delivery_date"], serial[i], self.date_fmt)
            else:
                write_string(r, col["delivery_date"], bad_date[i])
            write_number(r, col["quantity"], qty[i])
            write_number(r, col["amount_eur"], amount[i], self.amount_fmt)
            write_number(r, col["patient_birth_year"], birth[i])
        self.rows += df.height

    def close(self) -> None:
        self.book.close()


def open_writer(path: Path, style: Style, file_format: str):
    """A writer of typed rows to `path`: `write(df)` as often as needed, then `close()`;
    `rows` counts the rows written."""
    if file_format in ("csv", "csv.gz"):
        return _CsvWriter(path, style, gzipped=file_format == "csv.gz")
    if file_format == "parquet":
        return _ParquetWriter(path, style)
    return _XlsxWriter(path, style)


def export_name(split: str, bm: int | None, file_format: str) -> str:
    """The name of the file of billing month `bm` (year * 12 + month - 1), or of the single
    file."""
    suffix = FORMAT_SUFFIX[file_format]
    if split == "single" or bm is None:
        return f"export{suffix}"
    return f"export_{bm // 12:04d}-{bm % 12 + 1:02d}{suffix}"


def remove_stale(output_dir: Path) -> list[Path]:
    """Delete the export files of an earlier run in `output_dir` (`export.<ext>`,
    `export_YYYY-MM.<ext>`; nothing else) and return their paths."""
    removed = []
    for path in sorted(output_dir.iterdir()):
        name = path.name
        for suffix in FORMAT_SUFFIX.values():
            if not name.endswith(suffix):
                continue
            stem = name[: -len(suffix)]
            month = stem[len("export_") :]
            if stem == "export" or (
                stem.startswith("export_") and len(month) == 7 and month[4] == "-"
                and month[:4].isdigit() and month[5:].isdigit()
            ):  # fmt: skip
                path.unlink()
                removed.append(path)
            break
    return removed
