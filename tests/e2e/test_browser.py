"""The sandbox web page as a person uses it: Chromium clicks through /start, /help, /language.

Playwright drives the system Chromium (``/usr/bin/chromium``; ``.ci/run`` installs Debian's
package) and downloads no browser of its own. Without one the test is skipped, except under
``GRIDBOT_CI`` (set by ``.ci/run``), where it fails. A screenshot of the conversation is kept in
``tests/artifacts/`` (ignored by git) for a human to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from tests.conftest import unavailable
from tests.e2e.harness import Harness, harness

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    """The system Chromium; where there is none the test is skipped (under CI: fails)."""
    if CHROMIUM is None:
        unavailable("no Chromium on PATH (.ci/run installs Debian's)")
    return CHROMIUM


@pytest.fixture
async def page_harness(
    chromium: str, e2e_database_url: str, clock: FrozenClock
) -> AsyncIterator[Harness]:
    """The sandbox with its web page, started only once there is a Chromium to open it."""
    async with harness(e2e_database_url, clock, web=True) as running:
        yield running


async def test_a_worker_talks_to_the_bot_in_the_web_page(
    chromium: str, page_harness: Harness
) -> None:
    from playwright.async_api import async_playwright, expect

    h = page_harness
    worker = await h.persona("worker")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            page = await browser.new_page(viewport={"width": 400, "height": 820})
            await page.goto(h.sandbox.url)
            await page.locator("#user-list button", has_text=worker.first_name).first.click()
            await expect(page.locator("#chat")).to_be_visible()

            async def send(text: str) -> None:
                await page.fill("#text", text)
                await page.press("#text", "Enter")

            await send("/start")
            await expect(page.locator("#messages")).to_contain_text("我是网格通", timeout=15000)
            await expect(page.locator("#messages")).to_contain_text("网格员")
            await send("/help")
            await expect(page.locator("#messages")).to_contain_text("我可以为您做这些")
            await send("/language")
            english = page.locator(".inline-keyboard button", has_text="English").last
            await expect(english).to_be_visible(timeout=15000)
            await english.click()
            await expect(page.locator("#messages")).to_contain_text(
                "Language set to English.", timeout=15000
            )
            await send("/help")
            await expect(page.locator("#messages")).to_contain_text(
                "Here is what I can do for you", timeout=15000
            )
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "sandbox-chat.png"), full_page=True)
        finally:
            await browser.close()
