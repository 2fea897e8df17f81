"""Youden's J threshold."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.fingerprint import apply_threshold, youden_threshold


def test_youden_threshold_separable() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.9])
    t = youden_threshold(labels, scores)
    assert t == pytest.approx(0.4)
    np.testing.assert_array_equal(apply_threshold(scores, t), labels)


def test_youden_threshold_maximises_j_by_brute_force() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    scores = rng.normal(size=200) + labels
    t = youden_threshold(labels, scores)

    def j(threshold: float) -> float:
        pred = apply_threshold(scores, threshold)
        sen = (pred[labels == 1] == 1).mean()
        spe = (pred[labels == 0] == 0).mean()
        return sen + spe - 1

    best = max(j(s) for s in scores)
    assert j(t) == pytest.approx(best)
    assert j(t) > 0.2


def test_youden_threshold_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="both classes"):
        youden_threshold([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="finite"):
        youden_threshold([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="0/1"):
        youden_threshold([0, 2], [0.1, 0.2])
