"""The configuration in force: the defaults of `etl/base/config.toml`, overlaid by a user file."""

from __future__ import annotations

import datetime as dt
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULTS_PATH = Path(__file__).with_name("config.toml")
CONFIG_ENV = "BENZO_MONITOR_CONFIG"


# The settings with one value each (the key letter values are a dated list beside them), in the
# order documents show them.
SCALAR_FIELDS = (
    "grace_days",
    "stabilisation_days",
    "max_programme_days",
    "early_delivery_working_days",
    "programme_start",
    "structural_start",
    "provisional_days",
    "suppression_threshold",
    "interview_coefficient",
    "preparation_coefficient",
    "annual_budget_eur",
    "nowcast_history_months",
)


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message says why."""


@dataclass(frozen=True)
class KeyLetterValue:
    valid_from: dt.date
    value: float


@dataclass(frozen=True)
class Config:
    grace_days: int
    stabilisation_days: int
    max_programme_days: int
    early_delivery_working_days: int
    programme_start: dt.date
    structural_start: dt.date
    provisional_days: int
    suppression_threshold: int
    interview_coefficient: float
    preparation_coefficient: float
    key_letter_values: tuple[KeyLetterValue, ...]
    # SPEC §15 (the actuarial review); defaults here too, for configurations recorded before them.
    annual_budget_eur: float = 878000.0
    nowcast_history_months: int = 12
    source: tuple[str, ...] = field(default=())
    # [loading] limits of etl/base/config.toml. Not in SCALAR_FIELDS: they bound what a load
    # reads and change no figure (nor the snapshots' configuration fingerprint).
    max_expanded_bytes: int = 8 << 30
    max_expanded_lines: int = 100_000_000
    max_upload_mb: int = 200  # the dashboard's upload (issue 19, item 9)

    def as_rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs for documents that show the configuration in force."""
        rows = [(name, str(getattr(self, name))) for name in SCALAR_FIELDS]
        for kv in self.key_letter_values:
            rows.append((f"key_letter_value (from {kv.valid_from})", f"{kv.value}"))
        return rows


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc


def _as_date(value, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"{name} must be a date (YYYY-MM-DD), got {value!r}") from exc


def _as_number(value, name: str, kind=float):
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if kind is int and int(value) != value:
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return kind(value)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """The configuration in force: defaults, then `path` (or $BENZO_MONITOR_CONFIG) on top."""
    data = _read_toml(DEFAULTS_PATH)
    sources = [str(DEFAULTS_PATH)]
    user = path or os.environ.get(CONFIG_ENV)
    if user:
        data = _merge(data, _read_toml(Path(user)))
        sources.append(str(user))
    prog, rep, fees = data.get("programme", {}), data.get("reporting", {}), data.get("fees", {})
    actuarial = data.get("actuarial", {})
    load = data.get("loading", {})
    kvs = fees.get("key_letter_values") or []
    if not kvs:
        raise ConfigError("fees.key_letter_values needs at least one row (valid_from, value)")
    table = tuple(
        sorted(
            (
                KeyLetterValue(
                    _as_date(row.get("valid_from"), "key_letter_values.valid_from"),
                    _as_number(row.get("value"), "key_letter_values.value"),
                )
                for row in kvs
            ),
            key=lambda kv: kv.valid_from,
        )
    )
    cfg = Config(
        grace_days=_as_number(prog["grace_days"], "grace_days", int),
        stabilisation_days=_as_number(prog["stabilisation_days"], "stabilisation_days", int),
        max_programme_days=_as_number(prog["max_programme_days"], "max_programme_days", int),
        early_delivery_working_days=_as_number(
            prog["early_delivery_working_days"], "early_delivery_working_days", int
        ),
        programme_start=_as_date(prog["programme_start"], "programme_start"),
        structural_start=_as_date(prog["structural_start"], "structural_start"),
        provisional_days=_as_number(rep["provisional_days"], "provisional_days", int),
        suppression_threshold=_as_number(
            rep["suppression_threshold"], "suppression_threshold", int
        ),
        interview_coefficient=_as_number(fees["interview_coefficient"], "interview_coefficient"),
        preparation_coefficient=_as_number(
            fees["preparation_coefficient"], "preparation_coefficient"
        ),
        key_letter_values=table,
        annual_budget_eur=_as_number(actuarial["annual_budget_eur"], "annual_budget_eur"),
        nowcast_history_months=_as_number(
            actuarial["nowcast_history_months"], "nowcast_history_months", int
        ),
        source=tuple(sources),
        max_expanded_bytes=_as_number(
            load.get("max_expanded_bytes", 8 << 30), "max_expanded_bytes", int
        ),
        max_expanded_lines=_as_number(
            load.get("max_expanded_lines", 100_000_000), "max_expanded_lines", int
        ),
        max_upload_mb=_as_number(load.get("max_upload_mb", 200), "max_upload_mb", int),
    )
    if cfg.max_upload_mb < 1:
        raise ConfigError("max_upload_mb must be at least 1")
    if cfg.max_expanded_bytes < 1 or cfg.max_expanded_lines < 1:
        raise ConfigError("max_expanded_bytes and max_expanded_lines must be at least 1")
    if cfg.suppression_threshold < 1:
        raise ConfigError("suppression_threshold must be at least 1")
    if cfg.nowcast_history_months < 2:
        raise ConfigError("nowcast_history_months must be at least 2")
    return cfg


def setting_comments() -> dict[str, str]:
    """The comment lines just above each key of etl/base/config.toml, joined: its meaning."""
    meanings, comments = {}, []
    for raw in DEFAULTS_PATH.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#"):
            comments.append(line.lstrip("#").strip())
        elif "=" in line and not line.startswith("["):
            meanings.setdefault(line.split("=")[0].strip(), " ".join(comments))
            comments = []
        else:
            comments = []
    return meanings
