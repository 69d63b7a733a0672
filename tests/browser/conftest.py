"""The browser the tests look through: Debian's headless chromium, driven through Debian's
chromedriver. The stack it looks at is the session's trained_stack (tests/harness/fixtures.py),
the one tests/stack checks too, whose TensorBoard asks for a password: the browser gives it on
every request, as a user's browser does once they have typed it into its login prompt."""
from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.harness.ports import basic_authorization

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path, trained_stack):
    for needed in (CHROMIUM, CHROMEDRIVER):
        if not needed.exists():
            pytest.fail(f"{needed} is missing: apt-get install the packages in "
                        ".ci/debian-packages-stack.txt (CI installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    # Chrome's DevTools log of every request, so a test can say which routes the page loaded.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # Both paths given, so selenium never looks for (or downloads) a browser or driver itself.
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        # Headless Chrome has no login prompt to type the password into: the header it would
        # send after one goes on every request instead (pages, data routes, images alike).
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {
            "Authorization": basic_authorization(trained_stack.password)}})
        yield driver
    finally:
        driver.quit()
