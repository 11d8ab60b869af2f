"""The sandbox web page as a person uses it: Chromium clicks through /start, /help, /language,
a report with a photo, the QR code, the list of people, and an invitation link opened in the page.

Playwright drives the system Chromium (``/usr/bin/chromium``; ``.ci/run`` installs Debian's
package) and downloads no browser of its own. Without one the tests are skipped, except under
``GRIDBOT_CI`` (set by ``.ci/run``), where they fail. Screenshots of the screens are kept in
``tests/artifacts/`` (ignored by git) for a human to look at.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from sqlmodel import col, select

from bot.clock import FrozenClock
from bot.i18n import gettext_for
from bot.labels import TICKET_CATEGORY
from bot.sandbox.media import sample_png
from bot.telegram import report_views as views
from bot.trial import sandbox_accounts
from models import Grid, Person, TicketCategory
from tests.conftest import unavailable
from tests.e2e.harness import BOT_USERNAME, Harness, harness

if TYPE_CHECKING:
    from playwright.async_api import Page

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


def zh(msgid: str, **params: object) -> str:
    return gettext_for("zh_Hans", msgid, **params)


@contextlib.asynccontextmanager
async def browser_page(chromium: str) -> AsyncIterator[Page]:
    """A phone-sized page in a headless system Chromium."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield await browser.new_page(viewport={"width": 400, "height": 820})
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name))


async def send(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


async def newest_is_in_view(page: Page) -> None:
    """Once every photo has loaded, the newest message (with its buttons) is wholly inside the
    visible part of the conversation."""
    from playwright.async_api import expect

    await page.wait_for_function(
        "() => [...document.querySelectorAll('#messages img')]"
        ".every((image) => image.complete && image.naturalWidth > 0)"
    )
    await expect(page.locator("#messages .row").last).to_be_in_viewport(ratio=1)


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
    from playwright.async_api import expect

    h = page_harness
    worker = await h.persona("worker")
    async with browser_page(chromium) as page:
        await page.goto(h.sandbox.url)
        await page.locator("#user-list button", has_text=worker.first_name).first.click()
        await expect(page.locator("#chat")).to_be_visible()

        await send(page, "/start")
        await expect(page.locator("#messages")).to_contain_text("我是网格通", timeout=15000)
        await expect(page.locator("#messages")).to_contain_text("网格员")
        await send(page, "/help")
        await expect(page.locator("#messages")).to_contain_text("我可以为您做这些")
        await send(page, "/language")
        english = page.locator(".inline-keyboard button", has_text="English").last
        await expect(english).to_be_visible(timeout=15000)
        await english.click()
        await expect(page.locator("#messages")).to_contain_text(
            "Language set to English.", timeout=15000
        )
        await send(page, "/help")
        await expect(page.locator("#messages")).to_contain_text(
            "Here is what I can do for you", timeout=15000
        )
        await screenshot(page, "sandbox-chat.png")


async def test_the_newest_message_stays_in_view_after_a_photo_and_a_reply_keyboard(
    chromium: str, page_harness: Harness, tmp_path: Path
) -> None:
    """Issue 19, item 10: after a tall photo the bot's next question, and after the reply
    keyboard opened the step 4 question, ended below the visible part of the chat."""
    from playwright.async_api import expect

    h = page_harness
    resident = await h.persona("resident")
    photo = tmp_path / "street-lamp.png"
    photo.write_bytes(sample_png(900, 1200, (200, 160, 40)))
    async with browser_page(chromium) as page:
        await page.goto(h.sandbox.url)
        await page.locator("#user-list button", has_text=resident.first_name).first.click()
        await send(page, "/report")
        facility = zh(TICKET_CATEGORY[TicketCategory.FACILITY])
        await page.locator(".inline-keyboard button", has_text=facility).last.click(timeout=15000)
        await expect(page.locator("#messages .row.bot").last).to_contain_text(
            zh("Step {step} of {steps}", step=2, steps=views.STEPS), timeout=15000
        )
        await send(page, "小区东门的路灯坏了三天，晚上很黑")
        no_photos = page.locator(".inline-keyboard button", has_text=zh(views.NO_PHOTOS)).last
        await expect(no_photos).to_be_visible(timeout=15000)

        await page.set_input_files("#photo-input", str(photo))
        await page.locator("#photo-dialog button[value=send]").click()
        done = page.locator(".inline-keyboard button", has_text=zh(views.DONE)).last
        await expect(done).to_be_attached(timeout=15000)
        await newest_is_in_view(page)
        await expect(done).to_be_in_viewport(ratio=1)
        await screenshot(page, "sandbox-report-photo.png")

        await done.click()
        await expect(page.locator("#reply-keyboard")).to_be_visible(timeout=15000)
        await expect(page.locator("#messages .row.bot").last).to_contain_text(
            zh("Step {step} of {steps}", step=4, steps=views.STEPS)
        )
        await newest_is_in_view(page)
        await expect(page.locator("#to-bottom")).to_be_hidden()
        await screenshot(page, "sandbox-report-step4.png")

        # scrolled up to read, the page stays put when the bot writes, and offers the way down
        await page.locator("#messages").evaluate("(box) => { box.scrollTop = 0; }")
        await expect(page.locator("#to-bottom")).to_be_visible()
        assert h.app is not None
        await h.app.bot.send_message(resident.id, "网格员已收到您的消息。")
        await expect(page.locator("#messages .row.bot").last).to_contain_text("网格员已收到")
        await expect(page.locator("#messages .row").last).not_to_be_in_viewport()
        await page.locator("#to-bottom").click()
        await newest_is_in_view(page)


async def test_the_qr_code_photo_and_its_caption_are_in_view(
    chromium: str, page_harness: Harness
) -> None:
    from playwright.async_api import expect

    h = page_harness
    worker = await h.persona("worker")
    async with browser_page(chromium) as page:
        await page.goto(h.sandbox.url)
        await page.locator("#user-list button", has_text=worker.first_name).first.click()
        # enough above it for the page to scroll, each answer before the next command
        for command, answer in (("/help", "我可以为您做这些"), ("/mygrid", "网格公示")):
            await send(page, command)
            await expect(page.locator("#messages")).to_contain_text(answer, timeout=15000)
        await send(page, "/qr")
        await expect(page.locator("#messages .row.bot img.photo")).to_be_attached(timeout=15000)
        await expect(page.locator("#messages .row").last).to_contain_text("扫码加入")
        await newest_is_in_view(page)
        await screenshot(page, "sandbox-qr.png")


async def test_the_people_are_grouped_by_role_and_found_by_name_phone_or_grid(
    chromium: str, page_harness: Harness
) -> None:
    """Issue 19, item 10: one flat list of 74 people with phones like "8616622041617"."""
    from playwright.async_api import expect

    h = page_harness
    created = await sandbox_accounts(h.server, h.settings, bot_username=BOT_USERNAME)
    assert created == 74
    async with h.session() as session:
        admin = (
            await session.exec(select(Person).where(Person.telegram_id == 7_000_000_001))
        ).one()
    assert admin.phone == "+8616622041617"
    async with browser_page(chromium) as page:
        await page.goto(h.sandbox.url)
        groups = page.locator("#user-list details.user-group")
        await expect(groups.first).to_be_visible()
        headings = [text.strip() for text in await groups.locator("summary").all_inner_texts()]
        assert [re.sub(r"\s*\d+$", "", heading) for heading in headings] == [
            "系统管理员 Administrator",
            "综合调处中心工作人员 Centre operator",
            "督查人员 Supervisor",
            "职能部门 Department",
            "网格长 Grid head",
            "网格员 Grid worker",
            "居民 Resident",
        ]
        assert headings[5].endswith("27") and headings[6].endswith("27")
        admin_row = page.locator("#user-list button", has_text=admin.name)
        await expect(admin_row).to_contain_text("+86 166 2204 1617")
        await expect(page.locator("#user-list")).not_to_contain_text("8616622041617")
        await screenshot(page, "sandbox-picker.png")

        people = page.locator("#user-list button.person")

        async def search(query: str) -> list[str]:
            await page.fill("#user-search", query)
            return await people.locator(".person-name").all_inner_texts()

        assert await search("166 2204") == [admin.name]
        assert await search("+86 166-2204-1617") == [admin.name]
        assert await search("黄艺彬") == [admin.name]
        in_grid = await search("杏东花园2号楼")
        assert len(in_grid) == 2  # its worker and its resident
        await expect(groups).to_have_count(2)
        await screenshot(page, "sandbox-picker-search.png")
        assert await search("网格员 杏东花园2号楼") == in_grid[:1]
        assert await search("没有这个人") == []
        await expect(page.locator("#no-match")).to_be_visible()
        assert len(await search("")) == 74

        # folding a group away keeps it folded while the list refreshes
        shown = page.locator("#user-list details[open] button.person")
        await groups.filter(has_text="居民 Resident").locator("summary").click()
        await expect(shown).to_have_count(74 - 27)
        await h.client.create_user("新来的")  # the list refreshes with them, under "Others"
        await expect(groups.last).to_contain_text("其他 Others")
        await expect(groups.last).to_contain_text("新来的")
        await expect(shown).to_have_count(74 - 27 + 1)
        await page.fill("#user-search", "张")
        await expect(groups.filter(has_text="居民 Resident")).to_have_attribute("open", "")
        await page.fill("#user-search", "")
        await expect(shown).to_have_count(74 - 27 + 1)

        await page.fill("#user-search", "黄艺彬")
        await people.first.click()
        await expect(page.locator("#chat")).to_be_visible()
        await expect(page.locator("#whoami")).to_contain_text(admin.name)


async def test_an_invitation_link_opens_in_the_page_as_someone_chosen_there(
    chromium: str, page_harness: Harness
) -> None:
    """Issue 19, item 10: a t.me invitation link went to the real Telegram."""
    from playwright.async_api import expect

    h = page_harness
    admin = await h.persona("admin")
    async with h.session() as session:
        grid = (
            await session.exec(select(Grid).where(Grid.tier == 3).order_by(col(Grid.id)))
        ).first()
    assert grid is not None
    async with browser_page(chromium) as page:
        await page.goto(h.sandbox.url)
        await page.locator("#user-list button", has_text=admin.first_name).first.click()
        await send(page, f"/invite 网格员 {grid.code}")
        link = page.locator("#messages a.start-link").last
        await expect(link).to_be_visible(timeout=15000)
        href = await link.get_attribute("href")
        assert href is not None and href.startswith(f"https://t.me/{BOT_USERNAME}?start=inv_")

        await link.click()  # no new tab to t.me: the page asks who opens it
        dialog = page.locator("#invite-dialog")
        await expect(dialog).to_be_visible()
        await expect(page.locator("#invite-link")).to_have_value(href)
        await expect(page.locator("#invite-me")).to_contain_text(admin.first_name)
        await screenshot(page, "sandbox-invite-dialog.png")
        await page.locator("#invite-other").click()

        await expect(page.locator("#picker")).to_be_visible()
        await expect(page.locator("#invite-banner")).to_contain_text(href)
        await screenshot(page, "sandbox-invite-choose.png")
        form = page.locator("#new-user")
        await form.locator("input[name=first_name]").fill("赵新")
        await form.locator("button[type=submit]").click()

        await expect(page.locator("#chat")).to_be_visible()
        messages = page.locator("#messages")
        await expect(messages).to_contain_text(f"/start {href.split('=', 1)[1]}", timeout=15000)
        await expect(messages).to_contain_text(grid.name, timeout=15000)
        await expect(page.locator("#messages .row.bot").last).to_contain_text("网格员")
        await newest_is_in_view(page)
        await screenshot(page, "sandbox-invite-opened.png")

        # pasted into the message field, the link is offered the same way; as the same person
        # it is a second use of a single-use invitation
        await page.locator("#text").evaluate(
            """(field, text) => {
                const data = new DataTransfer();
                data.setData("text/plain", text);
                field.dispatchEvent(new ClipboardEvent("paste", {
                    clipboardData: data, bubbles: true, cancelable: true }));
            }""",
            href,
        )
        await expect(dialog).to_be_visible()
        await expect(page.locator("#invite-me")).to_contain_text("赵新")
        await page.locator("#invite-me").click()
        await expect(page.locator("#messages .row.bot").last).to_contain_text(
            "已经被使用过", timeout=15000
        )
        await expect(page.locator("#text")).to_have_value("")

        # "Paste as text" after all: the link lands in the message field, nothing is sent
        await page.locator("#text").evaluate(
            """(field, text) => {
                const data = new DataTransfer();
                data.setData("text/plain", text);
                field.dispatchEvent(new ClipboardEvent("paste", {
                    clipboardData: data, bubbles: true, cancelable: true }));
            }""",
            href,
        )
        await page.locator("#invite-cancel").click()
        await expect(page.locator("#text")).to_have_value(href)

        # a URL button with a grid's join link opens in the page too
        assert h.app is not None
        newcomer_id = await page.evaluate("() => state.user.id")
        join = f"https://t.me/{BOT_USERNAME}?start=join_{grid.code}"
        await h.app.bot.send_message(
            newcomer_id,
            "点下面的按钮加入网格。",
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="加入网格", url=join)]]
            ),
        )
        await page.locator(".inline-keyboard button", has_text="加入网格").click()
        await expect(dialog).to_be_visible()
        await expect(page.locator("#invite-link")).to_have_value(join)
        await page.locator("#invite-me").click()
        await expect(messages).to_contain_text(f"/start join_{grid.code}", timeout=15000)


START_LINKS: list[tuple[str, Any]] = [
    (
        f"https://t.me/{BOT_USERNAME}?start=inv_abc",
        {"username": BOT_USERNAME, "payload": "inv_abc"},
    ),
    (
        f"  t.me/{BOT_USERNAME}?start=join_1234567890  ",
        {"username": BOT_USERNAME, "payload": "join_1234567890"},
    ),
    (f"https://telegram.me/{BOT_USERNAME}", {"username": BOT_USERNAME, "payload": None}),
    (
        f"tg://resolve?domain={BOT_USERNAME}&start=x-y_z",
        {"username": BOT_USERNAME, "payload": "x-y_z"},
    ),
    (f"HTTPS://T.ME/{BOT_USERNAME}?start=A1", {"username": BOT_USERNAME, "payload": "A1"}),
    ("https://example.com/gridbot_test_bot?start=inv_abc", None),
    ("https://t.me.evil.example/gridbot_test_bot?start=x", None),
    ("https://evil.example/?u=https://t.me/gridbot_test_bot?start=x", None),
    ("https://user:pw@t.me/gridbot_test_bot?start=x", None),
    ("https://t.me:8443/gridbot_test_bot?start=x", None),
    ("https://t.me/joinchat/AAAAAE", None),
    ("https://t.me/s/gridbot_test_bot", None),
    ("https://t.me/ab?start=x", None),
    ("https://t.me/%E7%BD%91%E6%A0%BC?start=x", None),
    ("https://t.me/%ZZ?start=x", None),
    ("javascript:alert(1)//t.me/gridbot_test_bot?start=x", None),
    ("tg://msg?to=gridbot_test_bot&start=x", None),
    ("看 https://t.me/gridbot_test_bot?start=x", None),
    ("", None),
    ("t.me/" + "a" * 3000, None),
]


