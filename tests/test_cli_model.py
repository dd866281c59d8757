"""`memebot predict` and `memebot evaluate` through the real command dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.support.imagegen import encode, make_dataset, make_image


def test_predict_prints_one_line_per_image(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "meme.png"
    good.write_bytes(encode(make_image("doom", 5), "PNG"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    assert main(["predict", "--model", str(tiny_model), str(good), str(bad)]) == 0
    out, err = capsys.readouterr()
    line = out.strip().splitlines()
    assert len(line) == 1 and line[0].startswith(str(good)) and "%" in line[0]
    assert str(bad) in err and "ERROR" in err


def test_predict_json(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.webp"
    f.write_bytes(encode(make_image("animal_crossing", 1), "WEBP"))
    assert main(["predict", "--json", "--model", str(tiny_model), str(f)]) == 0
    row = json.loads(capsys.readouterr().out.strip())
    assert row["path"] == str(f) and row["label"] in {"doom", "animal_crossing", "other"}
    assert set(row["probabilities"]) == {"doom", "animal_crossing", "other"}
    assert {"confidence", "ood_score", "is_ood", "model_version"} <= set(row)


def test_predict_without_a_model_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(encode(make_image("doom", 1), "PNG"))
    assert main(["predict", "--model", str(tmp_path / "nothing"), str(f)]) == 1
    assert "memebot train" in capsys.readouterr().err


def test_evaluate_writes_metrics_and_plots(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_dataset(tmp_path / "eval", per_class=4)
    (data / "doom" / "corrupt.jpg").write_bytes(b"not really")
    out = tmp_path / "report"
    assert main(["evaluate", str(data), "--model", str(tiny_model), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "accuracy_ci95", "per_class", "confusion_matrix", "ece",
                "p_value_vs_majority", "game_accuracy", "games_kept", "ood_auroc",
                "ood_fpr_at_95tpr", "other_auroc"):
        assert key in metrics, key
    assert metrics["n"] == 12 and len(metrics["failures"]) == 1
    lo, hi = metrics["accuracy_ci95"]
    assert lo <= metrics["accuracy"] <= hi
    for png in ("confusion_matrix.png", "reliability.png", "ood_scores.png"):
        assert (out / png).stat().st_size > 1000
    assert "1 file(s) could not be classified" in capsys.readouterr().out


def test_predict_caption_and_captions_csv(
    worded_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = worded_model
    # plain pictures carry no text for Tesseract: only the caption can speak
    files = []
    for i in range(4):
        f = tmp_path / f"m{i}.png"
        f.write_bytes(encode(make_image("doom" if i % 2 else "animal_crossing", 40 + i), "PNG"))
        files.append(f)

    def labels(*extra: str) -> list[str]:
        assert main(["predict", "--json", "--model", str(model), *extra, *map(str, files)]) == 0
        return [json.loads(line)["label"] for line in capsys.readouterr().out.strip().splitlines()]

    plain = labels()
    games = [i for i, lab in enumerate(plain) if lab != "other"]
    assert games, plain  # the tiny model calls some of them a game
    assert all(
        labels("--caption", "Tom Nook and a villager")[i] == "animal_crossing" for i in games
    )
    assert all(labels("--caption", "the slayer meets demons")[i] == "doom" for i in games)
    assert labels("--caption", "") == plain  # no words: exactly as before
    csv_file = tmp_path / "captions.csv"
    csv_file.write_text("path,caption\n" + "".join(
        f"{f.name},{'demons and the slayer' if i % 2 else 'nook villager island'}\n"
        for i, f in enumerate(files)))
    by_csv = labels("--captions", str(csv_file))
    for i in games:
        assert by_csv[i] == ("doom" if i % 2 else "animal_crossing")
    # absolute paths are taken as they are; the count of matched rows is always reported
    absolute = tmp_path / "elsewhere" / "absolute.csv"
    absolute.parent.mkdir()
    absolute.write_text(f"path,caption\n{files[1]},demons and the slayer\n")
    assert main(["predict", "--model", str(model), "--captions", str(absolute),
                 *map(str, files)]) == 0
    assert "1 of 4 image(s) matched" in capsys.readouterr().err
    # paths relative to another folder than the CSV's own match nothing: an error, not silence
    wrong = tmp_path / "elsewhere" / "relative.csv"
    wrong.write_text("path,caption\n" + "".join(f"{f.name},slayer\n" for f in files))
    assert main(["predict", "--model", str(model), "--captions", str(wrong),
                 *map(str, files)]) == 2
    err = capsys.readouterr().err
    assert "none of the 4 image(s)" in err and str(wrong.parent.resolve()) in err
    bad = tmp_path / "bad.csv"
    bad.write_text("file,text\nx,y\n")
    assert main(["predict", "--model", str(model), "--captions", str(bad), str(files[0])]) == 2
    assert "path,caption" in capsys.readouterr().err


def test_evaluate_reads_the_manifest_captions(worded_model: Path, tmp_path: Path) -> None:
    model = worded_model
    data = make_dataset(tmp_path / "eval", per_class=4)
    words = {"doom": "slayer demons", "animal_crossing": "nook villager"}
    rows = [f"{p.relative_to(data)},{words.get(p.parent.name, '')}"
            for p in sorted(data.rglob("*.jpg"))]
    from model_training.evaluate import evaluate_folder

    without = evaluate_folder(model, data, progress=False)
    (data / "MANIFEST.csv").write_text("path,caption\n" + "\n".join(rows) + "\n")
    with_words = evaluate_folder(model, data, progress=False)
    assert with_words.metrics["captions_used"] == 8 and without.metrics["captions_used"] == 0
    assert with_words.metrics["game_accuracy"] == 1.0 >= without.metrics["game_accuracy"]


def test_a_manifest_without_captions_means_none(tmp_path: Path) -> None:
    from inference.captions import dataset_captions

    assert dataset_captions(tmp_path / "MANIFEST.csv") == {}
    (tmp_path / "MANIFEST.csv").write_text("path,label,source\na.jpg,doom,reddit\n")
    assert dataset_captions(tmp_path / "MANIFEST.csv") == {}
    (tmp_path / "MANIFEST.csv").write_text("path,label,caption\na.jpg,doom,rip and tear\n")
    assert dataset_captions(tmp_path / "MANIFEST.csv") == {
        (tmp_path / "a.jpg").resolve(): "rip and tear"
    }
