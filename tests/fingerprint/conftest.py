"""Tiny synthetic problems and settings shared by the fingerprint tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from radpersona.settings import FingerprintSettings

VIEWS = ("sagittal", "coronal", "axial")


def tiny_settings(**overrides: Any) -> dict[str, Any]:
    """A complete, plain ``fingerprint`` settings section sized for CPU tests."""
    settings: dict[str, Any] = {
        "representation": "path_persona",
        "usage_predictor": True,
        "usage_threshold": 0.4,
        "lambda_u": 1.0e-3,
        "lambda_beta": 1.0e-3,
        "beta_penalty": "l2",
        "epochs": 3,
        "batch_size": 8,
        "learning_rate": 1.0e-3,
        "dropout": 0.2,
        "resnet_widths": [4, 8, 8, 8],
        "init_weights": None,
        "folds": 3,
        "inner_validation": 0.25,
        "threshold_every": 2,
        "threshold_protocol": "inner",
        "seed": 3,
        "device": "cpu",
        "families": None,
    }
    settings.update(overrides)
    return settings


def feature_names(n: int) -> list[str]:
    """``n`` wide-table column names over views, images, 2x2x2 patches and two families."""
    names = []
    for idx in range(n):
        view = VIEWS[idx % 3]
        image = ("original", "persona")[(idx // 3) % 2]
        i, j, k = (idx // 6) % 2, (idx // 12) % 2, (idx // 24) % 2
        family, name = ("firstorder", f"Mean{idx}") if idx % 5 else ("location", "ijk"[idx % 3])
        names.append(f"{view}.{image}.p{i}{j}{k}.{family}.{name}")
    assert len(set(names)) == n, "synthetic feature names must be unique"
    return names


def synthetic_problem(
    n: int, n_features: int, *, n_views: int = 2, seed: int = 0, signal: float = 3.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Images ``(n, V, 8, 16, 16)``, raw features ``(n, N)`` and labels where feature 0 is predictive."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    X = rng.normal(loc=5.0, scale=2.0, size=(n, n_features))
    X[:, 0] += signal * 2.0 * (y - 0.5) * 2.0
    images = rng.normal(size=(n, n_views, 8, 16, 16)).astype(np.float32)
    return images, X, y, feature_names(n_features)


@pytest.fixture
def problem() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    return synthetic_problem(48, 12)


def tiny_fingerprint_settings(**overrides: Any) -> FingerprintSettings:
    """:func:`tiny_settings` validated into :class:`FingerprintSettings` (raises ConfigError naming a bad key)."""
    return FingerprintSettings.from_config(tiny_settings(**overrides))


@pytest.fixture
def make_settings():
    """Factory fixture: ``make_settings(**overrides)`` -> validated :class:`FingerprintSettings`."""
    return tiny_fingerprint_settings


@pytest.fixture
def make_problem():
    """Factory fixture: ``make_problem(n, n_features, ...)`` -> ``(images, X, y, names)``."""
    return synthetic_problem
