"""Headless Chromium from the operating system's packages, driven by Selenium: nothing is
downloaded (Selenium Manager is told to stay offline and is given both paths). One browser per test
module; every visited page is checked for raw JSON, hashes and key ids, and main pages are saved
as screenshots (to ``DISTNET_CONSOLE_SCREENSHOTS`` when set, e.g. ``docs/console``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.support import code_for

CHROMIUM = os.environ.get("DISTNET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DISTNET_CHROMEDRIVER", "/usr/bin/chromedriver")

RAW_JSON = re.compile(r'[{\[]\s*"[^"\n]{1,80}"\s*:')
HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])[0-9a-f]{16,}\b")  # card numbers are 16 digits, not hashes
KEY_ID = re.compile(r"\b(?:key|staff):\d+\b")


def start_browser(downloads: Path | None = None) -> WebDriver:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail(
            f"Chromium and chromedriver are needed at {CHROMIUM} and {CHROMEDRIVER} "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1360,900",
        "--lang=en-US",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option(
            "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    if downloads is not None:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
    driver.set_page_load_timeout(30)
    return driver


def screenshots_dir(tmp: Path) -> Path:
    target = os.environ.get("DISTNET_CONSOLE_SCREENSHOTS")
    path = Path(target) if target else tmp
    path.mkdir(parents=True, exist_ok=True)
    return path


class Console:
    """One signed-in (or not) browser on the console, with the page checks."""

    def __init__(self, driver: WebDriver, base: str, shots: Path) -> None:
        self.driver, self.base, self.shots = driver, base, shots
        self.visited: list[str] = []

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.check()

    # an element found while HTMX swaps it or the page navigates can be gone when its text is read:
    # Chromium answers "Node with given id does not belong to the document" (a WebDriverException,
    # not a stale reference); the wait polls again instead of failing
    RACES = (StaleElementReferenceException, WebDriverException)

    def wait_for(self, css: str, timeout: float = 10) -> None:
        WebDriverWait(self.driver, timeout, ignored_exceptions=self.RACES).until(
            ec.presence_of_element_located((By.CSS_SELECTOR, css))
        )

    def wait_text(self, css: str, text: str, timeout: float = 10) -> None:
        WebDriverWait(self.driver, timeout, ignored_exceptions=self.RACES).until(
            ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
        )

    def text(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "body").text

    def check(self) -> None:
        """No page shows raw JSON, a hash or a key id; every form carries a CSRF token."""
        text = self.text()
        url = self.driver.current_url
        self.visited.append(url)
        assert not RAW_JSON.search(text), f"raw JSON on {url}: {RAW_JSON.search(text).group(0)!r}"
        assert not HASH.search(text), f"a hash on {url}: {HASH.search(text).group(0)!r}"
        assert not KEY_ID.search(text), f"a key id on {url}: {KEY_ID.search(text).group(0)!r}"
        assert "Traceback" not in text
        for form in self.driver.find_elements(By.CSS_SELECTOR, "form[method=post]"):
            assert form.find_elements(By.CSS_SELECTOR, "input[name=_csrf]"), f"a form without CSRF on {url}"

    def shot(self, name: str) -> None:
        """The whole page (the window grows to the page's height, up to 2,400 px, and back)."""
        width, height = 1360, 900
        full = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(width, max(height, min(int(full) + 120, 2400)))
        try:
            self.driver.save_screenshot(str(self.shots / f"{name}.png"))
        finally:
            self.driver.set_window_size(width, height)

    def click(self, css: str) -> None:
        self.driver.find_element(By.CSS_SELECTOR, css).click()

    def fill(self, css: str, value: str) -> None:
        el = self.driver.find_element(By.CSS_SELECTOR, css)
        el.clear()
        el.send_keys(value)

    def sign_out_if_signed_in(self) -> None:
        self.driver.delete_all_cookies()

    def sign_in(self, key: str, *, ahead: int = 0, secret: str | None = None, shot: bool = False) -> str:
        """Through the pages: key, then the TOTP code (read from the enrolment page on first
        sign-in); returns the person's TOTP secret."""
        self.sign_out_if_signed_in()
        self.open("/console/login")
        if shot:
            self.shot("login")
        self.fill("input[name=key]", key)
        self.click("form button[type=submit]")
        self.wait_for("input[name=code]")
        self.check()
        found = self.driver.find_elements(By.ID, "totp-secret")
        if found:
            secret = found[0].text
            if shot:
                self.shot("second-factor-enrolment")
        assert secret, "no enrolment shown and no secret given"
        self.fill("input[name=code]", code_for(secret, ahead=ahead))
        self.click("form button[type=submit]")
        self.wait_for("header.top .me")
        self.check()
        return secret
