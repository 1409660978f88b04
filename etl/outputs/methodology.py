"""Generate docs/methodology.md: the methodology page, from the registry and the configuration.

The narrative is `sql/registry/methodology_template.md`; its `{{name}}` placeholders are filled
with the configuration in force, the metric and rule entries of the registry, the table
documents beside each mart (`sql/marts/*.md`) and the SQL of each rule.

    python -m etl.outputs.methodology [--config FILE] [--output docs/methodology.md] [--check]
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path

import sql as sql_pkg
from etl.base.codes import FEE_CODES
from etl.base.config import DEFAULTS_PATH, Config, load_config, setting_comments
from etl.base.registry import LANGUAGES, Metric, Registry, load_registry

TEMPLATE = sql_pkg.SQL_DIR / "registry" / "methodology_template.md"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "docs" / "methodology.md"
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "nl": "Nederlands"}
DIRECTION = {True: "higher is better", False: "lower is better", None: "neither"}
# The order in which the appendix presents the marts: what users read first, first.
MART_ORDER = (
    "mart_state_of_play",
    "mart_unassigned_by_month",
    "mart_state_of_play_revisions",
    "mart_state_of_play_billing_delay",
    "mart_cohorts",
    "mart_programme_steps",
    "mart_time_to_completion",
    "mart_time_to_completion_summary",
    "mart_completion_by_days_since_start",
    "mart_compliance_findings",
    "mart_bzra_window",
    "mart_bzra_free",
    "mart_fees_by_cnk_month",
    "mart_programmes_by_region",
    "mart_programmes_by_province",
    "mart_patients_by_profile",
    "mart_data_quality_months",
    "mart_data_quality_unmatched_corrections",
    "mart_data_quality_rejects",
)
COLUMN_LINE = re.compile(r"^- `(?P<column>[a-z0-9_]+)`: (?P<text>\S.*)$")


def mart_docs() -> dict[str, str]:
    """The document beside each mart view, by mart name (sql/marts/<mart>.md)."""
    return {
        path.stem: path.read_text(encoding="utf-8")
        for path in sorted((sql_pkg.SQL_DIR / "marts").glob("mart_*.md"))
    }


def documented_columns(doc: str) -> dict[str, str]:
    """The column lines of a mart document: column name -> its description."""
    found = {}
    for line in doc.splitlines():
        match = COLUMN_LINE.match(line)
        if match:
            found[match["column"]] = match["text"]
    return found


def setting_meanings(config: Config) -> list[tuple[str, str, str]]:
    """(name, value, meaning) of each setting in force, as the methodology page lists them.

    The meaning is the comment above the key in etl/base/config.toml (English).
    """
    meanings = setting_comments()
    rows = []
    for name, value in config.as_rows():
        key = "key_letter_values" if name.startswith("key_letter_value") else name
        meaning = meanings.get(key) or meanings.get("value", "")
        if key == "key_letter_values":
            meaning = "Key-letter value P from that date on (until the next row)."
        rows.append((name, value, " ".join(meaning.split())))
    return rows


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _config_rows(config: Config) -> str:
    return "\n".join(
        f"| `{name}` | {value} | {_cell(meaning)} |"
        for name, value, meaning in setting_meanings(config)
    )


def _fee_code_rows(config: Config) -> str:
    coefficient = {
        "interview": config.interview_coefficient,
        "preparation": config.preparation_coefficient,
    }
    return "\n".join(
        f"| {code.cnk} | {code.label_en} | P × {coefficient[code.coefficient]:g} |"
        for code in FEE_CODES
    )


def _metric_table(metrics: list[Metric]) -> str:
    lines = ["| metric | unit | definition | direction |", "| --- | --- | --- | --- |"]
    for m in metrics:
        definition = m.definition
        if m.disclosure == "rate":
            definition += f" Numerator: {m.numerator}. Denominator: {m.denominator}."
        lines.append(
            f"| **{_cell(m.label('en'))}** (`{m.id}`) | {m.unit} | {_cell(definition)} "
            f"| {DIRECTION[m.higher_is_better]} |"
        )
    return "\n".join(lines)


def _rule_table(registry: Registry) -> str:
    lines = ["| rule | flags | severity | in the decree |", "| --- | --- | --- | --- |"]
    for r in registry.rules:
        lines.append(
            f"| **{r.id}** {_cell(r.label('en'))} | {_cell(r.definition)} | {r.severity} "
            f"| {_cell(r.source)} |"
        )
    return "\n".join(lines)


def _label_table(registry: Registry) -> str:
    header = "| id | " + " | ".join(LANGUAGE_NAMES[lang] for lang in LANGUAGES) + " |"
    lines = [header, "| --- |" + " --- |" * len(LANGUAGES)]
    for entry in [*registry.metrics, *registry.rules]:
        lines.append(
            f"| `{entry.id}` | "
            + " | ".join(_cell(entry.labels[lang]) for lang in LANGUAGES)
            + " |"
        )
    return "\n".join(lines)


def _marts_section() -> str:
    docs = mart_docs()
    order = [m for m in MART_ORDER if m in docs] + sorted(set(docs) - set(MART_ORDER))
    parts = []
    for doc in (docs[m] for m in order):
        # Each document starts with "# <mart>": one level down inside the appendix.
        parts.append(re.sub(r"^# ", "### ", doc.strip(), count=1))
    return "\n\n".join(parts)


def _rule_sql_section(registry: Registry) -> str:
    return "\n\n".join(
        f"### {r.id} {r.label('en')}\n\n```sql\n{r.sql()}\n```" for r in registry.rules
    )


def _long_date(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def render(config: Config, registry: Registry | None = None) -> str:
    """The methodology page for this configuration."""
    registry = registry or load_registry()
    june_end = dt.date(2025, 6, 30)
    final_first = june_end + dt.timedelta(days=config.provisional_days)
    sources = ", ".join(
        "etl/base/config.toml" if Path(s) == DEFAULTS_PATH else Path(s).name for s in config.source
    )
    values = {
        "config_source": sources or "etl/base/config.toml",
        "fee_codes": _fee_code_rows(config),
        "preparation_coefficient": f"{config.preparation_coefficient:g}",
        "stabilisation_days": str(config.stabilisation_days),
        "grace_days": str(config.grace_days),
        "provisional_days": str(config.provisional_days),
        "nowcast_history_months": str(config.nowcast_history_months),
        "annual_budget_eur": f"{config.annual_budget_eur:,.0f}",
        "example_provisional_last": _long_date(final_first - dt.timedelta(days=1)),
        "example_final_first": _long_date(final_first),
        "early_delivery_working_days": str(config.early_delivery_working_days),
        "suppression_threshold": str(config.suppression_threshold),
        "suppression_threshold_minus_one": str(config.suppression_threshold - 1),
        "state_of_play_metrics": _metric_table(registry.group("state_of_play")),
        "split_metrics": _metric_table(registry.group("reduction_split")),
        "cohort_metrics": _metric_table(registry.group("cohorts")),
        "revision_metrics": _metric_table(registry.group("revisions")),
        "rules": _rule_table(registry),
        "config": _config_rows(config),
        "labels": _label_table(registry),
        "marts": _marts_section(),
        "rule_sql": _rule_sql_section(registry),
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    unknown = set(re.findall(r"\{\{(\w+)\}\}", text)) - values.keys()
    if unknown:
        raise KeyError(f"unknown placeholders in {TEMPLATE.name}: {', '.join(sorted(unknown))}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m[1]], text)


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the methodology page."""
    parser = argparse.ArgumentParser(prog="python -m etl.outputs.methodology", description=__doc__)
    parser.add_argument("--config", type=Path, default=None, help="a TOML configuration file")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the output is not up to date"
    )
    args = parser.parse_args(argv)
    text = render(load_config(args.config))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(
                f"{args.output} is out of date: run python -m etl.outputs.methodology",
                file=sys.stderr,
            )
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
