"""Shared fixtures for the radiomics engine tests: generated volumes and PyRadiomics' reference cases."""

from __future__ import annotations

import numpy as np
import pytest


def _ellipsoid(shape: tuple[int, int, int], radii: tuple[float, float, float]) -> np.ndarray:
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1) / 2.0
    r2 = sum(((grid[k] - centre[k]) / radii[k]) ** 2 for k in range(3))
    return r2 <= 1.0


def generated_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, image, mask) cases covering smooth, noisy, tiny, flat, elongated and single-level ROIs."""
    rng = np.random.default_rng(20240611)
    cases = []
    shape = (9, 14, 16)
    smooth = np.cumsum(np.cumsum(rng.normal(0, 6, shape), axis=1), axis=2) + 400
    cases.append(("smooth_ellipsoid", smooth.round(2), _ellipsoid(shape, (3.6, 5.5, 6.8))))
    noisy_img = rng.normal(250, 90, shape).round(1)
    cases.append(("noisy_mask", noisy_img, rng.random(shape) > 0.45))
    two = np.zeros((4, 5, 6), bool)
    two[1, 2, 2] = two[1, 2, 3] = True
    cases.append(("two_voxels_adjacent", rng.normal(100, 40, two.shape), two))
    apart = np.zeros((4, 5, 6), bool)
    apart[1, 1, 1] = apart[2, 3, 4] = True
    cases.append(("two_voxels_apart", rng.normal(100, 40, apart.shape), apart))
    cases.append(("single_grey_level", np.full(shape, 77.0), _ellipsoid(shape, (3.0, 4.0, 5.0))))
    flat = np.zeros((5, 12, 13), bool)
    flat[2, 2:10, 3:12] = rng.random((8, 9)) > 0.2
    cases.append(("flat_one_slice", rng.normal(500, 150, flat.shape).round(), flat))
    long = np.zeros((6, 6, 30), bool)
    long[2:4, 2:4, 1:29] = True
    cases.append(("elongated_bar", rng.normal(60, 30, long.shape), long))
    line = np.zeros((3, 3, 9), bool)
    line[1, 1, 1:8] = True
    cases.append(("line_1d", rng.normal(60, 30, line.shape), line))
    negative = rng.normal(-300, 200, shape)
    cases.append(("negative_intensities", negative, _ellipsoid(shape, (4.0, 6.0, 7.0)) & (rng.random(shape) > 0.1)))
    return cases


@pytest.fixture(scope="session")
def cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The generated parity cases."""
    return generated_cases()
