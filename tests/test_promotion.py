"""The promotion gate's rules on plain numbers (no model needed)."""

from __future__ import annotations

import math

import pytest

from model_training.promotion import GateConfig, Paired, Scores, decide


def _scores(old: float, corr: float | None, n_old: int = 300, n_corr: int = 20) -> Scores:
    return Scores(old_accuracy=old, old_n=n_old, corrections_accuracy=corr, corrections_n=n_corr)


def test_paired_counts_and_exact_sign_test() -> None:
    change = Paired.of([True, True, False, False, True], [False, True, True, False, False])
    assert (change.lost, change.gained) == (2, 1)
    assert change.p_worse() == pytest.approx(4 / 8)  # P(X >= 2), X ~ Bin(3, 1/2)
    assert Paired(0, 0).p_worse() == 1.0
    assert Paired(9, 0).p_worse() == pytest.approx(1 / 512)
    assert Paired(12, 8).p_worse() == pytest.approx(
        sum(math.comb(20, k) for k in range(12, 21)) / 2**20
    )
    with pytest.raises(ValueError):
        Paired.of([True], [True, False])


def test_small_drop_within_tolerance_is_promoted() -> None:
    d = decide(_scores(0.85, 0.0), _scores(0.845, 0.5),
               corrections_total=100, old_change=Paired(3, 1))
    assert d.promote, d.reason
    assert "85.0% -> 84.5%" in d.reason and "3 lost, 1 gained" in d.reason


def test_drop_beyond_tolerance_is_refused_when_it_is_real_forgetting() -> None:
    # 2 points, every changed meme went the wrong way: p = 2^-9
    d = decide(_scores(0.85, 0.0), _scores(0.83, 0.9),
               corrections_total=40, old_change=Paired(9, 0))
    assert not d.promote
    assert "9 memes lost vs 0 gained" in d.reason and "forgetting" in d.reason


def test_drop_beyond_tolerance_is_noise_when_memes_move_both_ways() -> None:
    d = decide(_scores(0.85, 0.0), _scores(0.83, 0.9),
               corrections_total=40, old_change=Paired(12, 6))
    assert d.promote, d.reason
    assert "p=0.12" in d.reason


def test_drop_beyond_the_cap_is_refused_whatever_the_test_says() -> None:
    d = decide(_scores(0.85, 0.0), _scores(0.81, 0.9),
               corrections_total=40, old_change=Paired(30, 18))
    assert not d.promote and "more than 3.0 points" in d.reason


def test_without_paired_counts_the_tolerance_alone_decides() -> None:
    d = decide(_scores(0.85, 0.0), _scores(0.835, 0.9), corrections_total=40)
    assert not d.promote and "tolerance 1.0 points" in d.reason


def test_candidate_must_learn_what_the_active_model_gets_wrong() -> None:
    same = decide(_scores(0.85, 0.2), _scores(0.85, 0.2),
                  corrections_total=40, old_change=Paired(0, 0))
    assert not same.promote and "did not learn the corrections" in same.reason
    better = decide(_scores(0.85, 0.2), _scores(0.85, 0.3),
                    corrections_total=40, old_change=Paired(0, 0))
    assert better.promote, better.reason


def test_corrections_the_active_model_already_gets_right_must_not_get_worse() -> None:
    kept = decide(_scores(0.85, 0.95), _scores(0.85, 0.95),
                  corrections_total=100, old_change=Paired(0, 0))
    assert kept.promote, kept.reason  # nothing to learn, nothing lost
    worse = decide(_scores(0.85, 0.95), _scores(0.85, 0.90),
                   corrections_total=100, old_change=Paired(0, 0))
    assert not worse.promote and "below the active model's 95.0%" in worse.reason


def test_nothing_to_learn_from_is_never_promoted() -> None:
    d = decide(_scores(0.85, None), _scores(0.86, None), corrections_total=0)
    assert not d.promote and "nothing to promote" in d.reason
    d = decide(_scores(0.85, None), _scores(0.86, None), corrections_total=3)
    assert not d.promote and "no held-back corrections" in d.reason


def test_gate_settings_are_respected() -> None:
    strict = GateConfig(tolerance=0.0, max_drop=0.0)
    d = decide(_scores(0.85, 0.0), _scores(0.847, 0.5), strict,
               corrections_total=40, old_change=Paired(1, 0))
    assert not d.promote
