"""Clips in `memebot predict` and `memebot evaluate` (judged from their frames, as the bot
judges them), and corrected clips as training rows for /retrain (their frames)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.cli import main
from model_training.data import Sample
from model_training.retrain import corrections_from_examples, hold_back
from tests.support.clipgen import clip
from tests.support.imagegen import encode, make_dataset, make_image


def test_predict_takes_clips(tiny_model: Path, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    files = []
    for kind in ("mp4", "webm", "gif"):
        path = tmp_path / f"meme.{kind}"
        path.write_bytes(clip("doom", kind, count=12))
        files.append(path)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    assert main(["predict", "--model", str(tiny_model), *map(str, files), str(broken)]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 3 and all("(animation, " in line and "frames)" in line for line in lines)
    assert str(broken) in err and "damaged" in err
    assert main(["predict", "--json", "--model", str(tiny_model), str(files[0])]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["kind"] == "animation" and row["frames_used"] >= 1 and row["duration_s"] > 1
    assert row["label"] in {"doom", "animal_crossing", "other"}


def test_evaluate_takes_clips(tiny_model: Path, tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "eval", per_class=2)
    for label in ("doom", "animal_crossing"):
        (data / label / f"moving-{label}.mp4").write_bytes(clip(label, "mp4", count=12))
        (data / label / f"moving-{label}.webm").write_bytes(clip(label, "webm", seed=1))
    out = tmp_path / "report"
    assert main(["evaluate", str(data), "--model", str(tiny_model), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 6 + 4 and not metrics["failures"]


@dataclass
class Example:
    sha256: str
    path: Path
    label: str
    source: str = "correction"


def test_a_corrected_clip_trains_as_its_frames(tmp_path: Path) -> None:
    moving = tmp_path / "a.mp4"
    moving.write_bytes(clip("doom", "mp4", count=18))
    still = tmp_path / "b.png"
    still.write_bytes(encode(make_image("doom", 3), "PNG"))
    examples = [Example("c" * 64, moving, "doom"), Example("d" * 64, still, "doom")]
    frames_dir = tmp_path / "frames"
    samples, missing = corrections_from_examples(examples, frames_dir)
    assert not missing
    frames = [s for s in samples if s.group == "c" * 64]
    assert len(frames) >= 2 and all(s.path.suffix == ".png" for s in frames)
    assert len({s.sha256 for s in frames}) == len(frames)
    assert [s.path for s in samples if not s.group] == [still]
    again, _ = corrections_from_examples(examples, frames_dir)  # frames written once
    assert [s.sha256 for s in again] == [s.sha256 for s in samples]
    # A clip's frames are held back together or not at all.
    stills = [Sample(still, "doom", f"{i:064d}", 0, "admin") for i in range(8)]
    held = set()
    for seed in range(12):
        _, val = hold_back(frames + stills, 0.3, seed)
        sides = {f in val for f in frames}
        assert len(sides) == 1
        held |= sides
    assert held == {True, False}  # both happen across seeds
