"""The metric registry, the mart documents and the methodology page cannot drift.

Fails when a mart or one of its columns is undocumented (or documented but gone), when a
metric or rule lacks a label in a language or points at SQL that does not exist, when the
registry's metric names differ from the contract of SPEC §6-§8, and when docs/methodology.md
is not what `python -m etl.outputs.methodology` generates.
"""

from __future__ import annotations

import re

import pytest

import sql as sql_pkg
from etl.base.config import load_config
from etl.base.registry import LANGUAGES, RegistryError, load_registry, read_metric, read_rule
from etl.outputs import methodology
from tests.sqlcase import SPEC_STATE_OF_PLAY_METRICS, build, query

# SPEC §6, in the order of its table; §7's keys; §8's rules and severities.
STATE_OF_PLAY = list(SPEC_STATE_OF_PLAY_METRICS)
COHORTS = [
    "programmes",
    "completed",
    "stopped",
    "in_progress",
    "completion_rate",
    "stabilisation_rate",
    "follow_up_rate",
    # SPEC v2 §10/§14: per N in 90/180/365, observable, BZRA-free, rate
    *(f"bzra_free_{n}d{suffix}" for n in (90, 180, 365) for suffix in ("_observable", "", "_rate")),
]
RULES = {f"R{n:02d}": "warning" if n in (8, 12, 13, 15, 16, 17) else "error" for n in range(1, 19)}


@pytest.fixture(scope="module")
def mart_columns(tmp_path_factory) -> dict[str, list[str]]:
    """Every mart view of a real warehouse and its columns."""
    db = build(tmp_path_factory.mktemp("registry"), [])
    views = query(
        db,
        "select view_name from duckdb_views() where view_name like 'mart_%' order by 1",
    )
    return {
        v["view_name"]: [
            c["column_name"]
            for c in query(db, f"describe {v['view_name']}")  # noqa: S608 - a view name
        ]
        for v in views
    }


def test_every_mart_has_a_document(mart_columns):
    docs = methodology.mart_docs()
    assert sorted(docs) == sorted(mart_columns)
    for mart, doc in docs.items():
        assert doc.startswith(f"# {mart}\n"), mart


def test_every_mart_column_is_documented(mart_columns):
    for mart, doc in methodology.mart_docs().items():
        documented = methodology.documented_columns(doc)
        assert list(documented) == mart_columns[mart], mart
        assert all(len(text) > 10 for text in documented.values()), mart


def test_registry_matches_the_contract():
    registry = load_registry()
    assert [m.id for m in registry.group("state_of_play")] == STATE_OF_PLAY
    assert [m.id for m in registry.group("cohorts")] == COHORTS
    assert [m.capsules for m in registry.group("reduction_split")] == [10, 20, 30]
    assert {r.id: r.severity for r in registry.rules} == RULES
    assert [r.id for r in registry.rules] == sorted(RULES)


def test_every_entry_has_labels_in_three_languages_and_a_definition():
    registry = load_registry()
    for entry in [*registry.metrics, *registry.rules]:
        assert set(entry.labels) == set(LANGUAGES), entry.id
        assert all(entry.labels[lang].strip() for lang in LANGUAGES), entry.id
        assert len(entry.definition) > 30, entry.id
    for metric in registry.metrics:
        if metric.disclosure == "rate":
            assert metric.numerator and metric.denominator, metric.id


def test_every_metric_lives_in_its_marts(mart_columns):
    for metric in load_registry().metrics:
        for mart in metric.marts:
            assert metric.column in mart_columns[mart], (metric.id, mart)
            if metric.denominator_column:
                assert metric.denominator_column in mart_columns[mart], metric.id


