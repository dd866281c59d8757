"""Evaluation statistics against values computed by hand or by scipy/sklearn definitions."""

from __future__ import annotations

import numpy as np
import pytest

from inference.metrics import (
    binomial_sf,
    confusion_matrix,
    expected_calibration_error,
    fpr_at_tpr,
    per_class,
    roc_auc,
    wilson_interval,
)


def test_wilson_interval_known_value() -> None:
    lo, hi = wilson_interval(90, 100)
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_binomial_tail() -> None:
    assert binomial_sf(5, 5, 0.5) == pytest.approx(1 / 32)
    assert binomial_sf(0, 10, 0.3) == 1.0
    assert binomial_sf(3, 5, 0.5) == pytest.approx(0.5)


def test_auroc_and_ties() -> None:
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0]), np.array([1.0])) == 0.5
    assert roc_auc(np.array([0.8, 0.4]), np.array([0.5, 0.1])) == pytest.approx(0.75)


def test_fpr_at_tpr() -> None:
    ind = np.linspace(0, 1, 101)
    assert fpr_at_tpr(ind, np.array([2.0, 3.0])) == 0.0
    assert fpr_at_tpr(ind, np.array([0.5, 3.0])) == 0.5


def test_confusion_and_per_class() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert cm.tolist() == [[1, 1], [0, 2]]
    pc = per_class(cm, ["a", "b"])
    assert pc["a"]["precision"] == 1.0 and pc["a"]["recall"] == 0.5
    assert pc["b"]["f1"] == pytest.approx(0.8)


def test_ece_perfectly_calibrated_is_zero() -> None:
    conf = np.array([1.0, 1.0, 0.5, 0.5])
    assert expected_calibration_error(conf, np.array([1, 1, 1, 0.0])) == pytest.approx(0.0)
