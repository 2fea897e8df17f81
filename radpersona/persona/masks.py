"""The ROI sampling domain: a box that the healthy-persona DDPM inpaints.

The box is given as fractions of the volume's depth, height and width (``persona.box``, default
``[0.5, 0.3, 0.5]`` as in the paper, section 5.2.1). Its size along an axis is ``round(frac * dim)``,
at least one voxel; it is central unless an origin (its first voxel) is given. Training may also draw
boxes of the same size at random positions (``persona.train_masks``) so the model learns to inpaint
from varied context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radpersona.errors import ConfigError
from radpersona.settings.persona import box_size as _box_voxels

__all__ = ["box_size", "box_slices", "box_mask", "random_box_origin"]

Shape3 = tuple[int, int, int]


def _check_shape(shape: Sequence[int]) -> Shape3:
    if len(shape) != 3 or any(int(s) != s or s < 1 for s in shape):
        raise ConfigError(f"volume shape must be three positive integers (depth, height, width), not {tuple(shape)!r}")
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def box_size(shape: Sequence[int], box: Sequence[float]) -> Shape3:
    """Box size in voxels: ``max(1, round(frac * dim))`` per axis.

    Args:
        shape: volume shape (depth, height, width).
        box: fraction of depth, height and width, each in (0, 1] (``persona.box``).

    Raises:
        ConfigError: ``box`` is not three fractions in (0, 1].
    """
    dims = _check_shape(shape)
    if len(box) != 3:
        raise ConfigError(f"persona.box must have three fractions (depth, height, width), not {list(box)!r}")
    for axis, frac in zip(("depth", "height", "width"), box):
        if not (isinstance(frac, (int, float)) and 0.0 < float(frac) <= 1.0):
            raise ConfigError(f"persona.box {axis} fraction must be in (0, 1], not {frac!r}")
    return _box_voxels(dims, box)


def box_slices(
    shape: Sequence[int], box: Sequence[float], *, origin: Sequence[int] | None = None
) -> tuple[slice, slice, slice]:
    """Slices of the box inside a volume of ``shape``.

    Args:
        shape: volume shape (depth, height, width).
        box: fractions of depth, height and width.
        origin: first voxel of the box; ``None`` centres it (``(dim - size) // 2`` per axis).

    Raises:
        ConfigError: invalid ``box``, or an ``origin`` that puts the box outside the volume.
    """
    dims = _check_shape(shape)
    size = box_size(dims, box)
    if origin is None:
        start = tuple((d - s) // 2 for d, s in zip(dims, size))
    else:
        if len(origin) != 3:
            raise ConfigError(f"box origin must have three indices, not {tuple(origin)!r}")
        start = tuple(int(o) for o in origin)
        for axis, o, s, d in zip(("depth", "height", "width"), start, size, dims):
            if o < 0 or o + s > d:
                raise ConfigError(
                    f"box origin {tuple(origin)!r} puts the {axis} extent [{o}, {o + s}) outside the volume of size {d}"
                )
    return (
        slice(start[0], start[0] + size[0]),
        slice(start[1], start[1] + size[1]),
        slice(start[2], start[2] + size[2]),
    )


def box_mask(shape: Sequence[int], box: Sequence[float], *, origin: Sequence[int] | None = None) -> np.ndarray:
    """Boolean mask of ``shape``, True inside the box (the region that is inpainted)."""
    mask = np.zeros(_check_shape(shape), dtype=bool)
    mask[box_slices(shape, box, origin=origin)] = True
    return mask


def random_box_origin(shape: Sequence[int], box: Sequence[float], rng: np.random.Generator) -> Shape3:
    """Draw a box origin uniformly among the positions where the whole box fits.

    Args:
        shape: volume shape (depth, height, width).
        box: fractions of depth, height and width.
        rng: the caller's seeded generator (three ``integers`` draws).
    """
    dims = _check_shape(shape)
    size = box_size(dims, box)
    return tuple(int(rng.integers(0, d - s + 1)) for d, s in zip(dims, size))  # type: ignore[return-value]
