"""The usage predictor reads the image: u follows a lesion that moves from case to case (paper, Sec. 4.2).

Each case has a lesion in one of four patches, visible as a bright block in the image channel the usage
predictor sees; the label signal sits only in that patch's ``Mean`` feature (the other patches' features
are noise). A per-case usage must then put its highest ``u`` on the case's lesion patch. Negative control:
the same training with the images shuffled across cases (the location no longer matches the features)
must localise at chance.
"""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.fingerprint import fit_fingerprint, parse_feature_name

PATCHES = ((0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1))
FEATURES = ("Mean", "Variance")
NAMES = [f"sagittal.original.p{i}{j}{k}.firstorder.{f}" for (i, j, k) in PATCHES for f in FEATURES]
CHANCE = 1 / len(PATCHES)


def moving_lesion_cohort(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Images ``(n, 1, 8, 8, 8)``, features ``(n, 8)``, labels and each case's lesion patch (0..3)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    lesion = rng.integers(0, len(PATCHES), n)
    images = rng.normal(0.0, 0.1, size=(n, 1, 8, 8, 8)).astype(np.float32)
    X = rng.normal(size=(n, len(NAMES)))
    for case in range(n):
        _, j, k = PATCHES[lesion[case]]
        images[case, 0, 2:6, 4 * j : 4 * j + 4, 4 * k : 4 * k + 4] += 2.0
        X[case, len(FEATURES) * lesion[case]] += 2.5 * (2 * y[case] - 1)
    return images, X, y, lesion


def localisation_share(u: np.ndarray, lesion: np.ndarray) -> float:
    """Share of cases whose highest-u feature lies in that case's lesion patch."""
    patch_of = np.array([PATCHES.index((key.i, key.j, key.k)) for key in map(parse_feature_name, NAMES)])
    return float((patch_of[u.argmax(axis=1)] == lesion).mean())


@pytest.fixture(scope="module")
def cohorts() -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    return moving_lesion_cohort(120, seed=0), moving_lesion_cohort(60, seed=1)


def _fit(make_settings, images: np.ndarray, X: np.ndarray, y: np.ndarray):
    settings = make_settings(
        epochs=30, learning_rate=1.0e-2, lambda_u=0.05, batch_size=16, dropout=0.0, threshold_every=30
    )
    return fit_fingerprint(images, X, y, feature_names=NAMES, settings=settings)


def test_usage_follows_the_lesion_in_the_image(make_settings, cohorts) -> None:
    (images, X, y, _), (test_images, test_X, _, test_lesion) = cohorts
    model = _fit(make_settings, images, X, y)
    share = localisation_share(model.predict(test_images, test_X)["u"], test_lesion)
    assert share >= 0.6, f"top-u feature in the lesion patch for {share:.2f} of new cases (chance {CHANCE})"


def test_shuffled_images_localise_at_chance(make_settings, cohorts) -> None:
    """Negative control: the same cohort with images shuffled across cases gives chance-level localisation."""
    (images, X, y, _), (test_images, test_X, _, test_lesion) = cohorts
    rng = np.random.default_rng(7)
    model = _fit(make_settings, images[rng.permutation(len(y))], X, y)
    share = localisation_share(model.predict(test_images[rng.permutation(len(test_X))], test_X)["u"], test_lesion)
    assert share <= 0.4, f"shuffled images still localise {share:.2f} of new cases (chance {CHANCE})"
