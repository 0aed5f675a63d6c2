"""The demo blog (``python -m examples.blog``) in a real browser: headless Chromium from the
system's packages drives the blog on localhost, whose comments go through the moderation hook
with the shipped model. Each step's screenshot is written to the test's output folder."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import (
    chromium,
    chromium_paths,
    click_and_load,
    free_port,
    start,
    stop,
    wait_http,
)

pytestmark = pytest.mark.browser

By = pytest.importorskip(
    "selenium.webdriver.common.by", reason="selenium is not installed: pip install -e '.[test]'"
).By

BENIGN = "Thanks for the clear summary of the council meeting."
TOXIC = "You are a pathetic idiot and everyone here knows it"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium_paths()  # skips with the reason when Chromium is not installed
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    """The documented command: the blog and the hook (shipped model) in one process."""
    port, hook_port = free_port(), free_port()
    process = start(["-m", "examples.blog", "--port", str(port), "--hook-port", str(hook_port)])
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=240, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


def post_comment(driver: Any, base: str, author: str, text: str) -> Any:
    """Write a comment in the article page's form and submit it; the notice element after."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "/")
    driver.find_element(By.ID, "author").send_keys(author)
    driver.find_element(By.ID, "text").send_keys(text)
    click_and_load(driver, driver.find_element(By.ID, "submit"))
    return WebDriverWait(driver, 30).until(ec.presence_of_element_located((By.ID, "notice")))


def shot(driver: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000, path


def thread_texts(driver: Any) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#thread .comment > p.text")]


def test_benign_comment_is_published(browser: Any, demo: str, tmp_path: Path) -> None:
    notice = post_comment(browser, demo, "Lena", BENIGN)
    shot(browser, tmp_path, "1-benign-posted")
    assert notice.get_attribute("data-status") == "published", notice.text
    assert "Your comment is published" in notice.text
    assert BENIGN in thread_texts(browser)


def test_toxic_comment_is_held_with_reasons(browser: Any, demo: str, tmp_path: Path) -> None:
    notice = post_comment(browser, demo, "angry_reader", TOXIC)
    shot(browser, tmp_path, "2-toxic-held")
    assert notice.get_attribute("data-status") == "held", notice.text
    assert "held for review" in notice.text
    labels = [
        r.get_attribute("data-label") for r in notice.find_elements(By.CSS_SELECTOR, ".reason")
    ]
    assert "insult" in labels, notice.text
    assert TOXIC not in thread_texts(browser)  # not published
    comment_id = notice.get_attribute("data-comment-id")

    browser.get(demo + "/moderation")
    card = browser.find_element(By.ID, f"held-{comment_id}")
    shot(browser, tmp_path, "3-moderation-queue")
    assert TOXIC in card.text
    insult = card.find_element(By.CSS_SELECTOR, ".reason[data-label='insult']")
    assert "threshold" in insult.text
    assert card.find_elements(By.CSS_SELECTOR, "tr.score[data-label='insult']")


def test_moderator_approves_held_comment(browser: Any, demo: str, tmp_path: Path) -> None:
    notice = post_comment(browser, demo, "second_angry_reader", TOXIC)
    comment_id = notice.get_attribute("data-comment-id")
    assert notice.get_attribute("data-status") == "held", notice.text

    browser.get(demo + "/moderation")
    card = browser.find_element(By.ID, f"held-{comment_id}")
    shot(browser, tmp_path, "1-queue-before")
    click_and_load(browser, card.find_element(By.CSS_SELECTOR, "button.approve"))
    assert browser.current_url.endswith("/moderation")
    assert not browser.find_elements(By.ID, f"held-{comment_id}")  # left the queue
    shot(browser, tmp_path, "2-queue-after")

    browser.get(demo + "/")
    shot(browser, tmp_path, "3-article-after")
    published = browser.find_element(By.ID, f"comment-{comment_id}")
    assert TOXIC in published.text
    assert "second_angry_reader" in published.text


def _silent_hook() -> tuple[socket.socket, threading.Event]:
    """A hook that accepts connections and never answers (slow, hung)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    done = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.2)
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue
        for conn in held:
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, done


@pytest.mark.parametrize("failure", ["down", "slow"])
def test_hook_unavailable_holds_comment_and_page_answers(
    browser: Any, failure: str, tmp_path: Path
) -> None:
    """The hook not listening (down) or never answering (slow): the comment is held for a
    moderator within the blog's timeout, and the site keeps answering."""
    timeout = 1.5
    silent = None
    if failure == "down":
        hook_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    else:
        silent = _silent_hook()
        hook_url = f"http://127.0.0.1:{silent[0].getsockname()[1]}"
    port = free_port()
    process = start(
        [
            "-m",
            "examples.blog",
            "--port",
            str(port),
            "--hook-url",
            hook_url,
            "--hook-token",
            "not-used",
            "--hook-timeout",
            str(timeout),
        ]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", timeout=60, process=process)
        # While the comment waits for the hook, another reader loads the article.
        other: dict[str, float] = {}

        def read_article() -> None:
            time.sleep(0.5)
            t0 = time.monotonic()
            other["status"] = httpx.get(base + "/", timeout=10).status_code
            other["seconds"] = time.monotonic() - t0

        reader = threading.Thread(target=read_article)
        started = time.monotonic()
        reader.start()
        notice = post_comment(browser, base, "Lena", BENIGN)
        elapsed = time.monotonic() - started
        reader.join()
        assert other["status"] == 200 and other["seconds"] < 1.0, other
        shot(browser, tmp_path, f"1-hook-{failure}-held")
        assert notice.get_attribute("data-status") == "held", notice.text
        assert "did not answer" in notice.text
        assert BENIGN not in thread_texts(browser)
        assert elapsed < timeout + 5, f"the form took {elapsed:.1f} s"
        if failure == "slow":
            assert elapsed >= timeout, f"answered in {elapsed:.2f} s: the blog did not wait"

        browser.get(base + "/moderation")
        shot(browser, tmp_path, f"2-hook-{failure}-queue")
        assert BENIGN in browser.find_element(By.ID, "held").text
        assert httpx.get(base + "/", timeout=5).status_code == 200  # the site still answers
    finally:
        stop(process)
        if silent is not None:
            silent[1].set()
            silent[0].close()
