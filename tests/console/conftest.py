"""Fixtures of the console tests: the app served on loopback and one headless Chromium per test
module (see browser.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from distnet.app import create_app
from distnet.kit.liveserver import serve_in_thread
from tests.console.browser import Console, screenshots_dir, start_browser


@pytest.fixture(scope="module")
def live(settings, database_url, redis_url) -> Iterator[str]:
    with serve_in_thread(create_app(settings, database_url=database_url, redis_url=redis_url)) as url:
        yield url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[WebDriver]:
    driver = start_browser(downloads)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console(browser: WebDriver, live: str, tmp_path_factory: pytest.TempPathFactory) -> Console:
    return Console(browser, live, screenshots_dir(tmp_path_factory.mktemp("shots")))
