"""`memebot predict` and `memebot evaluate` through the real command dispatcher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.imagegen import encode, make_dataset, make_image


def test_predict_prints_one_line_per_image(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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


def test_predict_without_a_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a.png"
    f.write_bytes(encode(make_image("doom", 1), "PNG"))
    assert main(["predict", "--model", str(tmp_path / "nothing"), str(f)]) == 1
    assert "memebot train" in capsys.readouterr().err


def test_evaluate_writes_metrics_and_plots(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_dataset(tmp_path / "eval", per_class=4)
    (data / "doom" / "corrupt.jpg").write_bytes(b"not really")
    out = tmp_path / "report"
    assert main(["evaluate", str(data), "--model", str(tiny_model), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "accuracy_ci95", "per_class", "confusion_matrix", "ece", "p_value_vs_majority",
                "game_accuracy", "games_kept", "ood_auroc", "ood_fpr_at_95tpr", "other_auroc"):
        assert key in metrics, key
    assert metrics["n"] == 12 and len(metrics["failures"]) == 1
    lo, hi = metrics["accuracy_ci95"]
    assert lo <= metrics["accuracy"] <= hi
    for png in ("confusion_matrix.png", "reliability.png", "ood_scores.png"):
        assert (out / png).stat().st_size > 1000
    assert "1 file(s) could not be classified" in capsys.readouterr().out
