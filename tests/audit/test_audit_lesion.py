"""Lesion size in voxels and mm, and the lesion's share of the persona box and its patches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from radpersona.audit import box_share, lesion_size
from radpersona.errors import InputDataError


def test_lesion_size_of_a_block_with_known_geometry():
    fraction = np.zeros((9, 20, 20), dtype=np.float32)
    fraction[2:5, 6:11, 4:11] = 1.0  # 3 x 5 x 7 voxels
    fraction[0, 0, 0] = 0.4  # partial voxel: counts in the volume, not as a lesion voxel
    size = lesion_size(fraction, (2.0, 0.5, 0.5))
    assert size.n_voxels == 105
    voxel = 2.0 * 0.5 * 0.5
    assert size.volume_mm3 == pytest.approx((105 + 0.4) * voxel)
    assert size.equivalent_diameter_mm == pytest.approx((6 * size.volume_mm3 / math.pi) ** (1 / 3))
    assert size.extent_mm == pytest.approx((6.0, 2.5, 3.5))
    # 5 voxels of 0.5 mm across the thinnest direction (the partial voxel does not count)
    assert size.thickness_mm == pytest.approx(2.5)


def test_lesion_size_of_a_thin_sheet_and_of_nothing():
    sheet = np.zeros((5, 12, 12))
    sheet[1:4, 6, 2:10] = 1.0
    size = lesion_size(sheet, (3.0, 1.0, 1.0))
    assert size.n_voxels == 24 and size.thickness_mm == pytest.approx(1.0)
    assert size.extent_mm == pytest.approx((9.0, 1.0, 8.0))
    # thin along the coarse axis: one 3 mm slice of a 1 mm in-plane grid
    slab = np.zeros((5, 12, 12))
    slab[2, 2:10, 2:10] = 1.0
    assert lesion_size(slab, (3.0, 1.0, 1.0)).thickness_mm == pytest.approx(3.0)
    slab[1:4, 2:10, 2:10] = 1.0  # three slices: 9 mm thick, 8 mm across in-plane
    assert lesion_size(slab, (3.0, 1.0, 1.0)).thickness_mm == pytest.approx(8.0)
    # an oblique band, three slices high, one voxel wide along the in-plane diagonal of a 1 mm grid:
    # its staircase has the second moment of a 1 mm wide slab across the diagonal
    band = np.zeros((5, 30, 30))
    for i in range(30):
        band[1:4, i, i] = 1.0
    assert lesion_size(band, (1.0, 1.0, 1.0)).thickness_mm == pytest.approx(1.0, rel=1e-6)
    empty = lesion_size(np.zeros((4, 4, 4)), (1.0, 1.0, 1.0))
    assert empty.n_voxels == 0 and empty.volume_mm3 == 0 and empty.extent_mm == (0.0, 0.0, 0.0)
    with pytest.raises(InputDataError, match="case '0042', view 'sagittal'"):
        lesion_size(np.full((2, 2, 2), 1.5), (1, 1, 1), case="0042", view="sagittal")
    with pytest.raises(InputDataError, match="spacing"):
        lesion_size(sheet, (1.0, 0.0, 1.0))


def test_box_share_and_patches():
    fraction = np.zeros((20, 20, 20), dtype=np.float32)
    fraction[6:8, 6:8, 6:8] = 1.0  # in the box [5, 15)^3, patch (0, 0, 0) of grid 2 (edges 5, 10, 15)
    fraction[0:2, 0:2, 0:2] = 1.0  # outside the box, as large
    share = box_share(fraction, (0.5, 0.5, 0.5), grids=(2, 3))
    assert share.share == pytest.approx(0.5)
    assert share.n_voxels_in_box == 8
    assert share.patches == {2: [(0, 0, 0)], 3: [(0, 0, 0)]}
    assert share.main_patch == {2: (0, 0, 0), 3: (0, 0, 0)}
    assert share.patch_mass[2] == {(0, 0, 0): pytest.approx(1.0)}

    spread = np.zeros((20, 20, 20), dtype=np.float32)
    spread[6:8, 6:8, 8:13] = 1.0  # columns 8, 9 in patch k=0; 10, 11, 12 in k=1 (grid 2)
    spread[6, 6, 14] = 0.3  # partial voxel: mass, but no lesion voxel
    result = box_share(spread, (0.5, 0.5, 0.5), grids=(2,))
    assert result.share == pytest.approx(1.0)
    assert result.patches[2] == [(0, 0, 0), (0, 0, 1)]
    assert result.main_patch[2] == (0, 0, 1)
    assert result.patch_mass[2][(0, 0, 0)] == pytest.approx(8 / 20.3)

    nothing = box_share(np.zeros((20, 20, 20)), (0.5, 0.5, 0.5))
    assert math.isnan(nothing.share) and nothing.main_patch == {2: None, 3: None} and nothing.n_voxels_in_box == 0
