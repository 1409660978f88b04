"""The methodology page in headless Chromium: the registry and the configuration in force."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from etl.base.registry import load_registry
from tests.browser import console_errors, open_page, text_of

# The defaults of SPEC §11 as each locale writes them, worked out by hand.
EXPECTED = {
    "fr": {"title": "Méthodologie", "prep": "7,08", "interview": "10,47", "P": "2,2193",
           "start": "1 février 2023", "warning": "avertissement", "error": "erreur"},
    "nl": {"title": "Methodologie", "prep": "7,08", "interview": "10,47", "P": "2,2193",
           "start": "1 februari 2023", "warning": "waarschuwing", "error": "fout"},
    "en": {"title": "Methodology", "prep": "7.08", "interview": "10.47", "P": "2.2193",
           "start": "1 February 2023", "warning": "warning", "error": "error"},
}  # fmt: skip


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_methodology_in_each_language(served, browser, lang):
    expected = EXPECTED[lang]
    open_page(browser, f"{served.url}/methodology?lang={lang}", "methodology-metrics")
    assert text_of(browser, "methodology-title") == expected["title"]
    assert text_of(browser, "nav-methodology") == expected["title"]
    registry = load_registry()
    metrics = text_of(browser, "methodology-metrics")
    for metric in registry.metrics:
        assert metric.label(lang) in metrics, metric.id
        assert text_of(browser, f"methodology-label-{metric.id}") == metric.label(lang)
    rules = text_of(browser, "methodology-rules")
    for rule in registry.rules:
        assert rule.label(lang) in rules, rule.id
        assert text_of(browser, f"methodology-severity-{rule.id}") == expected[rule.severity]
    # The configuration in force (the defaults: etl/base/config.toml).
    setting = {
        name: text_of(browser, f"methodology-setting-{name}-value")
        for name in ("grace_days", "suppression_threshold", "stabilisation_days",
                     "provisional_days", "preparation_coefficient", "interview_coefficient",
                     "programme_start")
    }  # fmt: skip
    assert setting == {
        "grace_days": "30",
        "suppression_threshold": "5",
        "stabilisation_days": "30",
        "provisional_days": "60",
        "preparation_coefficient": expected["prep"],
        "interview_coefficient": expected["interview"],
        "programme_start": expected["start"],
    }
    assert (
        text_of(browser, "methodology-setting-key_letter_value-2023-01-01-value") == (expected["P"])
    )
    p_table = text_of(browser, "methodology-p-table")
    assert expected["P"] in p_table
    assert f"P × {expected['prep']}" in text_of(browser, "methodology-cnk-5521984")
    assert f"P × {expected['interview']}" in text_of(browser, "methodology-cnk-5521950")
    # The full English document is there, folded.
    assert browser.find_elements(By.ID, "methodology-document")
    assert console_errors(browser) == []
