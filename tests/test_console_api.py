"""The console's JSON API with a plain aiohttp client: uploads, corrections, permissions, CSRF,
limits, live events, models, and the admin token file. Real core, SQLite and tiny model."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bot.console.pages import NAV, PAGES
from bot.console.runner import ConsoleServer, start_console
from bot.console.security import TOKEN_FILE, load_admin_token
from bot.console.uploads import display_file_name
from bot.core.runtime import CoreRuntime, open_runtime
from tests.support.clipgen import clip, tgs_sticker
from tests.support.console import ADMIN_TOKEN, Client, console_settings
from tests.support.imagegen import encode, jpeg, make_image, reencoded
from tests.support.models import game_meme

LABELS = {"doom", "animal_crossing", "other"}


async def uploaded(client: Client, label: str = "doom", seed: int = 0) -> dict[str, Any]:
    status, body = await client.upload((f"{label}-{seed}.jpg", jpeg(label, seed), "image/jpeg"))
    assert status == 200, body
    (result,) = body["results"]
    assert result["ok"], result
    return result["item"]


# ------------------------------------------------------------------------------ uploads


async def test_upload_is_labelled_listed_and_served(client: Client, runtime: CoreRuntime) -> None:
    item = await uploaded(client, "doom", 1)
    assert item["label"] in LABELS and 0.0 <= item["confidence"] <= 1.0
    assert item["name"] == "doom-1.jpg" and item["platform"] == "console"
    assert item["text"]  # the core's wording, e.g. "Doom (87%)"
    post = await runtime.storage.get_post(item["post_id"])
    assert post.platform == "console" and post.author_id == "viewer"
    status, feed = await client.get_json("api/feed")
    assert status == 200 and [i["post_id"] for i in feed["items"]] == [item["post_id"]]
    async with client.session.get(client.base + item["image"].lstrip("/")) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "image/jpeg"
        assert await r.read() == jpeg("doom", 1)
        assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_clips_are_labelled_and_served_with_their_poster_frames(client: Client) -> None:
    status, body = await client.upload(
        ("rip.mp4", clip("doom", "mp4"), "video/mp4"),
        ("tear.webm", clip("doom", "webm", seed=1), "video/webm"),
        ("island.gif", clip("animal_crossing", "gif", seed=2), "image/gif"),
        ("sticker.tgs", tgs_sticker(), "application/x-tgsticker"),
    )
    assert status == 200 and all(r["ok"] for r in body["results"]), body
    mp4, webm, gif, tgs = (r["item"] for r in body["results"])
    served = {}
    for item in (mp4, webm, gif, tgs):
        assert item["label"] in LABELS and item["media_kind"] != "still"
        for key in ("image", "video"):
            if item[key] is None:
                continue
            async with client.session.get(client.base + item[key].lstrip("/")) as r:
                assert r.status == 200
                served[item["name"], key] = r.headers["Content-Type"]
    assert served == {
        ("rip.mp4", "video"): "video/mp4", ("rip.mp4", "image"): "image/jpeg",
        ("tear.webm", "video"): "video/webm", ("tear.webm", "image"): "image/jpeg",
        ("island.gif", "image"): "image/gif",  # the GIF itself: a browser animates it
        ("sticker.tgs", "image"): "image/jpeg",  # a TGS does not play: its poster frame
    }
    assert (mp4["video_type"], webm["video_type"]) == ("video/mp4", "video/webm")
    assert mp4["duration_s"] > 0 and (mp4["width"], mp4["height"]) == (96, 96)


async def test_many_files_in_one_request_and_newest_first(client: Client) -> None:
    status, body = await client.upload(
        *[(f"m{i}.png", encode(make_image("other", i), "PNG"), "image/png") for i in range(3)]
    )
    assert status == 200 and [r["ok"] for r in body["results"]] == [True, True, True]
    _, feed = await client.get_json("api/feed")
    assert [i["name"] for i in feed["items"]] == ["m2.png", "m1.png", "m0.png"]


async def test_image_route_takes_only_a_sha256(client: Client) -> None:
    for path in ("img/" + "0" * 64, "img/../../etc/passwd", "img/%2e%2e%2fsecret",
                 "img/" + "A" * 64, "static/../app.py"):
        async with client.session.get(client.base + path) as r:
            assert r.status == 404, path


@pytest.mark.parametrize(
    ("name", "data", "content_type", "status", "words"),
    [
        ("broken.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg", 422, "can't read"),
        ("empty.png", b"", "image/png", 422, "can't read"),
        ("notes.txt", b"hello", "text/plain", 415, "not an image"),
        ("script.html", b"<script>alert(1)</script>", "text/html", 415, "not an image"),
    ],
)
async def test_bad_uploads_get_a_clear_error_and_store_nothing(
    client: Client, runtime: CoreRuntime, name: str, data: bytes, content_type: str,
    status: int, words: str,
) -> None:
    got, body = await client.upload((name, data, content_type))
    assert got == status, body
    (result,) = body["results"]
    assert not result["ok"] and words in result["error"]
    assert "object at 0x" not in result["error"]
    assert (await runtime.storage.stats()).memes_seen == 0


async def test_upload_size_limit(tmp_path: Path, tiny_model: Path) -> None:
    settings = console_settings(tmp_path, tiny_model, max_download_bytes=4000)
    async with open_runtime(settings, file_origins=()) as rt:
        server = await start_console(rt)
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                c = await Client(s, server.url).open()
                noise = Image.frombytes("RGB", (64, 64), bytes(range(256)) * 48)
                big = encode(noise, "BMP")
                assert len(big) > 4000
                status, body = await c.upload(("big.png", big, "image/png"))
                assert status == 413 and "too large" in body["results"][0]["error"]
                assert (await rt.storage.stats()).memes_seen == 0
        finally:
            await server.close()


async def test_file_names_are_reduced_to_a_display_name(client: Client) -> None:
    item = await uploaded_named(client, "../..\\etc/<img src=x onerror=alert(1)>.jpg")
    assert item["name"] == "<img src=x onerror=alert(1)>.jpg"  # text for the page; no path
    assert display_file_name("C:\\x\\a\x00b\u202e.png") == "ab.png"
    assert display_file_name("") == "upload" and len(display_file_name("x" * 500)) == 120


async def uploaded_named(client: Client, name: str) -> dict[str, Any]:
    status, body = await client.upload((name, jpeg("other", 9), "image/jpeg"))
    assert status == 200, body
    return body["results"][0]["item"]


# --------------------------------------------------------------------- admin and viewer


async def test_viewer_cannot_correct_admin_can(
    client: Client, admin: Client, runtime: CoreRuntime
) -> None:
    item = await uploaded(client, "doom", 2)
    target = "animal_crossing" if item["label"] != "animal_crossing" else "other"
    status, body = await client.post_json(f"api/posts/{item['post_id']}/label", {"label": target})
    assert status == 403 and "admin" in body["error"]
    status, body = await client.post_json(f"api/posts/{item['post_id']}/confirm")
    assert status == 403
    assert await runtime.storage.corrections_for(item["post_id"]) == []

    status, body = await admin.post_json(f"api/posts/{item['post_id']}/label", {"label": target})
    assert status == 200, body
    assert body["item"]["effective_label"] == target and body["changed"]
    (correction,) = await runtime.storage.corrections_for(item["post_id"])
    assert correction.new_label == target and correction.kind.value == "correction"
    assert correction.admin_id == "console:admin"

    status, body = await admin.post_json(f"api/posts/{item['post_id']}/label", {"label": "nope"})
    assert status == 400 and "no label" in body["error"]
    status, body = await admin.post_json("api/posts/999999/label", {"label": "doom"})
    assert status == 404


async def test_admin_confirms_a_label(client: Client, admin: Client, runtime: CoreRuntime
                                      ) -> None:
    item = await uploaded(client, "animal_crossing", 4)
    status, body = await admin.post_json(f"api/posts/{item['post_id']}/confirm")
    assert status == 200, body
    (decision,) = await runtime.storage.corrections_for(item["post_id"])
    assert decision.kind.value == "confirmation" and decision.new_label == item["label"]


async def test_a_label_from_the_correction_memory_is_shown_as_such(
    client: Client, admin: Client
) -> None:
    """A meme close to one an admin labelled takes that label, and its card says where the label
    came from instead of a percentage (the number is a likeness, not the model's confidence),
    on upload and in the feed."""
    assert (await admin.post_json("api/reposts", {"mode": "off"}))[0] == 200
    assert (await admin.post_json("api/labels", {"name": "genshin"}))[0] == 200
    first = await uploaded(client, "doom", 7)
    assert not first["remembered"] and "%" in first["text"]
    status, body = await admin.post_json(f"api/posts/{first['post_id']}/label",
                                         {"label": "genshin"})
    assert status == 200, body
    copy = encode(reencoded(make_image("doom", 7), quality=60))  # the same picture, re-encoded
    status, body = await client.upload(("again.jpg", copy, "image/jpeg"))
    assert status == 200, body
    (result,) = body["results"]
    item = result["item"]
    assert item["label"] == "genshin" and item["remembered"]
    assert item["text"] == "Genshin (like a meme an admin labelled)"
    status, feed = await client.get_json("api/feed")
    assert status == 200
    shown = {i["post_id"]: (i["text"], i["remembered"]) for i in feed["items"]}
    assert shown[item["post_id"]] == ("Genshin (like a meme an admin labelled)", True)
    assert shown[first["post_id"]][1] is False


async def test_bearer_token_works_without_cookies(console: ConsoleServer, runtime: CoreRuntime
                                                  ) -> None:
    async with aiohttp.ClientSession() as s:
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with s.post(console.url + "api/labels", json={"name": "genshin"}, headers=auth) as r:
            assert r.status == 200, await r.text()
        async with s.post(console.url + "api/labels", json={"name": "x"},
                          headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 403
    assert "genshin" in {label.name for label in await runtime.storage.list_labels()}


async def test_login_session_and_logout(client: Client) -> None:
    status, _ = await client.post_json("api/login", {"token": "wrong"})
    assert status == 403
    assert (await client.get_json("api/session"))[1]["admin"] is False
    async with client.session.post(client.base + "api/login", json={"token": ADMIN_TOKEN},
                                   headers=client.headers()) as r:
        assert r.status == 200
        (set_cookie,) = r.headers.getall("Set-Cookie")
    assert set_cookie.startswith("memebot_admin=") and ADMIN_TOKEN not in set_cookie
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    session = (await client.get_json("api/session"))[1]
    assert session["admin"] is True and {lab["name"] for lab in session["labels"]} == LABELS
    status, _ = await client.post_json("api/logout")
    assert status == 200 and (await client.get_json("api/session"))[1]["admin"] is False


async def test_add_label_and_bad_label_text(admin: Client, client: Client, runtime: CoreRuntime
                                            ) -> None:
    status, body = await client.post_json("api/labels", {"name": "genshin"})
    assert status == 403
    status, body = await admin.post_json("api/labels", {"name": "genshin"})
    assert status == 200 and body["added"] == ["genshin"] and "Genshin" in body["message"]
    status, body = await admin.post_json("api/labels", {"name": "genshin"})
    assert status == 400 and "already exists" in body["error"]
    status, body = await admin.post_json("api/labels", {"name": "<img_src=x_onerror=alert(1)>"})
    assert status == 400 and "cannot be a label" in body["error"]
    names = {label.name for label in await runtime.storage.list_labels()}
    assert names == LABELS | {"genshin"}


# ------------------------------------------------------------------------------- CSRF


async def test_state_changes_need_the_csrf_token_and_same_origin(
    client: Client, admin: Client, runtime: CoreRuntime
) -> None:
    files = (("a.jpg", jpeg(), "image/jpeg"),)
    assert (await client.upload(*files, headers={}))[0] == 403
    assert (await client.upload(*files, headers={"X-CSRF-Token": "forged"}))[0] == 403
    status, body = await client.upload(
        *files, headers=client.headers({"Origin": "http://evil.example"})
    )
    assert status == 403 and "origin" in body["error"]
    status, _ = await client.upload(
        *files, headers=client.headers({"Sec-Fetch-Site": "cross-site"})
    )
    assert status == 403
    # An admin's cookie alone does not make a forged request work.
    status, body = await admin.post_json("api/labels", {"name": "forged"}, headers={"X-": "1"})
    assert status == 403 and "CSRF" in body["error"]
    status, _ = await admin.post_json(
        "api/labels", {"name": "forged"}, headers=admin.headers({"Origin": "null"})
    )
    assert status == 403
    assert (await runtime.storage.stats()).memes_seen == 0
    assert "forged" not in {label.name for label in await runtime.storage.list_labels()}
    # ...and with the token, from the page's own origin, it does.
    origin = client.base.rstrip("/")
    status, _ = await client.upload(*files, headers=client.headers({"Origin": origin}))
    assert status == 200


async def test_foreign_host_names_are_refused(console: ConsoleServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(console.url + "api/session", headers={"Host": "evil.example"}) as r:
            assert r.status == 421
        async with s.get(console.url, headers={"Host": f"localhost:{console.url.split(':')[-1]}"}
                         ) as r:
            assert r.status == 200


async def test_pages_carry_security_headers(client: Client) -> None:
    for path in ("", "review", "models", "login", "static/common.js"):
        async with client.session.get(client.base + path) as r:
            assert r.status == 200, path
            csp = r.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert r.headers["X-Frame-Options"] == "DENY"


async def test_every_page_links_every_page_and_marks_its_own(client: Client) -> None:
    for path in PAGES:
        async with client.session.get(client.base + path.lstrip("/")) as r:
            html = await r.text()
        assert r.status == 200 and r.headers["Cache-Control"] == "no-cache", path
        for target, title in NAV:
            here = ' aria-current="page"' if target == path else ""
            assert f'<a href="{target}"{here}>{title}</a>' in html, (path, target)
        assert html.count('aria-current="page"') == (path != "/login"), path


# ------------------------------------------------------------------ review and live events


async def test_review_filters_and_counts(client: Client, admin: Client) -> None:
    items = [await uploaded(client, label, i) for i, label in
             enumerate(["doom", "animal_crossing", "other", "doom"])]
    corrected = items[0]
    await admin.post_json(f"api/posts/{corrected['post_id']}/label", {"label": "other"
                          if corrected["label"] != "other" else "doom"})
    status, body = await client.get_json("api/review")
    assert status == 200 and len(body["items"]) == 4
    confidences = [i["confidence"] for i in body["items"]]
    assert confidences == sorted(confidences)  # least confident first
    assert body["stats"]["memes_seen"] == 4 and body["stats"]["corrections"] == 1
    assert sum(body["stats"]["predicted_per_label"].values()) == 4
    _, only = await client.get_json("api/review?corrected=yes")
    assert [i["post_id"] for i in only["items"]] == [corrected["post_id"]]
    _, rest = await client.get_json("api/review?corrected=no&order=new")
    assert [i["post_id"] for i in rest["items"]] == [i["post_id"] for i in items[:0:-1]]
    label = items[1]["label"]
    _, by_label = await client.get_json(f"api/review?label={label}")
    assert by_label["items"] and all(i["label"] == label for i in by_label["items"])
    _, confident = await client.get_json("api/review?min_confidence=0.999&max_confidence=1")
    assert all(i["confidence"] >= 0.999 for i in confident["items"])
    assert (await client.get_json("api/review?label=<b>"))[0] == 400
    assert (await client.get_json("api/review?min_confidence=2"))[0] == 400
    assert (await client.get_json("api/review?corrected=maybe"))[0] == 400


async def test_live_events_announce_new_memes_and_corrections(
    client: Client, admin: Client, console: ConsoleServer
) -> None:
    events: list[tuple[str, Any]] = []

    async def listen() -> None:
        async with aiohttp.ClientSession() as s, s.get(console.url + "api/events") as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            name = None
            async for raw in r.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    events.append((name, json.loads(line[6:])))
                    if len(events) == 2:
                        return

    task = asyncio.create_task(listen())
    for _ in range(100):
        if console.console.bus.subscribers:
            break
        await asyncio.sleep(0.02)
    item = await uploaded(client, "doom", 5)
    await admin.post_json(f"api/posts/{item['post_id']}/label", {"label": "other"})
    await asyncio.wait_for(task, 10)
    assert [e[0] for e in events] == ["item", "item"]
    assert events[0][1]["post_id"] == item["post_id"]
    assert events[1][1]["effective_label"] == "other"


# ---------------------------------------------------------------------------- models


async def test_models_list_reports_and_rollback_refusal(
    client: Client, admin: Client, runtime: CoreRuntime
) -> None:
    status, body = await client.get_json("api/models")
    assert status == 200
    serving = runtime.models.current.version
    (version,) = body["versions"]
    assert version["version"] == serving and version["serving"] and version["status"] == "active"
    assert version["metrics"]["accuracy"] is not None and "test accuracy" in version["summary"]
    folder = runtime.models.current.folder
    (folder / "report_test.md").write_text("# <script>report</script>\n")
    try:
        _, body = await client.get_json("api/models")
        assert "report_test.md" in body["versions"][0]["reports"]
        async with client.session.get(client.base + f"api/models/{serving}/files/report_test.md"
                                      ) as r:
            assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        for bad in ("meta.json", "model.onnx", "..%2Fmeta.json", ".hidden.png"):
            async with client.session.get(client.base + f"api/models/{serving}/files/{bad}") as r:
                assert r.status == 404, bad
        async with client.session.get(client.base + "api/models/..%2F..%2Fetc/files/x.png") as r:
            assert r.status == 404
    finally:
        (folder / "report_test.md").unlink()
    status, body = await client.post_json("api/models/rollback", {})
    assert status == 403
    status, body = await admin.post_json("api/models/rollback", {})
    assert status == 409 and "no earlier model" in body["error"]
    status, body = await admin.post_json("api/retrain")
    assert status == 200 and body["job"]["status"] == "queued" and "queued" in body["message"]
    status, job = await client.get_json(f"api/jobs/{body['job']['id']}")
    assert status == 200 and job["job"]["id"] == body["job"]["id"]
    assert (await client.post_json("api/retrain"))[0] == 403


# ----------------------------------------------------------------------- admin token file


def test_generated_admin_token_is_private_and_stable(tmp_path: Path) -> None:
    first = load_admin_token(None, tmp_path)
    path = tmp_path / TOKEN_FILE
    assert first.generated and len(first.value) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_admin_token(None, tmp_path)
    assert again.value == first.value and not again.generated
    os.chmod(path, 0o644)
    assert load_admin_token(None, tmp_path).value == first.value
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    configured = load_admin_token("from-env", tmp_path)
    assert configured.value == "from-env" and configured.source == "settings"


async def test_upload_title_is_stored_shown_and_weighed(tmp_path: Path, worded_model: Path) -> None:
    async with open_runtime(console_settings(tmp_path, worded_model), file_origins=()) as rt:
        server = await start_console(rt)
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
                client = await Client(session, server.url).open()
                items = {}
                image = game_meme(worded_model)
                for title in (None, "rip and tear, slayer vs demons", "nook says hi to a villager"):
                    form = aiohttp.FormData(quote_fields=False)
                    if title:
                        form.add_field("title", title)
                    form.add_field("file", image, filename="m.jpg", content_type="image/jpeg")
                    async with session.post(
                        client.base + "api/upload", data=form, headers=client.headers()
                    ) as r:
                        body = await r.json()
                    assert r.status == 200, body
                    items[title] = body["results"][0]["item"]
                    assert items[title]["caption"] == title
                    assert (await rt.storage.get_post(items[title]["post_id"])).caption == title
                status, feed = await client.get_json("api/feed")
                assert status == 200 and {i["caption"] for i in feed["items"]} == set(items)
        finally:
            await server.close()
    assert items[None]["label"] != "other"
    assert items["rip and tear, slayer vs demons"]["label"] == "doom"
    assert items["nook says hi to a villager"]["label"] == "animal_crossing"
