"""The registry of metrics and compliance rules: one TOML file each under sql/registry/.

Every label, definition, numerator and denominator (each in French, Dutch and English), the
decree's source (in the three languages where it is more than a section number), direction and
severity shown anywhere — the methodology document, the export headers, the dashboard — comes
from these files, as OpenPrescribing's measure definitions do. The SQL that computes an entry
is named in it: a mart column, or for a rule its CTE in sql/marts/mart_compliance_findings.sql or
in the core view it reads, sql/core/95_core_compliance_findings_causal.sql.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import sql as sql_pkg

REGISTRY_DIR = sql_pkg.SQL_DIR / "registry"
LANGUAGES = ("en", "fr", "nl")
METRIC_GROUPS = ("state_of_play", "reduction_split", "cohorts", "revisions")
DISCLOSURE_KINDS = ("count", "rate", "amount")
# What a metric counts or measures, shown beside its definition in the methodology. A count is
# of patients, programmes or events, an amount in EUR, a rate a fraction.
UNITS = {"count": ("patients", "programmes", "events"), "amount": ("EUR",), "rate": ("fraction",)}
SEVERITIES = ("error", "warning")


class RegistryError(ValueError):
    """A registry file that is incomplete or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Metric:
    """One metric of the monthly state of play (SPEC §6) or of the cohort outcomes (§7)."""

    id: str
    group: str  # state_of_play | reduction_split | cohorts | revisions
    order: int
    labels: dict[str, str]
    definition: str
    unit: str  # patients | programmes | events (counts), EUR (amounts), fraction (rates)
    disclosure: str  # count | rate | amount: how disclosure control (SPEC §9) treats it
    marts: tuple[str, ...]
    column: str
    numerator: str | None = None
    denominator: str | None = None
    denominator_column: str | None = None  # the mart column holding the denominator (rates)
    numerator_column: str | None = None  # the mart column holding the numerator (rates, §9)
    higher_is_better: bool | None = None  # None: a volume, neither good nor bad
    capsules: int | None = None  # reduction_split metrics: the capsule count they count
    source: str = ""
    path: Path | None = None
    # The texts in the three languages: definition, numerator, denominator, source (the str
    # fields above are their English versions, for the English methodology document), and
    # `why`, why the figure matters, in plain words (OpenPrescribing's "why it matters").
    texts: dict[str, dict[str, str]] = field(default_factory=dict)

    def label(self, language: str = "en") -> str:
        """The label in `language` (en, fr or nl)."""
        return self.labels[language]

    def text(self, name: str, language: str = "en") -> str:
        """The definition, numerator, denominator, source or why in `language` ("" when none)."""
        return texts_in(self.texts, name, language)


@dataclass(frozen=True)
class Rule:
    """One compliance rule of SPEC §8."""

    id: str
    order: int
    severity: str  # error | warning
    labels: dict[str, str]
    definition: str
    sql_file: str  # relative to sql/
    sql_cte: str  # the CTE of sql_file that flags the events
    source: str = ""
    path: Path | None = None
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # as Metric.texts

    def label(self, language: str = "en") -> str:
        """The label in `language` (en, fr or nl)."""
        return self.labels[language]

    def text(self, name: str, language: str = "en") -> str:
        """The definition or source in `language` ("" when none)."""
        return texts_in(self.texts, name, language)

    def sql(self) -> str:
        """The SQL of the rule: its CTE, preceded by the helper CTEs named with its prefix.

        Rule R08 has helpers `r08_...` that its final CTE reads; each is shown as written.
        """
        text = sql_pkg.read_sql(self.sql_file)
        prefix = self.id.lower() + "_"
        names = re.findall(rf"^({re.escape(prefix)}\w*) as \(", text, flags=re.MULTILINE)
        if self.sql_cte not in names:
            raise RegistryError(f"{self.path}: no CTE {self.sql_cte!r} in sql/{self.sql_file}")
        return "\n\n".join(f"{name} as (\n{_indent(cte_text(text, name))}\n)" for name in names)


@dataclass(frozen=True)
class Registry:
    """Every metric and rule, in their documented order."""

    metrics: tuple[Metric, ...]
    rules: tuple[Rule, ...]

    def group(self, name: str) -> list[Metric]:
        """The metrics of one group, in their documented order."""
        return [m for m in self.metrics if m.group == name]

    def metric(self, metric_id: str) -> Metric:
        """The metric with this id (KeyError if none)."""
        for metric in self.metrics:
            if metric.id == metric_id:
                return metric
        raise KeyError(metric_id)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError if none)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())


def cte_text(sql_text: str, name: str) -> str:
    """The body of CTE `name` in `sql_text` (from `name as (` to its closing parenthesis)."""
    match = re.search(rf"\b{re.escape(name)} as \(", sql_text)
    if not match:
        raise RegistryError(f"no CTE named {name!r}")
    depth, start = 1, match.end()
    for i in range(start, len(sql_text)):
        ch = sql_text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                body = sql_text[start:i]
                lines = body.strip("\n").splitlines()
                indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
                return "\n".join(x[indent:] for x in lines)
    raise RegistryError(f"CTE {name!r} is not closed")


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML: {exc}") from exc


