"""Signing in through the form in headless Chromium, as a reviewer and as an analyst: each sees
the view of their role, and no page logs a console error under the security headers (a
Content-Security-Policy violation is a console error)."""

from __future__ import annotations

import re
import time

import pytest

from bench.served import start_server_env
from tests.browser import (
    console_errors,
    open_page,
    sign_in_form,
    stop_process,
    text_of,
    wait_for,
    wait_for_text,
    warehouse_copy,
)
from tests.test_auth import ANALYST, ID_SHAPE, REVIEWER, add_user

pytestmark = pytest.mark.browser
PAGES = {
    "/": "state",
    "/outcomes": "outcomes",
    "/fees": "fees",
    "/compliance": "compliance",
    "/regions": "regions",
    "/data": "data",
    "/methodology": "methodology",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("auth-browser")
    db = warehouse_copy(folder)
    assert add_user(db, ANALYST[0], "analyst", ANALYST[1]) == 0
    assert add_user(db, REVIEWER[0], "reviewer", REVIEWER[1]) == 0
    process, url = start_server_env(db, {})
    yield url
    stop_process(process)


@pytest.fixture
def driver(browser, site):
    browser.get(site + "/login")
    browser.delete_all_cookies()  # (the shared browser: cookies are per host, not per port)
    console_errors(browser)
    yield browser
    browser.get(site + "/login")
    browser.delete_all_cookies()
    # Leave no page of this server open (the shared browser): once the server stops, its
    # pending requests would fail and show up in the next test's console.
    browser.get("about:blank")
    console_errors(browser)


def _views(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [label.text for label in driver.find_elements(By.CSS_SELECTOR, "#app-view label")]


def _wait_for_path(driver, path: str, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.current_url.split("?")[0].endswith(path):
            return
        time.sleep(0.1)
    raise AssertionError(f"not at {path}: {driver.current_url}")


def test_reviewer_signs_in_and_sees_the_publication_view_only(site, driver):
    from selenium.webdriver.common.by import By

    # The link asks for the analyst view of the findings; sign-in brings the reviewer back to
    # it, in the publication view.
    sign_in_form(driver, site, *REVIEWER, path="/compliance?lang=en&view=analyst")
    _wait_for_path(driver, "/compliance")
    open_page(driver, driver.current_url, "compliance-title")
    wait_for(driver, "compliance-publication-note")
    wait_for_text(driver, "app-user-name", "rev (reviewer)")
    assert _views(driver) == ["Publication view"]
    assert driver.find_elements(By.ID, "compliance-no-list")
    assert not driver.find_elements(By.ID, "compliance-findings-section")
    assert not ID_SHAPE.search(driver.page_source)
    assert console_errors(driver) == []
    open_page(driver, site + "/data?lang=en", "data-title")
    wait_for(driver, "data-upload-hidden")
    assert not driver.find_elements(By.ID, "data-upload")
    assert not ID_SHAPE.search(driver.page_source)
    assert console_errors(driver) == []
    # Sign out: back on the sign-in page, and the pages need a new sign-in.
    driver.find_element(By.ID, "app-logout").click()
    wait_for_text(driver, "auth-message", "You are signed out.")
    driver.get(site + "/fees?lang=en")
    wait_for(driver, "login-username")
    assert console_errors(driver) == []


def test_analyst_signs_in_and_sees_every_page_without_console_error(site, driver):
    from selenium.webdriver.common.by import By

    # A wrong password first: the form says so, in the reader's language.
    sign_in_form(driver, site, ANALYST[0], "not the password", path="/data?lang=nl")
    wait_for_text(driver, "auth-message", "Onjuiste gebruikersnaam of wachtwoord.")
    driver.find_element(By.ID, "login-username").send_keys(ANALYST[0])
    driver.find_element(By.ID, "login-password").send_keys(ANALYST[1])
    driver.find_element(By.ID, "login-submit").click()
    _wait_for_path(driver, "/data")
    assert "lang=nl" in driver.current_url
    open_page(driver, driver.current_url, "data-title")
    wait_for(driver, "data-upload")
    wait_for_text(driver, "app-user-name", "ana (analist)")
    assert _views(driver) == ["Analistenweergave", "Publicatieweergave"]
    console_errors(driver)  # (the wrong password's 401 page)
    for path, prefix in PAGES.items():
        open_page(driver, f"{site}{path}?lang=en", f"{prefix}-title")
        assert not driver.find_elements(By.ID, f"{prefix}-publication-note"), path
        assert console_errors(driver) == [], path
    # The analyst's findings list shows pseudonymised identifiers.
    open_page(driver, f"{site}/compliance?lang=en", "compliance-findings-section")
    wait_for(driver, "compliance-findings-count")
    assert re.search(r"[1-9]", text_of(driver, "compliance-findings-count"))
    assert console_errors(driver) == []
