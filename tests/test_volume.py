"""NIfTI I/O: round trip with spacing and description; non-finite voxels are refused."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.errors import InputDataError
from radpersona.volume import read_header, read_volume, write_volume


def test_round_trip_keeps_array_spacing_and_description(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    write_volume(tmp_path / "v.nii.gz", array, (3.0, 0.5, 0.25), description={"seed": 7, "sampler": "ddim"})
    back, spacing = read_volume(tmp_path / "v.nii.gz")
    np.testing.assert_array_equal(back, array)
    assert spacing == (3.0, 0.5, 0.25)
    assert read_header(tmp_path / "v.nii.gz")["descrip"] == '{"seed":7,"sampler":"ddim"}'


def test_non_finite_voxels_are_refused_and_nothing_is_written(tmp_path):
    array = np.zeros((2, 2, 2), np.float32)
    array[1, 0, 1] = np.inf
    with pytest.raises(InputDataError, match=r"1 non-finite voxels, first at index \(1, 0, 1\)"):
        write_volume(tmp_path / "bad.nii.gz", array)
    assert list(tmp_path.iterdir()) == []
