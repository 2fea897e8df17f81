"""Working-grid transforms of the audit agree with the pipeline's file-based truth helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radpersona.audit import centre_crop, intensity_scale, lesion_fraction_array, preprocess_with_counterparts
from radpersona.errors import ConfigError, InputDataError
from radpersona.layout import Layout
from radpersona.preprocess import normalise, resize
from radpersona.settings import PreprocessSettings
from radpersona.truth import healthy_on_grid, lesion_fraction
from radpersona.volume import write_volume

PRE = {"shape": [6, 12, 10], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}


def _codes_mask(rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((11, 40, 36), dtype=np.uint8)
    mask[3:6, 10:17, 8:20] = 1
    mask[7:9, 25:27, 20:30] = 2
    mask[rng.random(mask.shape) < 0.01] = 3
    return mask


@pytest.mark.parametrize("crop", [1.0, 0.6])
def test_lesion_fraction_array_equals_the_file_based_truth(tmp_path, crop):
    """With and without preprocess.crop: the audit's arrays and the file-based truth crop and resize alike."""
    rng = np.random.default_rng(0)
    mask = _codes_mask(rng)
    raw = rng.uniform(0, 255, mask.shape).astype(np.float32)
    np.save(tmp_path / "mask.npy", mask)
    write_volume(tmp_path / "raw.nii.gz", raw, (4.0, 0.625, 0.625))
    for codes in ((1,), (2,), (1, 2, 3)):
        expected = lesion_fraction(
            tmp_path / "mask.npy",
            tmp_path / "raw.nii.gz",
            case="0001",
            view="axial",
            codes=codes,
            preprocess_shape=PRE["shape"],
            crop=crop,
        )
        got = lesion_fraction_array(mask, codes, PRE["shape"], crop=crop)
        assert got.shape == tuple(PRE["shape"])
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert got.max() > 0.4  # the comparison is not one of empty maps
        if crop < 1.0 and codes != (1, 2, 3):  # the central lesions cover more voxels of the finer grid
            assert got.sum() > 1.2 * lesion_fraction_array(mask, codes, PRE["shape"]).sum()


def test_lesion_fraction_array_at_the_raw_grid_is_the_binary_mask_and_conserves_mass():
    mask = np.zeros((16, 16, 16), dtype=np.uint8)
    mask[4:8, 4:8, 4:8] = 2
    raw = lesion_fraction_array(mask, (2,), mask.shape)
    np.testing.assert_array_equal(raw, (mask == 2).astype(np.float32))
    half = lesion_fraction_array(mask, (2,), (8, 8, 8))
    # 64 raw voxels = 8 voxels of the half grid; box averaging + linear resampling conserve the mass
    assert half.sum() == pytest.approx(8.0, rel=1e-5)
    assert not lesion_fraction_array(mask, (1,), (8, 8, 8)).any()
    with pytest.raises(InputDataError, match="case '0007'"):
        lesion_fraction_array(mask[0], (2,), (8, 8), case="0007")


