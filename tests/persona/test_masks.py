"""The ROI box: sizes, central placement, origins and seeded random positions."""

from __future__ import annotations

import numpy as np
import pytest

from radpersona.errors import ConfigError
from radpersona.persona.masks import box_mask, box_size, box_slices, random_box_origin

SHAPE = (8, 16, 16)
BOX = (0.5, 0.3, 0.5)


def test_central_box_size_and_position() -> None:
    # sizes round(0.5*8)=4, round(0.3*16)=5, round(0.5*16)=8; starts (8-4)//2, (16-5)//2, (16-8)//2
    assert box_size(SHAPE, BOX) == (4, 5, 8)
    assert box_slices(SHAPE, BOX) == (slice(2, 6), slice(5, 10), slice(4, 12))
    mask = box_mask(SHAPE, BOX)
    assert mask.dtype == bool and mask.shape == SHAPE and mask.sum() == 4 * 5 * 8
    assert mask[2:6, 5:10, 4:12].all()


def test_box_is_at_least_one_voxel_and_at_most_the_volume() -> None:
    assert box_size(SHAPE, (0.01, 0.01, 1.0)) == (1, 1, 16)


def test_origin_places_the_box_and_is_checked() -> None:
    assert box_slices(SHAPE, BOX, origin=(0, 11, 8)) == (slice(0, 4), slice(11, 16), slice(8, 16))
    with pytest.raises(ConfigError, match="height"):
        box_slices(SHAPE, BOX, origin=(0, 12, 0))
    with pytest.raises(ConfigError, match="depth"):
        box_slices(SHAPE, BOX, origin=(-1, 0, 0))


@pytest.mark.parametrize("box", [(0.5, 0.3), (0.0, 0.3, 0.5), (0.5, 1.2, 0.5), (0.5, "a", 0.5)])
def test_invalid_box_fractions_are_refused(box: tuple) -> None:
    with pytest.raises(ConfigError, match="persona.box"):
        box_size(SHAPE, box)


def test_random_origins_are_seeded_and_cover_every_valid_position() -> None:
    draws = [random_box_origin(SHAPE, BOX, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    origins = np.array([random_box_origin(SHAPE, BOX, rng) for _ in range(2000)])
    # valid starts: depth 0..4, height 0..11, width 0..8 — all reached, none beyond
    assert [sorted(set(origins[:, a])) for a in range(3)] == [list(range(5)), list(range(12)), list(range(9))]
