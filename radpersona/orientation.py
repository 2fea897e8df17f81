"""Orientation of the three views: the direction in which each array axis runs.

Volumes are arrays ``(slices, rows, cols)``. :data:`VIEW_AXES` gives, per view, the world direction
(unit vector) of the slice, row and column axes, in a knee frame with x lateral, y anterior and
z superior: sagittal slices are stacked medial to lateral, rows run superior to inferior and columns
anterior to posterior; coronal slices posterior to anterior, rows superior to inferior, columns medial
to lateral; axial slices inferior to superior, rows anterior to posterior, columns medial to lateral.

This is the synthetic cohort's scanner convention (:mod:`radpersona.synthetic` samples its knees
along these axes) and the MRNet convention as read from its volumes; the explanation pages name patch
positions with it (:mod:`radpersona.explain.anatomy`). Dependency-free, so that explaining a real
scan does not load the synthetic generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

Vector = tuple[float, float, float]

VIEW_AXES: Mapping[str, tuple[Vector, Vector, Vector]] = MappingProxyType(
    {
        "sagittal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
        "coronal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0)),
        "axial": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
    }
)
"""Per view: (slice direction, row direction, column direction) as world unit vectors."""