def test_counterparts_are_normalised_like_healthy_on_grid(tmp_path):
    rng = np.random.default_rng(1)
    healthy = rng.uniform(0, 200, (11, 40, 36)).astype(np.float32)
    image = healthy.copy()
    image[3:6, 10:17, 8:20] += 50.0
    layout = Layout(str(tmp_path))
    Path(layout.synthetic_truth_dir()).mkdir(parents=True)
    np.save(layout.truth("0003", "coronal", "healthy"), healthy)
    settings = PreprocessSettings.from_config(PRE)
    expected = healthy_on_grid(layout, image, "0003", "coronal", preprocess=settings, reg="noreg")
    pre, (counterpart, same), spacing, scale = preprocess_with_counterparts(
        image, [healthy, image], PRE, spacing=(4.0, 0.625, 0.625)
    )
    # typed settings and their mapping give the same arrays
    typed = preprocess_with_counterparts(image, [healthy], settings, spacing=(4.0, 0.625, 0.625))
    np.testing.assert_array_equal(typed.counterparts[0], counterpart)
    np.testing.assert_allclose(counterpart, expected, atol=1e-6)
    resized, _ = resize(image, (1.0, 1.0, 1.0), PRE["shape"], "linear")
    np.testing.assert_allclose(pre, normalise(resized, "percentile", (0.5, 99.5)), atol=1e-6)
    np.testing.assert_allclose(same, pre, atol=1e-6)
    assert spacing == pytest.approx((4.0 * 11 / 6, 0.625 * 40 / 12, 0.625 * 36 / 10))
    lo = np.percentile(resized, 0.5)
    inside = (pre > 0) & (pre < 1)
    np.testing.assert_allclose(pre[inside], ((resized - lo) * scale)[inside], atol=1e-5)
    with pytest.raises(InputDataError, match="counterpart 0"):
        preprocess_with_counterparts(image, [healthy[:5]], PRE, case="0003", view="coronal")


def test_centre_crop_keeps_the_central_part():
    array = np.arange(2 * 10 * 7).reshape(2, 10, 7)
    crop = centre_crop(array, 0.6)
    assert crop.shape == (2, 6, 4)
    np.testing.assert_array_equal(crop, array[:, 2:8, 1:5])
    assert centre_crop(array, 1.0).shape == array.shape
    for bad in (0.0, 1.5, -0.2):
        with pytest.raises(ConfigError, match="crop fraction"):
            centre_crop(array, bad)


def test_intensity_scale_is_the_slope_of_every_normalisation():
    x = np.random.default_rng(2).gamma(2.0, 10.0, (6, 12, 10)).astype(np.float32)
    for method in ("none", "minmax", "zscore", "percentile"):
        pre = {**PRE, "normalisation": method}
        k = intensity_scale(x, pre)
        y = normalise(x, method, PRE["percentiles"])
        inside = (y > y.min()) & (y < y.max())
        pairs = np.argwhere(inside)[:2]
        a, b = tuple(pairs[0]), tuple(pairs[1])
        assert y[a] - y[b] == pytest.approx(k * (x[a] - x[b]), rel=1e-4)
    with pytest.raises(ConfigError, match="normalisation"):
        intensity_scale(x, {**PRE, "normalisation": "robust"})
    with pytest.raises(InputDataError, match="constant"):
        intensity_scale(np.ones((2, 2, 2)), PRE)


def test_a_crop_moves_counterparts_like_the_preprocessed_volume(tmp_path):
    """With preprocess.crop, the file-based truth counterpart (healthy_on_grid) and the audit's arrays crop
    before resizing exactly as preprocess_volume does (lesion fractions: the test above)."""
    rng = np.random.default_rng(4)
    mask = _codes_mask(rng)
    healthy = rng.uniform(0, 200, mask.shape).astype(np.float32)
    image = healthy + 50.0 * (mask == 1)
    pre = {**PRE, "crop": 0.6}
    settings = PreprocessSettings.from_config(pre)
    layout = Layout(str(tmp_path / "results"))
    Path(layout.synthetic_truth_dir()).mkdir(parents=True)
    np.save(layout.truth("0003", "coronal", "healthy"), healthy)
    counterpart = healthy_on_grid(layout, image, "0003", "coronal", preprocess=settings, reg="noreg")
    out = preprocess_with_counterparts(image, [healthy], settings, spacing=(4.0, 0.625, 0.625))
    np.testing.assert_allclose(out.counterparts[0], counterpart, atol=1e-6)
    resized, _ = resize(centre_crop(image, 0.6), (1.0, 1.0, 1.0), pre["shape"], "linear")
    np.testing.assert_allclose(out.image, normalise(resized, "percentile", (0.5, 99.5)), atol=1e-6)
    assert out.spacing == pytest.approx((4.0 * 11 / 6, 0.625 * 24 / 12, 0.625 * 22 / 10))
