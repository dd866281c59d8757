"""Export/import of the labelled set as an ImageFolder tree."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from inference.clip_records import read_clip
from inference.clips import ClipLimits
from storage import BlobError, InvalidInputError, UnknownLabelError
from storage.api import Storage
from tests.support.clipgen import clip
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock


async def _labelled(storage: Storage) -> dict[str, str]:
    """Three labelled images (one via confirmation), one unconfirmed guess, a new label."""
    await storage.add_label("genshin", added_by=1)
    labels = {}
    for i, label in enumerate(["doom", "genshin", "other"]):
        post = await storage.add_post(
            platform="telegram", chat_id=1, message_id=i, author_id=1, image=make_image(i)
        )
        prediction = await storage.record_prediction(
            post.id, model_version="v1", label="doom", confidence=0.6,
            probabilities={"doom": 0.6}, latency_ms=1.0,
        )
        if label == "doom":
            await storage.confirm_prediction(prediction.id, admin_id=1, approved=True)
        else:
            await storage.record_correction(post.id, admin_id=1, label=label, approved=True)
        labels[post.image.sha256] = label
    guess = await storage.add_post(
        platform="telegram", chat_id=1, message_id=99, author_id=1, image=make_image(99)
    )
    await storage.record_prediction(
        guess.id, model_version="v1", label="doom", confidence=0.99,
        probabilities={"doom": 0.99}, latency_ms=1.0,
    )
    return labels


def _tree(folder: Path) -> dict[str, str]:
    return {p.stem: p.parent.name for p in folder.rglob("*") if p.is_file()}


async def test_export_import_round_trip(open_storage, tmp_path: Path) -> None:
    source = await open_storage()
    labels = await _labelled(source)
    report = await source.export_labelled(tmp_path / "export")
    assert report.written == 3 and report.per_label == {"doom": 1, "genshin": 1, "other": 1}
    assert _tree(tmp_path / "export") == labels
    for path in (tmp_path / "export").rglob("*.png"):
        assert path.name == f"{path.stem}.png" and len(path.stem) == 64

    # Another machine: its own SQLite database and blob store.
    target = await Storage.open(
        f"sqlite+aiosqlite:///{tmp_path / 'other.db'}", tmp_path / "other-blobs"
    )
    try:
        imported = await target.import_labelled(tmp_path / "export", admin_id="telegram:7")
        assert (imported.images, imported.relabelled, imported.labels_added) == (
            3, 3, ("genshin",)
        )
        moved = {e.sha256: e.label for e in (await target.training_set()).examples}
        assert moved == labels
        assert all(e.path.is_file() for e in (await target.training_set()).examples)
        again = await target.import_labelled(tmp_path / "export")
        assert (again.relabelled, again.unchanged) == (0, 3)
        assert (await target.table_counts())["posts"] == 3
    finally:
        await target.close()


async def test_reexport_moves_relabelled_image(storage: Storage, tmp_path: Path) -> None:
    labels = await _labelled(storage)
    folder = tmp_path / "export"
    await storage.export_labelled(folder)
    sha = next(s for s, label in labels.items() if label == "doom")
    post = (await storage.recent_predictions(label="doom", corrected=False, limit=10))
    target_post = next(i.post for i in post if i.post.image.sha256 == sha)
    await storage.record_correction(target_post.id, admin_id=2, label="animal_crossing",
                                    approved=True)
    report = await storage.export_labelled(folder)
    assert (report.written, report.unchanged) == (1, 2)
    assert _tree(folder) == {**labels, sha: "animal_crossing"}


async def test_import_into_same_storage_relabels(storage: Storage, tmp_path: Path) -> None:
    labels = await _labelled(storage)
    folder = tmp_path / "export"
    await storage.export_labelled(folder)
    sha = next(s for s, label in labels.items() if label == "other")
    (folder / "other" / f"{sha}.png").rename(folder / "doom" / f"{sha}.png")
    report = await storage.import_labelled(folder, admin_id="reviewer")
    assert (report.relabelled, report.unchanged) == (1, 2)
    assert {e.sha256: e.label for e in (await storage.training_set()).examples} == {
        **labels, sha: "doom"
    }


@pytest.mark.parametrize(
    ("layout", "error"),
    [
        ({"doom/ok.png": "image", "doom/broken.png": "truncated"}, BlobError),
        ({"doom/ok.png": "image", "Bad Label/x.png": "image2"}, InvalidInputError),
        ({"doom/a.png": "image", "other/b.png": "image"}, InvalidInputError),  # two labels
        ({"genshin/a.png": "image"}, UnknownLabelError),  # with create_labels=False
    ],
)
async def test_bad_import_changes_nothing(
    storage: Storage, tmp_path: Path, layout: dict[str, str], error: type[Exception]
) -> None:
    contents = {
        "image": make_image(1),
        "image2": make_image(2),
        "truncated": make_image(3, size=(64, 64))[:100],
    }
    folder = tmp_path / "incoming"
    for name, kind in layout.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(contents[kind])
    before = await storage.table_counts()
    with pytest.raises(error):
        await storage.import_labelled(folder, create_labels=False)
    assert await storage.table_counts() == before
    assert not storage.blob_root.exists() or not any(storage.blob_root.rglob("*.png"))


async def test_import_missing_folder(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        await storage.import_labelled(tmp_path / "nope")


async def test_clips_in_a_tree_are_decoded_or_refused_before_anything_is_written(
    storage: Storage, tmp_path: Path
) -> None:
    folder = tmp_path / "incoming"
    (folder / "doom").mkdir(parents=True)
    (folder / "doom" / "a.png").write_bytes(make_image(1))
    (folder / "doom" / "b.mp4").write_bytes(clip("doom", "mp4")[:300])  # cut off
    reader = partial(read_clip, limits=ClipLimits())
    before = await storage.table_counts()
    with pytest.raises(BlobError, match=r"b\.mp4: the clip does not decode"):
        await storage.import_labelled(folder, read_clip=reader)
    (folder / "doom" / "b.mp4").write_bytes(clip("doom", "mp4"))
    with pytest.raises(BlobError, match=r"b\.mp4: the file is a clip"):
        await storage.import_labelled(folder)  # without a decoder: pictures only
    assert await storage.table_counts() == before
    report = await storage.import_labelled(folder, read_clip=reader)
    assert report.images == report.relabelled == 2
