"""The console in a real browser (Debian's Chromium driven by Playwright): upload and see the
label, admin correction, viewer refusal, corrupt uploads, CSRF, escaping, retrain, rollback,
clips playing on their cards.

Never runs `playwright install`: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.console.runner import ConsoleServer
from bot.core.runtime import CoreRuntime, open_runtime
from tests.support.browser import ARGS, CHROMIUM
from tests.support.clipgen import clip
from tests.support.console import ADMIN_TOKEN, console_settings
from tests.support.imagegen import encode, make_image
from tests.support.paths import ROOT

ARTIFACTS = ROOT / "test-artifacts"
LABEL_TEXT = re.compile(r"^(not sure: maybe )?(Doom|Animal Crossing) \(\d{1,3}%\)$|^other: not a ")
XSS_NAME = "<img src=x onerror=window.__pwned=1>.jpg"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at "
                       "/usr/bin/chromium (apt-get install chromium)"),
]
async_api = pytest.importorskip(
    "playwright.async_api", reason="playwright for Python is not installed (pip install playwright)"
)


def jpeg(label: str, seed: int) -> bytes:
    return encode(make_image(label, seed), "JPEG", quality=90)


def upload_file(name: str, data: bytes, mime: str = "image/jpeg") -> dict[str, Any]:
    return {"name": name, "mimeType": mime, "buffer": data}


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Any]:
    async with async_api.async_playwright() as p:
        # launch() starts Chromium with a fresh temporary profile (user-data-dir) every time.
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=ARGS, timeout=30_000
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def runtime(tmp_path: Path, tiny_model: Path) -> AsyncIterator[CoreRuntime]:
    # A private copy of the models folder: the retrain test writes new versions into it.
    models = tmp_path / "models"
    shutil.copytree(tiny_model, models)
    async with open_runtime(console_settings(tmp_path, models), file_origins=()) as rt:
        yield rt


async def new_page(browser: Any, console: ConsoleServer, *, admin: bool, path: str = "") -> Any:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors  # type: ignore[attr-defined]
    if admin:
        await page.goto(f"{console.url}login#{ADMIN_TOKEN}")
        await page.wait_for_url(console.url)
        await page.locator(".badge", has_text="Admin").wait_for()
    if path or not admin:
        await page.goto(console.url + path)
    return page


async def post_json_from_page(page: Any, path: str, body: Any, csrf: bool = True) -> int:
    return await page.evaluate(
        """async ([path, body, csrf]) => {
            const token = document.cookie.split("; ").find((c) => c.startsWith("memebot_csrf="));
            const headers = {"Content-Type": "application/json"};
            if (csrf) headers["X-CSRF-Token"] = token ? token.split("=")[1] : "";
            const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
            return r.status;
        }""",
        [path, body, csrf],
    )


async def test_upload_see_labels_admin_corrects_viewer_cannot(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime
) -> None:
    viewer = await new_page(browser, console, admin=False)
    await viewer.locator("#feed[aria-busy=false]").wait_for(state="attached")
    await viewer.set_input_files("#file", files=[
        upload_file("doom-1.jpg", jpeg("doom", 1)),
        upload_file("crossing.png", encode(make_image("animal_crossing", 2), "PNG"), "image/png"),
        upload_file(XSS_NAME, jpeg("other", 3)),
    ])
    cards = viewer.locator("#feed article.card[data-post-id]")
    await async_api.expect(cards).to_have_count(3, timeout=10_000)
    for text in await viewer.locator("#feed article.card .label").all_inner_texts():
        assert LABEL_TEXT.match(text), text
    # The file name is shown as text, never parsed as HTML.
    await async_api.expect(viewer.locator("#feed .meta", has_text=XSS_NAME)).to_be_visible()
    assert await viewer.locator("img[src='x']").count() == 0
    assert await viewer.evaluate("window.__pwned") is None
    assert await viewer.locator("#feed .actions").count() == 0  # viewers get no buttons

    first = await cards.first.get_attribute("data-post-id")
    post_id = int(first or 0)
    predicted = (await runtime.storage.predictions_for(post_id))[-1].label
    target = "animal_crossing" if predicted != "animal_crossing" else "doom"

    # A viewer who calls the API anyway (with a valid CSRF token) is refused; nothing changes.
    status = await post_json_from_page(viewer, f"/api/posts/{post_id}/label", {"label": target})
    assert status == 403
    assert await runtime.storage.corrections_for(post_id) == []

    admin = await new_page(browser, console, admin=True)
    card = admin.locator(f'#feed article[data-post-id="{post_id}"]')
    button = card.locator(f'button[data-label="{target}"]')
    await button.click()
    await async_api.expect(
        admin.locator(f'#feed article[data-post-id="{post_id}"] button[data-label="{target}"]')
    ).to_have_attribute("aria-pressed", "true")
    (correction,) = await runtime.storage.corrections_for(post_id)
    assert correction.new_label == target and correction.admin_id == "console:admin"
    # The viewer's page learns about the correction live, without a reload.
    await async_api.expect(
        viewer.locator(f'#feed article[data-post-id="{post_id}"] .state')
    ).to_contain_text("Set to")

    ARTIFACTS.mkdir(exist_ok=True)
    await admin.screenshot(path=str(ARTIFACTS / "console-feed.png"), full_page=True)
    assert not viewer.js_errors and not admin.js_errors


async def test_uploaded_mp4_webm_and_gif_play_on_their_cards_with_their_labels(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime
) -> None:
    page = await new_page(browser, console, admin=False)
    await page.locator("#feed[aria-busy=false]").wait_for(state="attached")
    assert await page.locator("#file").get_attribute("accept") == "image/*,video/*,.tgs"
    await page.set_input_files("#file", files=[
        upload_file("rip.mp4", clip("doom", "mp4", count=12), "video/mp4"),
        upload_file("island.gif", clip("animal_crossing", "gif", count=12), "image/gif"),
    ])
    # A WebM dropped onto the drop zone, as a file dragged from the desktop arrives.
    dropped = await page.evaluate_handle(
        """([b64, name, type]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            return transfer;
        }""",
        [base64.b64encode(clip("doom", "webm", seed=4, count=12)).decode(), "tear.webm",
         "video/webm"])
    await page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
    cards = page.locator("#feed article.card[data-post-id]")
    await async_api.expect(cards).to_have_count(3, timeout=15_000)
    # A card exists before its clip is labelled: wait for the labels, not a fixed time.
    await async_api.expect(page.locator("#feed article.card .label", has_text="Labelling")
                           ).to_have_count(0, timeout=30_000)
    for text in await page.locator("#feed article.card .label").all_inner_texts():
        assert LABEL_TEXT.match(text), text
    for name in ("rip.mp4", "tear.webm"):
        video = page.locator("#feed article.card", has_text=name).locator("video")
        await async_api.expect(video).to_have_count(1)
        for attribute in ("muted", "loop", "autoplay", "playsinline"):
            assert await video.get_attribute(attribute) == "", attribute
        assert (await video.get_attribute("poster") or "").startswith("/img/")
        # Playing: muted (so the browser lets it autoplay), time moving on, looping.
        await page.wait_for_function(
            """(node) => node.muted && !node.paused && node.currentTime > 0 && node.loop""",
            arg=await video.element_handle(), timeout=15_000)
    gif = page.locator("#feed article.card", has_text="island.gif")
    await async_api.expect(gif.locator("video")).to_have_count(0)
    image = gif.locator("img")
    served = await page.evaluate(
        """async (src) => (await fetch(src)).headers.get("content-type")""",
        await image.get_attribute("src"))
    assert served == "image/gif"  # the GIF itself, which the browser animates
    assert await image.evaluate("(node) => node.complete && node.naturalWidth > 0")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "console-clips.png"), full_page=True)
    assert not page.js_errors


async def test_corrupt_upload_shows_an_error_and_the_page_keeps_working(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime
) -> None:
    page = await new_page(browser, console, admin=False)
    await page.locator("#feed[aria-busy=false]").wait_for(state="attached")
    await page.set_input_files("#file", files=[upload_file("broken.jpg", b"\xff\xd8\xff garbage")])
    failed = page.locator("#feed article.card.failed")
    await async_api.expect(failed).to_contain_text("can't read this image")
    await async_api.expect(failed).to_contain_text("broken.jpg")
    await async_api.expect(page.locator("#status")).to_contain_text("broken.jpg")

    await page.set_input_files("#file", files=[upload_file("fine.jpg", jpeg("doom", 7))])
    good = page.locator("#feed article.card[data-post-id]")
    await async_api.expect(good).to_have_count(1)
    assert LABEL_TEXT.match(await good.locator(".label").inner_text())
    await failed.get_by_role("button", name="Dismiss").click()
    await async_api.expect(failed).to_have_count(0)

    # CSRF: the same request without the header is refused, even from the page itself.
    count = (await runtime.storage.stats()).memes_seen
    assert await post_json_from_page(page, "/api/login", {"token": ADMIN_TOKEN}, csrf=False) == 403
    status = await page.evaluate(
        """async () => {
            const form = new FormData();
            const blob = new Blob([new Uint8Array([1, 2, 3])], {type: "image/png"});
            form.append("file", blob, "x.png");
            return (await fetch("/api/upload", {method: "POST", body: form})).status;
        }"""
    )
    assert status == 403
    assert (await runtime.storage.stats()).memes_seen == count
    assert not page.js_errors


async def test_label_with_html_is_shown_escaped_and_new_label_is_usable(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime
) -> None:
    page = await new_page(browser, console, admin=True, path="review")
    await page.get_by_label("New label").fill("<img src=x onerror=__pwned=1>")
    await page.get_by_role("button", name="Add label").click()
    status = page.locator("#status")
    await async_api.expect(status).to_contain_text("<img src=x onerror=__pwned=1>")
    assert await status.get_attribute("data-kind") == "error"
    assert await page.locator("img[src='x']").count() == 0
    assert await page.evaluate("window.__pwned") is None

    await page.get_by_label("New label").fill("genshin")
    await page.get_by_role("button", name="Add label").click()
    await async_api.expect(status).to_contain_text("Added the label Genshin")
    await async_api.expect(page.locator("#f-label option[value=genshin]")).to_have_count(1)
    assert "genshin" in {label.name for label in await runtime.storage.list_labels()}
    assert not page.js_errors


async def test_retrain_from_the_console_then_roll_back(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime, tiny_model: Path, tmp_path: Path
) -> None:
    from model_training.trainer import Trainer, TrainerOptions
    from storage.api import Storage

    # Admin corrections for the trainer to learn from.
    for i in range(6):
        post = await runtime.storage.add_post(
            platform="console", chat_id="channel", message_id=f"seed{i}", author_id="viewer",
            image=jpeg("doom", 100 + i),
        )
        await runtime.storage.record_correction(post.id, admin_id="console:admin", label="doom",
                                                approved=True)
    old = runtime.models.current.version

    page = await new_page(browser, console, admin=True, path="models")
    await async_api.expect(page.locator(f'#versions tr[data-version="{old}"]')).to_contain_text(
        "serving"
    )
    await page.get_by_role("button", name="Start a retrain").click()
    await async_api.expect(page.locator("#job-status")).to_have_text("queued")

    # The trainer process's part, against the same database and models folder.
    settings = runtime.settings
    storage = await Storage.open(settings.effective_database_url, settings.data_dir / "blobs")
    try:
        options = TrainerOptions(
            model_dir=settings.model_dir, dataset_dir=tiny_model.parent / "data",
            cache_dir=tmp_path / "cache", threads=1, heartbeat_s=0.3,
            retrain_overrides={"int8": False, "kind": "fast"},
        )
        outcome = await Trainer(storage, options).process_one()
    finally:
        await storage.close()
    assert outcome is not None and outcome.error is None, outcome and outcome.error
    new = outcome.job.model_version
    assert new and new != old

    await async_api.expect(page.locator("#job-status")).to_have_text("succeeded", timeout=15_000)
    await async_api.expect(page.locator("#job-result")).to_contain_text(new)
    row = page.locator(f'#versions tr[data-version="{new}"]')
    await async_api.expect(row).to_have_count(1)
    if outcome.result is None or not outcome.result.promoted:
        # The gate kept it as a candidate: the admin may still choose to serve it.
        await row.get_by_role("button", name=f"Roll back to {new}").click()
    await async_api.expect(row).to_contain_text("serving")
    assert runtime.models.current.version == new
    await page.get_by_role("button", name="Roll back to the previous model").click()
    await async_api.expect(page.locator("#status")).to_contain_text(f"Now serving model {old}")
    await async_api.expect(page.locator(f'#versions tr[data-version="{old}"]')).to_contain_text(
        "serving"
    )
    assert runtime.models.current.version == old
    assert (await runtime.storage.active_model_version()).version == old
    assert not page.js_errors


async def test_admin_judges_a_repost_and_sorts_memes_into_a_tab(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime
) -> None:
    admin = await new_page(browser, console, admin=True)
    await admin.locator("#feed[aria-busy=false]").wait_for(state="attached")
    # sorting: doom memes go to the tab "slayers"; the list shows it, the tab picker offers it
    await admin.select_option("#sort-label", "doom")
    await admin.fill("#sort-tab", "slayers")
    await admin.click("#sort-form button[type=submit]")
    await async_api.expect(admin.locator("#places li[data-label=doom]")).to_contain_text("slayers")
    settings = await runtime.storage.chat_settings("console", "channel")
    assert settings.sort_places == {"doom": "slayers"}

    data = jpeg("doom", 77)
    await admin.set_input_files("#file", files=[upload_file("first.jpg", data)])
    cards = admin.locator("#feed article.card[data-post-id]")
    await async_api.expect(cards).to_have_count(1)
    await admin.set_input_files("#file", files=[upload_file("again.jpg", data)])
    await async_api.expect(cards).to_have_count(2)
    repost = admin.locator("#feed article.card .repost")
    await async_api.expect(repost).to_contain_text("Repost: first posted by")
    flagged = int(await cards.first.get_attribute("data-post-id") or 0)
    await repost.get_by_role("button", name="Not a repost").click()
    await async_api.expect(admin.locator("#feed .repost")).to_have_count(0)
    [mark] = await runtime.storage.repost_marks([flagged])
    assert mark.kind.value == "not_repost" and mark.admin_id == "console:admin"

    # an admin decides the first meme is doom: it is copied into its tab, once
    first = cards.last
    first_id = int(await first.get_attribute("data-post-id") or 0)
    await first.locator('button[data-label="doom"]').click()
    await async_api.expect(
        admin.locator(f'#feed article[data-post-id="{first_id}"] button[data-label="doom"]')
    ).to_have_attribute("aria-pressed", "true")
    await admin.select_option("#tab-pick", "slayers")
    await async_api.expect(
        admin.locator(f'#sorted article[data-post-id="{first_id}"]')
    ).to_have_count(1)

    # reposts off from the page; stop sorting doom
    await admin.select_option("#repost-mode", "off")
    await async_api.expect(admin.locator("#status")).to_contain_text("Reposts: off")
    assert (await runtime.storage.chat_settings("console", "channel")).repost_mode == "off"
    await admin.get_by_role("button", name="Stop sorting Doom").click()
    await async_api.expect(admin.locator("#places")).to_contain_text("Nothing is sorted yet")
    viewer = await new_page(browser, console, admin=False)
    await async_api.expect(viewer.locator("#moderation")).to_be_hidden()  # admins only
    assert not admin.js_errors and not viewer.js_errors


async def test_the_settings_panel_saves_every_option_or_nothing(
    browser: Any, console: ConsoleServer, runtime: CoreRuntime
) -> None:
    viewer = await new_page(browser, console, admin=False, path="settings")
    await async_api.expect(viewer.locator("#signin")).to_be_visible()
    assert await post_json_from_page(viewer, "/api/settings",
                                     {"changes": {"replies": "silent"}}) == 403
    page = await new_page(browser, console, admin=True, path="settings")
    form = page.locator("#settings")
    await async_api.expect(form.locator("select[name=replies]")).to_have_value("every")
    await form.locator("select[name=replies]").select_option("silent")
    await form.locator("select[name=threshold]").select_option("0.8")
    await form.locator("input[name=topics][value=other]").uncheck()
    await form.locator("select[name=offtopic]").select_option("note")
    await form.locator("select[name=reactions]").select_option("off")
    await form.locator("select[name=enabled]").select_option("off")
    await page.locator("#save").click()
    await async_api.expect(page.locator("#status")).to_contain_text("Saved 6 settings.")
    stored = await runtime.storage.chat_settings("console", "channel")
    assert (stored.reply_mode, stored.confidence_threshold, stored.offtopic_action) == (
        "silent", 0.8, "note")
    assert stored.on_topic_labels == ("animal_crossing", "doom")
    assert (stored.reaction_corrections, stored.enabled) == (False, False)
    # No label left on-topic: refused with the reason, and nothing else is saved either.
    await form.locator("select[name=replies]").select_option("every")
    for box in await form.locator("input[name=topics]").all():
        await box.uncheck()
    await page.locator("#save").click()
    await async_api.expect(page.locator("#status")).to_contain_text("Nothing was changed.")
    assert await runtime.storage.chat_settings("console", "channel") == stored
    assert await post_json_from_page(page, "/api/settings",
                                     {"changes": {"threshold": "2", "replies": "every"}}) == 400
    assert await runtime.storage.chat_settings("console", "channel") == stored
    await page.reload()
    await async_api.expect(form.locator("select[name=replies]")).to_have_value("silent")
    assert not page.js_errors
