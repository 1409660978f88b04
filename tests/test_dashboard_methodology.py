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
        # The definition and the decree's source in the reader's language (issue 18).
        row = text_of(browser, f"methodology-rule-{rule.id}")
        assert " ".join(rule.text("definition", lang).split()) in " ".join(row.split()), rule.id
    # R04's definition as the registry writes it in each language.
    r04 = {"fr": "Chaque palier de stabilisation après le deuxième du programme.",
           "nl": "Elke stabilisatiestap na de tweede van het programma.",
           "en": "Each stabilisation step after the programme's second."}  # fmt: skip
    assert r04[lang] in text_of(browser, "methodology-rule-R04")
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
    # The full document (English, docs/methodology.md) is there, folded, in the English view only.
    assert bool(browser.find_elements(By.ID, "methodology-document")) == (lang == "en")
    # The release calendar: each provisional month of the served warehouse (data to 30 June
    # 2025, as of 15 July 2025) is final 60 days after its last day: June -> 29 August 2025.
    calendar = text_of(browser, "methodology-calendar-section")
    assert {"fr": "29 août 2025", "nl": "29 augustus 2025", "en": "29 August 2025"}[
        lang
    ] in calendar
    assert console_errors(browser) == []
