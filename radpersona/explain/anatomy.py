"""Patch positions in anatomical words ("sagittal, posterior-medial, inferior").

A patch ``(i, j, k)`` of the ``n x n x n`` grid over the persona box is indexed along the volume's
array axes: ``i`` along slices, ``j`` along rows, ``k`` along columns. Which anatomical direction an
array axis runs along depends on the view; :data:`VIEW_DIRECTIONS` gives, per view and array axis,
the knee-frame direction (x lateral, y anterior, z superior) in which the index *increases*.

Orientation assumption: the axes are those of :data:`radpersona.orientation.VIEW_AXES` (the
synthetic cohort's scanner convention, the MRNet convention as read from its volumes: sagittal
slices stacked across the knee, rows top to bottom = superior to inferior, columns anterior to
posterior; coronal slices posterior to anterior, columns medial to lateral; axial slices inferior
to superior, rows anterior to posterior). MRNet records neither laterality (left or right knee) nor
the slice direction, so on MRNet data medial/lateral may be mirrored for some knees, and the
registration to a reference removes only small rotations. The page states this assumption.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from radpersona.orientation import VIEW_AXES

#: Knee-frame axis -> (word at the negative end, word at the positive end, word for the centre).
AXIS_WORDS: Mapping[int, tuple[str, str, str]] = MappingProxyType(
    {
        0: ("medial", "lateral", "central"),
        1: ("posterior", "anterior", "central"),
        2: ("inferior", "superior", "middle"),
    }
)


def _directions(axes: Mapping[str, Sequence[Sequence[float]]]) -> dict[str, tuple[tuple[int, int], ...]]:
    out: dict[str, tuple[tuple[int, int], ...]] = {}
    for view, vectors in axes.items():
        per_axis = []
        for vector in vectors:
            v = np.asarray(vector, dtype=np.float64)
            dominant = int(np.argmax(np.abs(v)))
            per_axis.append((dominant, 1 if v[dominant] > 0 else -1))
        if sorted(a for a, _ in per_axis) != [0, 1, 2]:
            raise ValueError(f"view {view!r}: array axes {vectors} do not span three different knee directions")
        out[view] = tuple(per_axis)
    return out


#: view -> per array axis (slices, rows, cols): (knee-frame axis 0=x/1=y/2=z, +1 or -1).
VIEW_DIRECTIONS: Mapping[str, tuple[tuple[int, int], ...]] = MappingProxyType(_directions(VIEW_AXES))

ORIENTATION_NOTE = (
    "Patch positions assume the synthetic cohort's (MRNet-style) orientation: sagittal rows run "
    "superior to inferior and columns anterior to posterior, slices medial to lateral; coronal slices "
    "posterior to anterior; axial slices inferior to superior. MRNet does not record laterality, so on "
    "MRNet data medial and lateral may be mirrored."
)


def axis_word(view: str, axis: int, index: int, n: int) -> tuple[int, str]:
    """Knee-frame axis and the word for patch ``index`` of ``n`` along array ``axis`` of ``view``.

    Raises:
        ValueError: unknown view, axis outside 0..2, or ``index`` outside ``0..n-1``.
    """
    if view not in VIEW_DIRECTIONS:
        raise ValueError(f"unknown view {view!r}; known: {sorted(VIEW_DIRECTIONS)}")
    if axis not in (0, 1, 2) or not 0 <= index < n:
        raise ValueError(f"view {view!r}: patch index {index} on axis {axis} is outside a grid of {n}")
    knee_axis, sign = VIEW_DIRECTIONS[view][axis]
    low, high, centre = AXIS_WORDS[knee_axis]
    if sign < 0:
        low, high = high, low
    position = index - (n - 1) / 2.0
    if n == 1 or position == 0:
        return knee_axis, centre
    return knee_axis, (low if position < 0 else high)


def patch_position(view: str, i: int, j: int, k: int, n: int) -> str:
    """The patch's position in words, e.g. ``"sagittal, posterior-medial, inferior"``.

    In-plane words (anterior/posterior, then medial/lateral) come first, then the height
    (superior/middle/inferior); ``n == 1`` gives ``"{view}, whole box"``.
    """
    if n == 1:
        if (i, j, k) != (0, 0, 0):
            raise ValueError(f"view {view!r}: patch ({i}, {j}, {k}) is outside a grid of 1")
        return f"{view}, whole box"
    words = dict(axis_word(view, axis, index, n) for axis, index in enumerate((i, j, k)))
    in_plane = [words[1], words[0]]
    non_central = [w for w in in_plane if w != "central"]
    plane = "-".join(non_central) if non_central else "central"
    return f"{view}, {plane}, {words[2]}"
