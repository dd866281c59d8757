"""Reposts and sorting through the console's JSON API: real core, SQLite and tiny model."""

from __future__ import annotations

from typing import Any

from bot.core.runtime import CoreRuntime
from tests.support.console import Client
from tests.support.imagegen import encode, make_image, resized, with_caption_bar, with_meme_text

ORIGINAL = with_meme_text(make_image("animal_crossing", 3, (240, 200)), "turnips", "are up")


async def upload(client: Client, name: str, img: Any) -> dict[str, Any]:
    status, body = await client.upload((name, encode(img, "JPEG", quality=88), "image/jpeg"))
    assert status == 200, body
    return body["results"][0]["item"]


async def test_repost_flagged_judged_by_the_admin_and_remembered(
    client: Client, admin: Client
) -> None:
    first = await upload(client, "first.jpg", ORIGINAL)
    assert "repost" not in first
    copy = await upload(client, "copy.jpg", with_caption_bar(resized(ORIGINAL, 0.7), "lol"))
    assert copy["repost"]["original_post_id"] == first["post_id"]
    assert copy["repost"]["text"].startswith("Repost: first posted by console visitor on ")
    assert "/?message=" in copy["repost"]["text"]
    other = with_meme_text(make_image("animal_crossing", 3, (240, 200)), "tom nook", "again")
    assert "repost" not in await upload(client, "template.jpg", other)

    judged = {"action": "not_repost", "original_post_id": first["post_id"]}
    status, body = await client.post_json(f"api/posts/{copy['post_id']}/repost", judged)
    assert status == 403  # visitors cannot judge
    status, body = await admin.post_json(f"api/posts/{copy['post_id']}/repost", judged)
    assert status == 200 and body["text"] == "Not a repost (marked by console admin)."
    status, body = await admin.post_json(f"api/posts/{copy['post_id']}/repost", judged)
    assert status == 200 and body["notice"] == "Already done."

    # Copies of the upload judged "not a repost" now point at it, not at the first one.
    third = await upload(client, "third.jpg", with_caption_bar(resized(ORIGINAL, 0.7), "lol"))
    assert third["repost"]["original_post_id"] == copy["post_id"]
    status, body = await admin.post_json("api/reposts", {"mode": "off"})
    assert status == 200 and body["mode"] == "off"
    assert "repost" not in await upload(client, "fourth.jpg", ORIGINAL)
    status, body = await admin.post_json("api/reposts", {"mode": "delete"})
    assert status == 400  # the console never deletes


async def test_sorting_into_tabs_once_and_moved_by_a_correction(
    admin: Client, runtime: CoreRuntime
) -> None:
    for label in ("doom", "animal_crossing", "other"):
        status, body = await admin.post_json("api/sort", {"label": label, "tab": f"{label} tab"})
        assert status == 200, body
    status, body = await admin.post_json("api/sort", {"label": "genshin", "tab": "x"})
    assert status == 400 and "no label" in body["error"].lower()
    item = await upload(admin, "meme.jpg", make_image("doom", 8, (200, 160)))
    label = item["label"]
    # The model's label alone copies a meme only when confident: an admin's word always does.
    status, body = await admin.post_json(f"api/posts/{item['post_id']}/confirm")
    assert status == 200
    status, tab = await admin.get_json(f"api/sorted?tab={label} tab")
    assert [i["post_id"] for i in tab["items"]] == [item["post_id"]]
    status, body = await admin.post_json(f"api/posts/{item['post_id']}/confirm")
    forward = await runtime.storage.forward_for(item["post_id"])
    assert forward is not None and forward.place == f"{label} tab"
    new = "other" if label != "other" else "doom"
    status, body = await admin.post_json(f"api/posts/{item['post_id']}/label", {"label": new})
    assert status == 200 and f"Moved its copy from {label} tab to {new} tab." in body["notice"]
    status, old_tab = await admin.get_json(f"api/sorted?tab={label} tab")
    status, new_tab = await admin.get_json(f"api/sorted?tab={new} tab")
    assert old_tab["items"] == [] and [i["post_id"] for i in new_tab["items"]] == [item["post_id"]]
    status, places = await admin.get_json("api/sort")
    assert places["places"][new] == f"{new} tab"
    status, body = await admin.post_json("api/sort", {"label": new, "tab": None})
    assert status == 200 and new not in body["places"]