def _labels(data: dict, path: Path) -> dict[str, str]:
    labels = data.get("label") or {}
    missing = [lang for lang in LANGUAGES if not str(labels.get(lang, "")).strip()]
    if missing:
        raise RegistryError(f"{path}: label missing in {', '.join(missing)}")
    return {lang: labels[lang].strip() for lang in LANGUAGES}


def texts_in(texts: dict[str, dict[str, str]], name: str, language: str) -> str:
    """Text `name` of a registry entry in `language` ("" when the entry has none)."""
    return texts.get(name, {}).get(language, "")


def _translated(data: dict, key: str, path: Path, *, required: bool) -> dict[str, str]:
    """A text in the three languages: a table en/fr/nl, or (for a source that is only section
    numbers, the same in every language) one string. {} when absent and not required."""
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise RegistryError(f"{path}: {key} is required")
        return {}
    if isinstance(value, str):
        if key != "source":
            raise RegistryError(f"{path}: {key} needs a table with en, fr and nl")
        return {lang: value.strip() for lang in LANGUAGES}
    missing = [lang for lang in LANGUAGES if not str(value.get(lang, "")).strip()]
    if missing:
        raise RegistryError(f"{path}: {key} missing in {', '.join(missing)}")
    return {lang: value[lang].strip() for lang in LANGUAGES}


def _texts(data: dict, path: Path, names: tuple[str, ...]) -> dict[str, dict[str, str]]:
    texts = {name: _translated(data, name, path, required=name == "definition") for name in names}
    return {name: value for name, value in texts.items() if value}


def _required(data: dict, key: str, path: Path):
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RegistryError(f"{path}: {key} is required")
    return value.strip() if isinstance(value, str) else value


def read_metric(path: Path) -> Metric:
    """One metric file, checked: every label, the definition, a known group and disclosure."""
    data = _read(path)
    texts = _texts(data, path, ("definition", "numerator", "denominator", "source", "why"))
    metric = Metric(
        id=_required(data, "id", path),
        group=_required(data, "group", path),
        order=_required(data, "order", path),
        labels=_labels(data, path),
        definition=texts_in(texts, "definition", "en"),
        unit=_required(data, "unit", path),
        disclosure=_required(data, "disclosure", path),
        marts=tuple(_required(data, "marts", path)),
        column=data.get("column") or data["id"],
        numerator=texts_in(texts, "numerator", "en") or None,
        denominator=texts_in(texts, "denominator", "en") or None,
        denominator_column=data.get("denominator_column"),
        numerator_column=data.get("numerator_column"),
        higher_is_better=data.get("higher_is_better"),
        capsules=data.get("capsules"),
        source=texts_in(texts, "source", "en"),
        path=path,
        texts=texts,
    )
    if metric.id != path.stem:
        raise RegistryError(f"{path}: id {metric.id!r} differs from the file name")
    if metric.group not in METRIC_GROUPS:
        raise RegistryError(f"{path}: group must be one of {', '.join(METRIC_GROUPS)}")
    if metric.disclosure not in DISCLOSURE_KINDS:
        raise RegistryError(f"{path}: disclosure must be one of {', '.join(DISCLOSURE_KINDS)}")
    if metric.unit not in UNITS[metric.disclosure]:
        raise RegistryError(
            f"{path}: a {metric.disclosure} metric's unit is one of "
            f"{', '.join(UNITS[metric.disclosure])}, not {metric.unit!r}"
        )
    if metric.disclosure == "rate" and not (
        metric.numerator and metric.denominator and metric.denominator_column
    ):
        raise RegistryError(f"{path}: a rate needs numerator, denominator, denominator_column")
    return metric


def read_rule(path: Path) -> Rule:
    """One rule file, checked: every label, the definition, the severity and its SQL."""
    data = _read(path)
    texts = _texts(data, path, ("definition", "source"))
    rule = Rule(
        id=_required(data, "id", path),
        order=_required(data, "order", path),
        severity=_required(data, "severity", path),
        labels=_labels(data, path),
        definition=texts_in(texts, "definition", "en"),
        sql_file=_required(data, "sql_file", path),
        sql_cte=_required(data, "sql_cte", path),
        source=texts_in(texts, "source", "en"),
        path=path,
        texts=texts,
    )
    if rule.id != path.stem:
        raise RegistryError(f"{path}: id {rule.id!r} differs from the file name")
    if rule.severity not in SEVERITIES:
        raise RegistryError(f"{path}: severity must be one of {', '.join(SEVERITIES)}")
    return rule


@lru_cache(maxsize=1)
def load_registry() -> Registry:
    """Every metric and rule of sql/registry/, sorted by group and order."""
    metrics = [read_metric(p) for p in sorted((REGISTRY_DIR / "metrics").glob("*.toml"))]
    rules = [read_rule(p) for p in sorted((REGISTRY_DIR / "rules").glob("*.toml"))]
    ids = [m.id for m in metrics] + [r.id for r in rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RegistryError(f"duplicate registry ids: {', '.join(duplicates)}")
    metrics.sort(key=lambda m: (METRIC_GROUPS.index(m.group), m.order))
    rules.sort(key=lambda r: r.order)
    return Registry(metrics=tuple(metrics), rules=tuple(rules))
