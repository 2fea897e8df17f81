"""Preprocessing: resizing keeps the physical extent; normalisation uses only the volume itself."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.errors import InputDataError
from radpersona.preprocess import normalise, preprocess_volume, resize
from radpersona.settings import PreprocessSettings
from radpersona.volume import read_header, read_volume, write_volume


def test_resize_preserves_extent_and_mean():
    rng = np.random.default_rng(0)
    array = rng.normal(100, 5, (24, 40, 40)).astype(np.float32)
    out, spacing = resize(array, (3.0, 0.5, 0.5), (12, 20, 20))
    assert out.shape == (12, 20, 20)
    assert spacing == pytest.approx((6.0, 1.0, 1.0))
    assert out.mean() == pytest.approx(array.mean(), rel=1e-2)


def test_resize_of_a_linear_ramp_is_exact_in_the_interior():
    ramp = np.broadcast_to(np.arange(16, dtype=np.float32)[None, None, :], (4, 4, 16)).copy()
    out, _ = resize(ramp, (1, 1, 1), (4, 4, 8), "linear")
    # new voxel centres at 0.5, 2.5, ... -> linear interpolation of the ramp
    np.testing.assert_allclose(out[1, 1, 1:-1], np.arange(1, 7) * 2 + 0.5, atol=1e-5)


@pytest.mark.parametrize("method", ["minmax", "percentile", "zscore", "none"])
def test_normalise_uses_only_the_volume(method):
    rng = np.random.default_rng(1)
    a = rng.gamma(2.0, 30.0, (8, 16, 16)).astype(np.float32)
    out = normalise(a, method, (1.0, 99.0))
    if method in ("minmax", "percentile"):
        assert out.min() == pytest.approx(0.0) and out.max() == pytest.approx(1.0)
    elif method == "zscore":
        assert out.mean() == pytest.approx(0.0, abs=1e-5) and out.std() == pytest.approx(1.0, rel=1e-4)
    else:
        np.testing.assert_array_equal(out, a)
    # the same volume inside another cohort normalises identically (no cross-case statistics)
    np.testing.assert_array_equal(out, normalise(a.copy(), method, (1.0, 99.0)))


def test_constant_volume_is_a_named_error():
    with pytest.raises(InputDataError, match=r"case 'c1', view 'axial'.*constant volume"):
        normalise(np.ones((4, 4, 4), np.float32), "percentile", case="c1", view="axial")


def test_preprocess_volume_records_the_method(tmp_path):
    rng = np.random.default_rng(2)
    write_volume(tmp_path / "raw.nii.gz", rng.uniform(0, 255, (10, 32, 32)), (1.0, 1.0, 1.0))
    settings = PreprocessSettings.from_config(
        {"shape": [8, 16, 16], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}
    )
    record = preprocess_volume(tmp_path / "raw.nii.gz", tmp_path / "pre.nii.gz", settings, case="0001", view="sagittal")
    arr, spacing = read_volume(tmp_path / "pre.nii.gz")
    assert arr.shape == (8, 16, 16) and spacing == pytest.approx((1.25, 2.0, 2.0))
    assert record["original_shape"] == [10, 32, 32]
    assert "percentile 0.5-99.5" in read_header(tmp_path / "pre.nii.gz")["descrip"]


def test_preprocess_crop_keeps_the_centre_of_each_slice_at_a_finer_grid(tmp_path):
    """preprocess.crop 0.5: the central half of rows and columns (every slice), resized to the same shape, so
    in-plane voxels are half as large; the record and the header say so."""
    rng = np.random.default_rng(3)
    raw = rng.uniform(0, 255, (10, 40, 32)).astype(np.float32)
    raw[:, 10:30, 8:24] += 1000.0  # the central half is bright: after the crop, every voxel is
    write_volume(tmp_path / "raw.nii.gz", raw, (3.0, 0.5, 0.5))
    config = {"shape": [8, 16, 16], "interpolation": "linear", "normalisation": "none", "percentiles": [0.5, 99.5]}
    whole = preprocess_volume(
        tmp_path / "raw.nii.gz",
        tmp_path / "whole.nii.gz",
        PreprocessSettings.from_config(config),
        case="1",
        view="axial",
    )
    cropped = preprocess_volume(
        tmp_path / "raw.nii.gz",
        tmp_path / "crop.nii.gz",
        PreprocessSettings.from_config({**config, "crop": 0.5}),
        case="1",
        view="axial",
    )
    (a, sa), (b, sb) = read_volume(tmp_path / "whole.nii.gz"), read_volume(tmp_path / "crop.nii.gz")
    assert a.shape == b.shape == (8, 16, 16)
    assert sa == pytest.approx((3.75, 1.25, 1.0)) and sb == pytest.approx((3.75, 0.625, 0.5))
    assert b.min() > 1000.0 and a.min() < 255.0
    expected, _ = resize(raw[:, 10:30, 8:24], (3.0, 0.5, 0.5), (8, 16, 16))
    np.testing.assert_allclose(b, expected, rtol=1e-6)
    assert whole["crop"] == 1.0 and cropped["crop"] == 0.5
    assert "crop 0.5" in read_header(tmp_path / "crop.nii.gz")["descrip"]
    assert "crop" not in read_header(tmp_path / "whole.nii.gz")["descrip"]


@pytest.mark.parametrize("bad", [0.0, 1.2, -0.5])
def test_a_crop_outside_zero_to_one_is_refused(bad):
    from radpersona.settings import ConfigError

    config = {"shape": [8, 16, 16], "interpolation": "linear", "normalisation": "none", "percentiles": [0.5, 99.5]}
    with pytest.raises(ConfigError, match=r"preprocess\.crop"):
        PreprocessSettings.from_config({**config, "crop": bad})
