"""Headless Chromium from the distribution's packages, driven by Selenium through the distribution's chromedriver.

Nothing is downloaded: the driver is given the installed chromedriver (so Selenium Manager never runs) and the
browser starts with its background connections off. ``browser()`` yields a driver that records the console and
the network (Chrome's performance log); ``NO_BROWSER`` says why not, or is None when one is installed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = os.environ.get("SEQLAB_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SEQLAB_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1440,900",
)


def _why_not() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"no browser: {path} is missing (apt-get install chromium chromium-driver)"
    return None


NO_BROWSER = _why_not()


@contextmanager
def browser(width: int = 1440, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager, should anything call it: never reach the network
    profile = tempfile.mkdtemp(prefix="seqlab-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def open_page(driver, path: Path, timeout: float = 120.0) -> None:
    """Load the page and wait until its script has computed everything (``window.seqlab.ready``)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(Path(path).resolve().as_uri())
    WebDriverWait(driver, timeout, poll_frequency=0.2).until(
        lambda d: d.execute_script("return !!(window.seqlab && window.seqlab.ready)")
    )


def requests_made(driver) -> list[str]:
    """The URLs of every network request since the last call (Chrome's performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
