"""The console's browser tests share one headless Chromium per module (Debian's chromium and
chromedriver, driven by Selenium; nothing is downloaded) and a folder for screenshots,
$PERKRANK_CONSOLE_ARTIFACTS (default test-artifacts/console/)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def artifacts() -> Path:
    directory = Path(os.environ.get("PERKRANK_CONSOLE_ARTIFACTS", "test-artifacts/console"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory
