"""The review desk, trusted chats and the audit log in a real browser (Debian's Chromium driven
by Playwright, as tests/test_console_browser.py): an operator approves corrections from an
untrusted chat one by one and in bulk, trusts a chat, reads a meme's history and undoes; and
decides memes held from a chat (Allow re-posts through that chat's platform, Keep removed)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.console.runner import ConsoleServer
from bot.core.runtime import CoreRuntime
from tests.support.browser import CHROMIUM
from tests.support.fakes import MemoryPort
from tests.test_console_browser import browser, new_page  # noqa: F401 (a fixture)
from tests.test_console_roles import corrected_elsewhere, held_elsewhere

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at "
                       "/usr/bin/chromium (apt-get install chromium)"),
]
async_api = pytest.importorskip(
    "playwright.async_api", reason="playwright for Python is not installed (pip install playwright)"
)


async def trained(runtime: CoreRuntime) -> set[int]:
    return {e.correction_id for e in (await runtime.storage.training_set()).examples}


async def test_an_operator_reviews_trusts_and_undoes_in_the_console(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime  # noqa: F811
) -> None:
    posts = [await corrected_elsewhere(runtime, seed) for seed in (11, 12, 13)]
    viewer = await new_page(browser, console, admin=False, path="desk")
    await async_api.expect(viewer.locator(".viewer-only")).to_be_visible()
    await async_api.expect(viewer.locator("#pending")).to_be_hidden()

    page = await new_page(browser, console, admin=True, path="desk")
    cards = page.locator("#pending article.review-card")
    await async_api.expect(cards).to_have_count(3)
    await async_api.expect(page.locator("#pending-count")).to_have_text("3")
    for img in await cards.locator("img").all():  # thumbnails load
        await async_api.expect(img).to_have_js_property("complete", True)
        assert await img.evaluate("i => i.naturalWidth") > 0
    first = int(await cards.first.get_attribute("data-correction-id") or 0)
    await cards.first.get_by_role("button", name="Approve").click()
    await async_api.expect(page.locator("#status")).to_have_text("Approved 1 correction(s).")
    await async_api.expect(cards).to_have_count(2)
    assert await trained(runtime) == {first}

    await page.get_by_label("Select all shown").check()
    await page.get_by_role("button", name="Reject selected").click()
    await async_api.expect(page.locator("#status")).to_have_text("Rejected 2 correction(s).")
    await async_api.expect(page.locator("#nothing")).to_be_visible()
    await page.get_by_role("textbox", name="Chat").fill("telegram:-100500")
    await page.get_by_role("combobox", name="Level").select_option("trusted")
    await page.get_by_role("button", name="Set").click()
    await async_api.expect(page.locator("#chats tr[data-chat='telegram:-100500'] td").first
                           ).to_have_text("trusted")
    assert await trained(runtime) == {first}  # rejected ones stay out of a trusted chat

    # The audit log, then one meme's history with its undo.
    await page.get_by_role("link", name="Audit").click()
    rows = page.locator("#log tbody tr")
    await async_api.expect(rows.first).to_have_attribute("data-action", "trust")
    actions = [await r.get_attribute("data-action") for r in await rows.all()]
    assert actions[:4] == ["trust", "reject", "reject", "approve"]
    post_id = posts[0][0]
    await page.locator(f"#log a[href='/audit?post={post_id}']").first.click()
    await async_api.expect(page.locator("#audit-title")).to_have_text(f"History of meme #{post_id}")
    await async_api.expect(page.locator("#post-card article.card")).to_have_count(1)
    await page.get_by_role("button", name=f"Undo #{first}").click()
    await async_api.expect(page.locator("#status")).to_have_text("Correction undone.")
    await async_api.expect(page.locator("#log tbody tr").last).to_have_attribute(
        "data-action", "undo")
    assert await runtime.storage.corrections_for(post_id) == []
    assert await trained(runtime) == set()
    assert not page.js_errors and not viewer.js_errors


async def test_a_meme_held_in_a_chat_is_allowed_or_kept_from_the_desk(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime  # noqa: F811
) -> None:
    held = [await held_elsewhere(runtime, seed) for seed in (21, 22)]
    port = MemoryPort()  # the Telegram adapter's outbox, as if it ran in this process
    runtime.service.outboxes.register("telegram", port)
    page = await new_page(browser, console, admin=True, path="desk")
    cards = page.locator("#held article.held-card")
    await async_api.expect(cards).to_have_count(2)
    await async_api.expect(page.locator("#held-count")).to_have_text("2")
    await async_api.expect(cards.first.locator("img")).to_have_js_property("complete", True)
    await cards.first.get_by_role("button", name="Allow").click()
    await async_api.expect(page.locator("#status")).to_have_text("Allowed: re-posted.")
    await async_api.expect(cards).to_have_count(1)
    assert [i.reply.post_id for i in port.images] == [held[0]]
    await cards.first.get_by_role("button", name="Keep removed").click()
    await async_api.expect(page.locator("#status")).to_have_text("Kept removed.")
    await async_api.expect(page.locator("#nothing-held")).to_be_visible()
    states = [(await runtime.storage.held_post(p)).state.value for p in held]  # type: ignore[union-attr]
    assert states == ["allowed", "kept"] and not page.js_errors
