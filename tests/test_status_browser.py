"""The status page in a real headless Chromium (Debian's, driven by Playwright), JavaScript off.

Skips with its reason where no browser is installed, except in CI (``CI=true``), where a
missing browser fails. ``UPDATE_SCREENSHOTS=1`` rewrites docs/img/*.png from this run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connector.testing.fakes.webhook import FakeWebhookReceiver

from tests.conftest import wait_for
from tests.operator_setup import ADMIN_TOKEN, HOOK_SECRET, admin, join, operator_setup, post

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"


def _unavailable() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no browser at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield launched
        launched.close()


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS_IMG / name)


def _settled_content(page: Any) -> str:
    """The page's HTML once Chromium has stopped navigating (after a refused load it goes on to its error page)."""
    from playwright.sync_api import Error as BrowserError

    for _ in range(50):
        try:
            return str(page.content())
        except BrowserError:
            page.wait_for_timeout(100)
    return str(page.content())


def test_operator_fixes_dead_letters_from_the_page(browser: Any, tmp_path: Path, serve_factory: Any) -> None:
    fake = FakeWebhookReceiver(HOOK_SECRET)
    with fake.serve():
        config, port = operator_setup(tmp_path, fake.url)
        serve = serve_factory(config, port)
        fake.fail_next(400, "invalid contact: field 'email' rejected", times=1000)
        for event_id, customer in (("pEv_a", "alice"), ("pEv_b", "bob")):
            assert post(serve.url, join(event_id, customer)).status_code == 200
        wait_for(lambda: admin(serve.url, "/status").text.count("data-letter=") == 2)

        # Without credentials the browser is refused (and asked for basic auth).
        from playwright.sync_api import Error as BrowserError

        anonymous = browser.new_context(java_script_enabled=False)
        stranger = anonymous.new_page()
        statuses: list[int] = []
        stranger.on("response", lambda response: statuses.append(response.status))
        try:
            stranger.goto(serve.url + "/status")
        except BrowserError as exc:  # headless Chromium has nobody to ask for a password
            assert "ERR_INVALID_AUTH_CREDENTIALS" in str(exc)
        assert statuses == [401] and "Dead letters" not in _settled_content(stranger)
        anonymous.close()

        context = browser.new_context(
            java_script_enabled=False, http_credentials={"username": "ops", "password": ADMIN_TOKEN},
            viewport={"width": 1100, "height": 800},
        )  # fmt: skip
        page = context.new_page()
        assert page.goto(serve.url + "/status").status == 200
        letters = page.locator("#dead-letters-table tbody tr")
        assert letters.count() == 2
        alice = letters.filter(has_text="a***@e***.com")
        assert "invalid contact" in alice.inner_text() and "add" in alice.inner_text()
        _shot(page, tmp_path, "status.png")

        fake.reset()  # the CRM is fixed
        alice.get_by_role("button", name="Replay").click()
        assert "Replayed: 1 change(s)" in page.locator(".notice").inner_text()
        wait_for(lambda: fake.is_member("enterprise", "alice@example.com"))
        page.goto(serve.url + "/status")
        assert letters.count() == 1 and "b***@e***.com" in letters.first.inner_text()

        letters.first.get_by_role("button", name="Discard").click()
        assert "Discarded 1" in page.locator(".notice").inner_text()
        assert letters.count() == 0 and "No dead letters." in page.locator("#dead-letters").inner_text()
        assert not fake.is_member("enterprise", "bob@example.com")

        # Search by email from the header: every attempt, with the CRM's answer.
        page.get_by_label("customer").first.fill("alice@example.com")
        page.get_by_role("button", name="Find customer").first.click()
        assert "/status/customers?q=alice%40example.com" in page.url
        attempts = page.locator("article.pair table").nth(1)
        rows = [r.inner_text() for r in attempts.locator("tbody tr").all()]
        assert [r.split("\t")[2] for r in rows] == ["done", "replayed", "dead"]
        assert "invalid contact" in rows[2]
        _shot(page, tmp_path, "customer-history.png")

        # Readable on a phone: nothing wider than the screen but the scrolling tables.
        page.set_viewport_size({"width": 390, "height": 800})
        page.goto(serve.url + "/status")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
        context.close()
        serve.stop()