async def test_start_links_are_read_strictly(chromium: str, page_harness: Harness) -> None:
    """The page's reader of t.me links, on hostile and odd input: only a bot's start link."""
    h = page_harness
    async with browser_page(chromium) as page:
        await page.goto(h.sandbox.url)
        for text, expected in START_LINKS:
            assert await page.evaluate("(text) => parseStartLink(text)", text) == expected, text
        bad = await page.evaluate(
            "(text) => parseStartLink(text)", f"https://t.me/{BOT_USERNAME}?start=<b>x</b>"
        )
        assert bad["payload"] is None and "1-64" in bad["error"]
        too_long = f"https://t.me/{BOT_USERNAME}?start=" + "a" * 65
        assert "error" in await page.evaluate("(text) => parseStartLink(text)", too_long)
        unknown = await page.evaluate(
            "(text) => resolveStartLink(text)", "https://t.me/someone_else_bot?start=x"
        )
        assert "@someone_else_bot" in unknown["error"]


PHONES = [
    ("8616622041617", "+86 166 2204 1617"),
    ("+8613800000000", "+86 138 0000 0000"),
    ("13800000000", "138 0000 0000"),
    ("0592-5551234", "0592-5551234"),  # a landline stays as written
    ("+4420 7946 0958", "+4420 7946 0958"),
    ("<b>86</b>16622041617", "<b>86</b>16622041617"),
    ("", ""),
]


async def test_phone_numbers_are_shown_readably(chromium: str, page_harness: Harness) -> None:
    async with browser_page(chromium) as page:
        await page.goto(page_harness.sandbox.url)
        for raw, shown in PHONES:
            assert await page.evaluate("(raw) => formatPhone(raw)", raw) == shown, raw
