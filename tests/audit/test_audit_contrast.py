"""Noise estimate, lesion-vs-healthy contrast-to-noise ratio and the residual inside versus outside."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radpersona.audit import lesion_cnr, noise_sd, propagated_noise_sd, residual_contrast
from radpersona.errors import InputDataError
from radpersona.preprocess import resize


def _phantom(shape=(24, 64, 64)) -> np.ndarray:
    """Air (0) around a body of two tissues (0.4 and 0.8) with many edges."""
    s, r, c = np.indices(shape)
    body = (r - shape[1] / 2) ** 2 + (c - shape[2] / 2) ** 2 < (0.45 * shape[1]) ** 2
    tissue = np.where((c // 10) % 2 == 0, 0.4, 0.8)
    return np.where(body, tissue, 0.0)


def test_noise_sd_recovers_the_noise_of_a_piecewise_constant_phantom():
    rng = np.random.default_rng(0)
    for sigma in (0.02, 0.05):
        volume = _phantom() + rng.normal(0, sigma, (24, 64, 64))
        # along the rows (default) and across the stripes (an edge every 10 voxels): clipping removes edges
        for axis, order in ((1, 2), (1, 1), (2, 1)):
            assert noise_sd(volume, axis=axis, order=order) == pytest.approx(sigma, rel=0.05)
        across = noise_sd(volume, axis=2, order=2)
        if sigma == 0.02:  # edges of 20 noise sds: clipped away
            assert across == pytest.approx(sigma, rel=0.05)
        else:  # edges of 8 noise sds, 3.3 sds of a second difference: kept, the estimate errs upwards
            assert across > 1.2 * sigma
        # an unrelated scale and offset scale the estimate and nothing else
        assert noise_sd(3.0 * volume + 7.0) == pytest.approx(3.0 * noise_sd(volume), rel=1e-9)
    assert noise_sd(_phantom()) == 0.0
    with pytest.raises(InputDataError, match="too few tissue voxel differences"):
        noise_sd(np.zeros((2, 3, 5)) + np.arange(5), case="0001")
    with pytest.raises(ValueError, match="order"):
        noise_sd(_phantom(), order=3)


def test_second_differences_ignore_smooth_shading():
    rng = np.random.default_rng(3)
    rows = np.arange(64, dtype=float)[None, :, None]
    shading = 0.5 + 0.0004 * (rows - 32.0) ** 2  # a bias-field-like bowl: 0.5 .. 0.9
    volume = np.broadcast_to(shading, (8, 64, 64)) + rng.normal(0, 0.01, (8, 64, 64))
    assert noise_sd(volume, order=2) == pytest.approx(0.01, rel=0.05)
    assert noise_sd(volume, order=1) > 1.2 * 0.01  # first differences see the slope as noise


def test_propagated_noise_of_known_linear_maps():
    assert propagated_noise_sd(2.0, lambda z: z, (8, 32, 32)) == pytest.approx(2.0, rel=0.02)
    assert propagated_noise_sd(2.0, lambda z: 0.5 * z + 3.0, (8, 32, 32)) == pytest.approx(1.0, rel=0.02)
    # halving every axis samples midway between 2 x 2 x 2 voxels: the mean of 8 independent values
    half = propagated_noise_sd(1.0, lambda z: resize(z, (1.0, 1.0, 1.0), (8, 16, 16))[0], (16, 32, 32))
    assert half == pytest.approx(1 / np.sqrt(8), rel=0.03)
    assert propagated_noise_sd(1.0, lambda z: z, (4, 4, 4), seed=1) != propagated_noise_sd(
        1.0, lambda z: z, (4, 4, 4), seed=2
    )


def test_lesion_cnr_of_a_cube_with_known_contrast():
    rng = np.random.default_rng(1)
    healthy = _phantom() + rng.normal(0, 0.05, (24, 64, 64))
    image = healthy.copy()
    fraction = np.zeros(healthy.shape)
    fraction[10:14, 30:34, 30:34] = 1.0
    fraction[9, 30:34, 30:34] = 0.3  # rim below the lesion threshold: not averaged
    image[fraction > 0] += 0.2 * fraction[fraction > 0]
    result = lesion_cnr(image, healthy, fraction)
    assert result.n_voxels == 64
    assert result.contrast == pytest.approx(0.2)
    assert result.cnr == pytest.approx(0.2 / 0.05, rel=0.06)
    assert result.noise == pytest.approx(noise_sd(healthy))
    fixed = lesion_cnr(image, healthy, fraction, noise=0.1)
    assert fixed.cnr == pytest.approx(2.0) and fixed.noise == 0.1
    # comparable across stages: an affine intensity map of both images leaves the CNR unchanged
    scaled = lesion_cnr(255 * image + 3, 255 * healthy + 3, fraction)
    assert scaled.cnr == pytest.approx(result.cnr, rel=1e-9)
    # a hypointense lesion has a negative CNR
    assert lesion_cnr(2 * healthy - image, healthy, fraction).cnr == pytest.approx(-result.cnr)


def test_lesion_cnr_without_lesion_voxels_and_with_mismatched_grids():
    healthy = _phantom() + np.random.default_rng(2).normal(0, 0.05, (24, 64, 64))
    empty = lesion_cnr(healthy, healthy, np.zeros(healthy.shape))
    assert empty.n_voxels == 0 and math.isnan(empty.cnr) and math.isnan(empty.contrast)
    noiseless = _phantom()
    fraction = np.zeros(noiseless.shape)
    fraction[10:12, 30:34, 30:34] = 1
    assert lesion_cnr(noiseless + 0.1 * fraction, noiseless, fraction).cnr == math.inf
    with pytest.raises(InputDataError, match="case '0005', view 'axial'"):
        lesion_cnr(healthy, healthy[:-1], np.zeros(healthy.shape), case="0005", view="axial")


def test_residual_inside_versus_outside_the_lesion():
    residual = np.full((10, 20, 20), 0.1)
    fraction = np.zeros(residual.shape)
    fraction[4:6, 8:12, 8:12] = 1.0  # inside the central box [3, 8) x [6, 14) x [5, 15)
    fraction[4, 12, 8] = 0.2  # partial voxel: neither inside nor outside
    residual[fraction >= 0.5] = -1.0
    residual[4, 12, 8] = 5.0
    residual[0, 0, 0] = 50.0  # outside the box: ignored
    result = residual_contrast(residual, fraction, (0.5, 0.4, 0.5))
    assert result.inside == pytest.approx(1.0) and result.outside == pytest.approx(0.1)
    assert result.ratio == pytest.approx(10.0)
    assert result.n_inside == 32 and result.n_outside == 5 * 8 * 10 - 32 - 1
    none = residual_contrast(residual, np.zeros(residual.shape), (0.5, 0.4, 0.5))
    assert math.isnan(none.inside) and math.isnan(none.ratio)
    with pytest.raises(InputDataError, match="one grid"):
        residual_contrast(residual, fraction[:, :, :-1], (0.5, 0.5, 0.5))
