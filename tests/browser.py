"""Headless Chromium from the system's packages (Debian's chromium and chromium-driver),
driven by Selenium; nothing is downloaded. Shared by the browser and WordPress tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")

ROOT = Path(__file__).resolve().parents[1]


def _first(paths: tuple[str, ...], env: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if os.access(given, os.X_OK) else None
    return next((p for p in paths if os.access(p, os.X_OK)), None)


def chromium_paths() -> tuple[str, str]:
    """The Chromium and chromedriver executables, or skip the test saying what is missing."""
    browser = _first(CHROMIUM_CANDIDATES, "THREADGUARD_CHROMIUM")
    driver = _first(CHROMEDRIVER_CANDIDATES, "THREADGUARD_CHROMEDRIVER")
    missing = [
        name for name, path in (("chromium", browser), ("chromium-driver", driver)) if path is None
    ]
    if missing:
        pytest.skip(
            f"no system {' or '.join(missing)}: apt-get install chromium chromium-driver "
            "(the browser tests never download a browser)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    assert browser is not None and driver is not None
    return browser, driver


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium session (Selenium WebDriver) with a fresh profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = chromium_paths()
    profile = tempfile.mkdtemp(prefix="threadguard-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--window-size=1100,1400",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look anything up
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def click_and_load(driver: Any, element: Any, timeout: float = 30) -> None:
    """Click a button that submits a form, and wait for the page the form loads: Chromium can
    answer the click before it navigates, and the next step would then read the old page.

    The old page is marked with a window property that a new document does not have. (Waiting
    for an old element to go stale is not enough: mid-navigation Chromium 156 answers a query
    on it with an "unknown error", not a stale-element one.)"""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    driver.execute_script("window.__threadguardOldPage = true;")
    element.click()

    def loaded(d: Any) -> bool:
        return bool(
            d.execute_script(
                "return window.__threadguardOldPage === undefined"
                " && document.readyState === 'complete';"
            )
        )

    # queries sent while the page is being replaced can fail; they are asked again
    WebDriverWait(driver, timeout, ignored_exceptions=(WebDriverException,)).until(loaded)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, process: subprocess.Popen[Any] | None = None) -> None:
    """Wait until ``url`` answers 200 (fail if ``process`` exits first)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the server exited ({process.returncode}) before answering:\n{out}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {timeout:g} s")


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A subprocess of this Python in the repository root, output merged into stdout."""
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