def test_every_rule_has_its_sql():
    """Each rule's CTE flags its id with the registry's severity, and is one of the findings of
    its file; a file other than the mart is a core view the mart reads in full."""
    mart = sql_pkg.read_sql("marts/mart_compliance_findings.sql")
    for rule in load_registry().rules:
        body = rule.sql()
        assert f"'{rule.id}' as rule_id" in body, rule.id
        # The SQL states the registry's severity (fees_flagged_eur sums the error findings).
        assert f"'{rule.severity}' as severity" in body, rule.id
        text = sql_pkg.read_sql(rule.sql_file)
        assert re.search(rf"select \* from {rule.sql_cte}\b", text), rule.id
        if rule.sql_file != "marts/mart_compliance_findings.sql":
            view = re.search(r"create or replace view (\w+) as", text).group(1)
            assert re.search(rf"select \* from {view}\b", mart), rule.id


def test_a_missing_label_is_refused(tmp_path):
    source = sql_pkg.SQL_DIR / "registry" / "metrics" / "patients_initiated.toml"
    broken = tmp_path / "patients_initiated.toml"
    broken.write_text(
        # The first one-line `nl = ` is the label's (the definition's is a multi-line string).
        re.sub(r'(?m)^nl = "[^"\n]*"$', "", source.read_text(encoding="utf-8"), count=1),
        encoding="utf-8",
    )
    with pytest.raises(RegistryError, match="label missing in nl"):
        read_metric(broken)
    rule = tmp_path / "R01.toml"
    rule.write_text('id = "R01"\norder = 1\nseverity = "error"\n', encoding="utf-8")
    with pytest.raises(RegistryError):
        read_rule(rule)


def test_a_definition_needs_the_three_languages(tmp_path):
    """Issue 18: no English on a French or Dutch screen, so a definition (or a numerator, a
    denominator) without its Dutch text, or written as one string, is refused."""
    source = (sql_pkg.SQL_DIR / "registry" / "metrics" / "completion_rate.toml").read_text(
        encoding="utf-8"
    )
    broken = tmp_path / "completion_rate.toml"
    without_nl = re.sub(r'(?ms)^nl = """.*?"""\n', "", source, count=1)
    broken.write_text(without_nl, encoding="utf-8")
    with pytest.raises(RegistryError, match="definition missing in nl"):
        read_metric(broken)
    # The denominator as one (English) string at the top, its table renamed away.
    one_string = source.replace(
        'id = "completion_rate"\n', 'id = "completion_rate"\ndenominator = "x"\n'
    )
    broken.write_text(one_string.replace("\n[denominator]\n", "\n[unused]\n"), encoding="utf-8")
    with pytest.raises(RegistryError, match="denominator needs a table with en, fr and nl"):
        read_metric(broken)
    metric = read_metric(sql_pkg.SQL_DIR / "registry" / "metrics" / "completion_rate.toml")
    assert metric.text("numerator", "fr") == "programmes terminés"
    assert metric.text("denominator", "nl") == "afgeronde + stopgezette programma's"
    assert metric.numerator == "completed programmes"  # the English field, for the document


def test_a_unit_that_does_not_fit_the_disclosure_is_refused(tmp_path):
    """A count is of patients, programmes or events; a rate is a fraction; an amount in EUR."""
    source = sql_pkg.SQL_DIR / "registry" / "metrics" / "patients_initiated.toml"
    broken = tmp_path / "patients_initiated.toml"
    broken.write_text(
        source.read_text(encoding="utf-8").replace('unit = "patients"', 'unit = "EUR"'),
        encoding="utf-8",
    )
    with pytest.raises(RegistryError, match="unit is one of patients, programmes, events"):
        read_metric(broken)


def test_methodology_is_up_to_date(monkeypatch):
    monkeypatch.delenv("BENZO_MONITOR_CONFIG", raising=False)
    expected = methodology.render(load_config())
    current = methodology.DEFAULT_OUTPUT.read_text(encoding="utf-8")
    assert current == expected, (
        "docs/methodology.md is stale: run python -m etl.outputs.methodology"
    )


def test_methodology_shows_the_configuration_in_force(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[programme]\ngrace_days = 45\n", encoding="utf-8")
    text = methodology.render(load_config(config))
    assert "| `grace_days` | 45 |" in text
    assert "more than\n45 days (`grace_days`)" in text or "45 days (`grace_days`)" in text
    assert "{{" not in text
