"""Shape primitives of the analytic knee: signed distances, occupancy, bounding spheres, evaluation grids.

Every shape is an (approximate) signed-distance function ``sd`` (mm, negative inside) evaluated with
vectorised float32 numpy in the knee frame. :func:`occupancy` turns a distance into tissue
occupancy with a compactly supported smoothstep over ``width`` mm. A local shape is evaluated only
inside the index-space block of a sphere enclosing its non-zero occupancy (:meth:`Grid.block`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

EDGE_MM = 1.0
"""Width (mm) of the smoothstep edge of every tissue boundary."""

Block = tuple[slice, slice, slice]
"""An array block (slices, rows, cols)."""

FULL: Block = (slice(None), slice(None), slice(None))
"""The whole array."""


def occupancy(sd: np.ndarray, width: float = EDGE_MM) -> np.ndarray:
    """Occupancy in [0, 1] from a signed distance (negative inside), smoothstep over ``width`` mm.

    ``t = clip(1/2 - sd / width, 0, 1)``, occupancy ``t^2 (3 - 2 t)``: compactly supported, exactly 1
    for ``sd <= -width/2`` and exactly 0 for ``sd >= width/2``.
    """
    t = np.clip(0.5 - sd / np.float32(width), 0.0, 1.0)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def ellipsoid_sd(x: np.ndarray, y: np.ndarray, z: np.ndarray, c: tuple[float, ...], r: tuple[float, ...]) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid: Quilez's bound ``k0 (k0 - 1) / k1``.

    ``k0 = |d / r|``, ``k1 = |d / r^2|`` with ``d`` the offset from the centre ``c``.
    """
    dx, dy, dz = (x - np.float32(c[0])), (y - np.float32(c[1])), (z - np.float32(c[2]))
    k0 = np.sqrt((dx / r[0]) ** 2 + (dy / r[1]) ** 2 + (dz / r[2]) ** 2)
    k1 = np.sqrt((dx / r[0] ** 2) ** 2 + (dy / r[1] ** 2) ** 2 + (dz / r[2] ** 2) ** 2)
    return k0 * (k0 - np.float32(1.0)) / np.maximum(k1, np.float32(1e-6))


def ellipse2d_sd(x: np.ndarray, y: np.ndarray, c: tuple[float, float], rx: Any, ry: Any) -> np.ndarray:
    """Approximate signed distance to an elliptic cylinder along z: ``(|d / r| - 1) min(rx, ry)``.

    The radii may vary per point (a tapering cylinder).
    """
    dx, dy = x - np.float32(c[0]), y - np.float32(c[1])
    k = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    return (k - np.float32(1.0)) * np.minimum(rx, ry)


def capsule_sd(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, a: tuple[float, ...], b: tuple[float, ...], radius: float
) -> np.ndarray:
    """Exact signed distance to a capsule: distance to the segment ``a``-``b`` minus ``radius``."""
    ba = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    bb = float(ba @ ba)
    px, py, pz = x - np.float32(a[0]), y - np.float32(a[1]), z - np.float32(a[2])
    h = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) / np.float32(bb), 0.0, 1.0)
    return np.sqrt((px - h * ba[0]) ** 2 + (py - h * ba[1]) ** 2 + (pz - h * ba[2]) ** 2) - np.float32(radius)


def smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union of two distance fields) with blend radius ``k`` mm.

    ``h = clip(1/2 + (b - a) / 2k, 0, 1)``, ``b (1 - h) + a h - k h (1 - h)``.
    """
    h = np.clip(0.5 + 0.5 * (b - a) / np.float32(k), 0.0, 1.0)
    return b * (1 - h) + a * h - np.float32(k) * h * (1 - h)


def wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Absolute angle difference wrapped to [0, pi]."""
    return np.abs((angle + np.float32(math.pi)) % np.float32(2 * math.pi) - np.float32(math.pi))


def ellipsoid_bound(c: Any, r: Any, edge: float = EDGE_MM) -> tuple[Any, float]:
    """Sphere outside which :func:`ellipsoid_sd` ``>= edge / 2`` (no occupancy): ``R + (edge/2) R / r_min + 1``."""
    big, small = max(r), min(r)
    return c, big + 0.5 * edge * big / small + 1.0


def capsule_bound(a: Any, b: Any, radius: float, edge: float = EDGE_MM) -> tuple[Any, float]:
    """Sphere enclosing a capsule's non-zero occupancy."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a + b) / 2, float(np.linalg.norm(b - a)) / 2 + radius + 0.5 * edge + 0.5


class Grid:
    """Knee-frame coordinates of a view's evaluation grid, linear in the voxel index.

    ``q(index) = offset + linear @ index``; the columns of ``linear`` are orthogonal (a scaled
    rotation of the view's axes), which makes the index-space bounding box of a sphere exact.
    """

    def __init__(self, shape: tuple[int, int, int], linear: np.ndarray, offset: np.ndarray) -> None:
        self.shape = shape
        self.linear, self.offset = linear, offset
        self.inverse = np.linalg.inv(linear)
        self.step = np.linalg.norm(linear, axis=0)  # mm per index step along each array axis
        idx = [
            np.arange(n, dtype=np.float64).reshape([-1 if k == a else 1 for k in range(3)]) for a, n in enumerate(shape)
        ]
        self.x, self.y, self.z = (
            (offset[i] + linear[i, 0] * idx[0] + linear[i, 1] * idx[1] + linear[i, 2] * idx[2]).astype(np.float32)
            for i in range(3)
        )

    def block(self, *spheres: tuple[Any, float]) -> Block | None:
        """Array block covering the union of spheres ``(centre, radius)`` (knee mm); None if outside."""
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for centre, radius in spheres:
            c = self.inverse @ (np.asarray(centre, dtype=np.float64) - self.offset)
            half = float(radius) / self.step
            lo, hi = np.minimum(lo, c - half), np.maximum(hi, c + half)
        start = np.maximum(np.floor(lo), 0).astype(int)
        stop = np.minimum(np.ceil(hi) + 1, self.shape).astype(int)
        if np.any(stop <= start):
            return None
        return (slice(start[0], stop[0]), slice(start[1], stop[1]), slice(start[2], stop[2]))

    def at(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinates (views, no copy) inside ``block``."""
        return self.x[block], self.y[block], self.z[block]
