"""Headless Chromium (Debian's chromium and chromium-driver, installed by `make install`) driven with Selenium.

One `Browser` per Airflow: its own fresh profile, so no session cookie carries over between the
stack's Airflow and the tests' own. Every wait is explicit and bounded; a wait that times out fails
the test with the page's address, a screenshot and the page's text.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS_IMAGES = Path(__file__).resolve().parents[3] / "docs" / "images"
# What headless Chromium needs here: no sandbox (root in a container), no GPU, and none of the
# background connections to Google's services (this network refuses them, and Chromium waits on them).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",  # a container's /dev/shm is small
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",  # the date inputs take MM/DD/YYYY
    "--window-size=1400,1100",
)
WAIT_S = 30  # a page or element that is there at all is there within this

T = TypeVar("T")
_READ_TABLE = """
return Array.from(document.querySelectorAll('tbody tr')).map(row => {
  const cells = {};
  row.querySelectorAll('[data-testid^="table-cell-"]').forEach(cell => {
    const sw = cell.querySelector('[data-testid="toggle-pause"]');
    const badge = cell.querySelector('[data-testid="state-badge"]');
    cells[cell.dataset.testid.slice('table-cell-'.length)] = {
      text: cell.innerText.trim(),
      switch: sw ? sw.dataset.state : null,
      badge: badge ? badge.getAttribute('aria-label') : null,
    };
  });
  return cells;
});
"""


def missing_binaries() -> list[str]:
    return [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]


class Browser:
    """A Chromium session on one Airflow (base_url), with waits that fail with diagnostics."""

    def __init__(self, base_url: str, shots: Path):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url, self.shots = base_url.rstrip("/"), shots
        self._profile = tempfile.mkdtemp(prefix="chromium-profile-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self._profile}")
        options.add_experimental_option("prefs", {"intl.accept_languages": "en-US"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.driver.set_page_load_timeout(WAIT_S)

    # -- navigation and waits

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def wait(self, condition: Callable[[object], T], what: str, timeout: float = WAIT_S, poll: float = 0.5) -> T:
        """condition(driver) until it returns something truthy (read the page inside it: a re-render
        in between is retried); after `timeout` s the test fails, naming `what` and showing the page."""
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            TimeoutException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        # The React UI re-renders while it loads and refreshes: an element read a moment ago may be gone.
        ignored = (NoSuchElementException, StaleElementReferenceException)
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=poll, ignored_exceptions=ignored).until(condition)
        except TimeoutException:
            pass  # failed below, outside the handler: the failure shows the page, not Selenium's traceback
        pytest.fail(f"{what}: not within {timeout:.0f} s\n{self.diagnostics('timeout')}")

    def element(self, css: str, what: str, timeout: float = WAIT_S, clickable: bool = False):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        locator = (By.CSS_SELECTOR, css)
        cond = ec.element_to_be_clickable(locator) if clickable else ec.visibility_of_element_located(locator)
        return self.wait(cond, what, timeout)

    def elements(self, css: str, within=None) -> list:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def table_rows(self) -> list[dict[str, dict]]:
        """The rows of the page's table, read at once (a re-render cannot split the reading): per row,
        column -> {"text", "switch" (a pause switch's data-state), "badge" (a state badge's aria-label)},
        the columns named by the UI's data-testid="table-cell-<column>"."""
        return self.driver.execute_script(_READ_TABLE)

    def click(self, css: str, what: str, timeout: float = WAIT_S) -> None:
        self.element(css, what, timeout, clickable=True).click()

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except Exception as exc:  # diagnostics must not hide the real failure
            return f"(no page text: {exc})"

    # -- sign-in

    def login(self, user: str, password: str) -> None:
        """Airflow's sign-in form (SimpleAuthManager), as a person fills it in."""
        self.open("/")
        self.element("input[name=username]", "the sign-in form").send_keys(user)
        self.element("input[name=password]", "the password field").send_keys(password)
        self.click("button[type=submit]", "the Sign in button")
        self.wait(lambda d: "/auth/login" not in d.current_url, f"signed in as {user} (still on the sign-in form)")
        self.element("[data-testid=nav-dags-link]", "the navigation after signing in")

    # -- screenshots

    def screenshot(self, name: str) -> Path:
        """A screenshot into the session's screenshot dir; also into docs/images when UPDATE_SCREENSHOTS=1."""
        path = self.shots / name
        self.driver.save_screenshot(str(path))
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS_IMAGES / name)
        return path

    def diagnostics(self, label: str) -> str:
        """Where the browser is, a screenshot of it and the page's text (for failure messages)."""
        path = self.shots / f"failure-{label}.png"
        try:
            self.driver.save_screenshot(str(path))
            shot = f"screenshot {path}"
        except Exception as exc:
            shot = f"(no screenshot: {exc})"
        try:
            url = self.driver.current_url
        except Exception as exc:
            url = f"(unknown: {exc})"
        return f"page {url}, {shot}; page text:\n{self.text()[-4000:]}"

    def close(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self._profile, ignore_errors=True)
