"""The console in a real browser, for the browser tests: go to pages, fill forms, check every
page's labels and Tab order, take screenshots."""

from pathlib import Path

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

ADMIN_KEY = "admin-key-for-tests-0001"
APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": ADMIN_KEY}
WAIT_SECONDS = 60
"""Generous: how long a page may take on the shared test machine."""


class Console:
    """The browser on one running service: go to pages, fill forms, check and shoot them."""

    def __init__(self, driver: WebDriver, url: str, artifacts: Path) -> None:
        self.driver, self.url, self.artifacts = driver, url, artifacts
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    def open(self, path: str) -> None:
        self.driver.get(f"{self.url}/console{path}")

    def css(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def text(self, selector: str = "main") -> str:
        """An element's visible text, its white space (line breaks too) as single spaces."""
        return " ".join(self.css(selector).text.split())

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the next page."""
        old = self.css("html")
        self.css(selector).click()
        self.wait.until(lambda driver: old.id != driver.find_element(By.TAG_NAME, "html").id)

    def fill(self, selector: str, text: str) -> None:
        field = self.css(selector)
        field.clear()
        field.send_keys(text)

    def shoot(self, name: str) -> None:
        self.driver.execute_script("document.activeElement.blur()")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(900, min(height + 140, 4000)))
        self.driver.save_screenshot(str(self.artifacts / f"{name}.png"))
        self.driver.set_window_size(1280, 900)

    def key(self, element) -> str:
        """What tells an element apart across a reload: its place in the document."""
        return self.driver.execute_script(
            "let e = arguments[0], path = [];"
            "while (e.parentElement) { path.unshift([...e.parentElement.children].indexOf(e));"
            " e = e.parentElement; } return path.join('/')",
            element,
        )

    def check_accessible(self) -> None:
        """Every visible field has a label (or aria-label), and Tab from the top of the page
        reaches every field and button, the skip link first."""
        unlabelled = self.driver.execute_script(
            "return [...document.querySelectorAll('input, select, textarea')]"
            ".filter(e => e.type !== 'hidden' && !e.getAttribute('aria-label')"
            " && e.labels.length === 0).map(e => e.outerHTML)"
        )
        assert unlabelled == [], unlabelled
        controls = self.driver.find_elements(
            By.CSS_SELECTOR,
            "a[href], input:not([type=hidden]):not([disabled]), select, textarea, "
            "button:not([disabled])",
        )
        wanted = {self.key(control) for control in controls if control.is_displayed()}
        self.driver.refresh()  # focus starts again at the top of the page
        reached = []
        for _ in range(len(controls) + 5):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            reached.append(self.key(self.driver.switch_to.active_element))
        assert reached[0] == self.key(self.css("a.skip"))
        assert wanted <= set(reached), "Tab does not reach every control"
