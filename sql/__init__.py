"""The warehouse's SQL: raw tables (raw/), then views by layer (staging/, core/, marts/)."""

from __future__ import annotations

from pathlib import Path

SQL_DIR = Path(__file__).parent
LAYERS = ("staging", "core", "marts")


def read_sql(relative: str) -> str:
    """The text of one .sql file under sql/."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def view_files() -> list[Path]:
    """View definitions in creation order: layer by layer, then by file name.

    Inside a layer, a view that reads another of the same layer must sort after it (name the
    files with a numeric prefix when needed).
    """
    files: list[Path] = []
    for layer in LAYERS:
        files.extend(sorted((SQL_DIR / layer).glob("*.sql")))
    return files
