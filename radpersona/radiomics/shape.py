"""3-D shape features, PyRadiomics 3.1 definitions, from its marching-cubes mesh.

The mesh is built as PyRadiomics' C extension ``cshape`` builds it: the ROI mask (cropped to its
bounding box) is padded with one voxel of background, every 2x2x2 cube gets an 8-bit index from its
corners (:mod:`radpersona.radiomics._tables`), vertices sit at edge midpoints, the volume V is the sum of
signed tetrahedra (a x b) . c / 6 over the triangles (sign flipped for complemented cube indices), the
surface A the sum of triangle areas |(a - c) x (b - c)| / 2, all in mm via the spacing. Diameters are
the largest vertex-to-vertex distances (in 3-D, and between vertices sharing a slice, row or column
coordinate). Axis lengths use the eigenvalues lambda_major >= lambda_minor >= lambda_least of the
covariance of the physical ROI voxel coordinates. Marching cubes run batched with per-cube-index volume and
area tables (numpy on the CPU, torch on other devices); 2-D diameters are exact maxima over pairs of grid
lines of vertices, the 3-D diameter a maximum over line-extreme vertices, both on the host; covariances come
from exact integer moments (PyRadiomics' own arithmetic for near-degenerate ROIs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from radpersona.radiomics._batch import RoiBatch, group_sizes
from radpersona.radiomics._tables import CORNERS, EDGE_MIDPOINTS, TRIANGLES

NAN_REASON = "undefined for this ROI (degenerate shape)"


@dataclass
class ShapeCoefficients:
    """Mesh volume and surface, voxel count, diameters and covariance eigenvalues, each (B,) or (B, k)."""

    volume: torch.Tensor
    surface: torch.Tensor
    n_voxels: torch.Tensor
    voxel_volume: float
    diameters: torch.Tensor  # (B, 4): slice, column, row, 3-D
    eigenvalues: torch.Tensor  # (B, 3) ascending


@lru_cache(maxsize=32)
def _config_tables(spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cube index (0..127): constant volume term K0, linear volume term K1 (3,) and surface area.

    A triangle of a cube at origin o (mm) has vertices o + u, o + v, o + w (u, v, w its edge midpoints
    in mm); (o + u) x (o + v) . (o + w) = det(u, v, w) + o . (v x w + w x u + u x v), since determinants
    with two columns o vanish. Areas do not depend on o. Summed over the cube's triangles.
    """
    sp = np.asarray(spacing, dtype=np.float64)
    mid = np.asarray(EDGE_MIDPOINTS, dtype=np.float64) * sp
    k0 = np.zeros(128)
    k1 = np.zeros((128, 3))
    area = np.zeros(128)
    for idx, tris in enumerate(TRIANGLES):
        for tri in tris:
            u, v, w = mid[list(tri)]
            k0[idx] += np.dot(np.cross(u, v), w)
            k1[idx] += np.cross(v, w) + np.cross(w, u) + np.cross(u, v)
            area[idx] += 0.5 * np.linalg.norm(np.cross(u - w, v - w))
    return k0, k1, area


@lru_cache(maxsize=32)
def cube_tables(spacing: tuple[float, float, float]) -> np.ndarray:
    """(5, 256) per-cube-index terms: sign K0, sign K1 (slice, row, col) and the surface area, for every index
    0..255 (an index >= 128 uses the triangles of 255 - index with the opposite sign; indices 0 and 255 hold no
    triangle). A cube with index idx at origin o (mm) adds (row0 + o . rows1-3) / 6 to the volume and row 4 to
    the surface."""
    k0, k1, area = _config_tables(spacing)
    out = np.zeros((5, 256))
    low = np.arange(128)
    out[0, low], out[1:4, low], out[4, low] = k0, k1.T, area
    out[0, 255 - low], out[1:4, 255 - low], out[4, 255 - low] = -k0, -k1.T, area
    return out


def cube_index(mask: np.ndarray) -> np.ndarray:
    """(B, Z-1, Y-1, X-1) uint8 marching-cubes index of every 2x2x2 cube of (B, Z, Y, X) boolean masks (bit k set
    when corner ``CORNERS[k]`` is inside), built one axis at a time: bits (0, 1) = (x0, x1) on row y0, (2, 3) =
    (x1, x0) on row y1, and bits 4-7 repeat bits 0-3 on slice z1."""
    m = mask.view(np.uint8)
    row = m[..., :-1] | (m[..., 1:] << 1)  # x0 -> bit 0, x1 -> bit 1
    row_reversed = m[..., 1:] | (m[..., :-1] << 1)  # x1 -> bit 0, x0 -> bit 1
    square = row[:, :, :-1] | (row_reversed[:, :, 1:] << 2)
    return square[:, :-1] | (square[:, 1:] << 4)


def mesh_volume_and_surface_numpy(mask: np.ndarray, spacing: tuple[float, float, float]) -> tuple[np.ndarray, ...]:
    """Signed-tetrahedra volume and triangle surface (each (B,)) of the marching-cubes mesh of padded boolean masks
    (B, Z, Y, X): V = (1/6) sum_cubes (K0[idx] + o . K1[idx]), A = sum_cubes area[idx] (:func:`cube_tables`), the
    origin terms summed per slice, row and column first."""
    index = cube_index(mask).astype(np.intp)  # once, rather than in each take
    tables = cube_tables(tuple(spacing))
    _, nz, ny, nx = index.shape
    oz, oy, ox = (np.arange(n) * s for n, s in zip((nz, ny, nx), spacing))
    volume = np.take(tables[0], index).sum((1, 2, 3))
    volume += np.take(tables[1], index).sum((2, 3)) @ oz
    volume += np.take(tables[2], index).sum((1, 3)) @ oy
    volume += np.take(tables[3], index).sum((1, 2)) @ ox
    return volume / 6.0, np.take(tables[4], index).sum((1, 2, 3))


def mesh_volume_and_surface(mask: torch.Tensor, spacing: tuple[float, float, float], dtype: torch.dtype):
    """Torch version of :func:`mesh_volume_and_surface_numpy` for (B, Z, Y, X) boolean masks on any device;
    returns (volume, surface), each (B,) of ``dtype``."""
    device = mask.device
    m = mask.to(torch.int32)
    nb, nz, ny, nx = m.shape
    index = torch.zeros((nb, nz - 1, ny - 1, nx - 1), dtype=torch.int32, device=device)
    for bit, (cz, cy, cx) in enumerate(CORNERS):
        index |= m[:, cz : cz + nz - 1, cy : cy + ny - 1, cx : cx + nx - 1] << bit
    index = index.long()
    tables = torch.as_tensor(cube_tables(tuple(spacing)), dtype=dtype, device=device)
    oz, oy, ox = (torch.arange(n - 1, dtype=dtype, device=device) * s for n, s in zip((nz, ny, nx), spacing))
    volume = tables[0][index].sum((1, 2, 3))
    volume = volume + tables[1][index].sum((2, 3)) @ oz
    volume = volume + tables[2][index].sum((1, 3)) @ oy
    volume = volume + tables[3][index].sum((1, 2)) @ ox
    return volume / 6.0, tables[4][index].sum((1, 2, 3))


#: Extent sentinels of a grid line without vertices (lo, hi); differences of sentinels stay far below zero.
_EMPTY = 1 << 20


def mesh_vertices(padded: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(item, z2, y2, x2) doubled integer coordinates of the mesh vertices of (B, Z, Y, X) padded boolean masks.

    Vertices are midpoints of edges between differing voxels: (2z, 2y, 2x + 1) for an x-edge, (2z, 2y + 1, 2x) for
    a y-edge, (2z + 1, 2y, 2x) for a z-edge (each listed once; PyRadiomics lists them once per cube, which changes
    no diameter).
    """
    parts = []
    for axis in (1, 2, 3):
        hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(4))
        lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(4))
        edges = padded[hi] != padded[lo]
        coords = list(np.unravel_index(np.flatnonzero(edges), edges.shape))
        for a in (1, 2, 3):
            coords[a] = 2 * coords[a] + (a == axis)
        parts.append(coords)
    return tuple(np.concatenate([part[a] for part in parts]) for a in range(4))  # type: ignore[return-value]


def line_extents(
    vertices: tuple[np.ndarray, ...], shape: tuple[int, int, int, int]
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Lowest and highest coordinate of the vertices on every grid line of the doubled grid ``shape`` (B, Z2, Y2,
    X2): for lines along x (indexed by (z2, y2)), along y ((z2, x2)) and along z ((y2, x2)), (lo, hi) each (B, n1, n2)
    int32, +_EMPTY / -_EMPTY on lines without vertices; and which vertices are extreme (lo or hi) on all three of
    their lines."""
    b, z, y, x = vertices
    nb, z2, y2, x2 = shape
    out = {}
    extreme = np.ones(len(b), dtype=bool)
    for name, (i1, n1), (i2, n2), coord in (
        ("x", (z, z2), (y, y2), x),
        ("y", (z, z2), (x, x2), y),
        ("z", (y, y2), (x, x2), z),
    ):
        line = (b * n1 + i1) * n2 + i2
        lo = np.full(nb * n1 * n2, _EMPTY, dtype=np.int32)
        hi = np.full(nb * n1 * n2, -_EMPTY, dtype=np.int32)
        coord = coord.astype(np.int32)  # the target's dtype (ufunc.at is slow when it has to cast)
        np.minimum.at(lo, line, coord)
        np.maximum.at(hi, line, coord)
        extreme &= (np.take(lo, line) == coord) | (np.take(hi, line) == coord)
        out[name] = (lo.reshape(nb, n1, n2), hi.reshape(nb, n1, n2))
    return out, extreme


#: Upper bound on the elements of one (items, L, L) array of line-pair gaps in :func:`_plane_max`.
_GAP_BUDGET = 4_000_000
#: Most lines per plane for which :func:`_plane_max` takes all line offsets at once.
_ALL_OFFSETS_MAX = 40
#: Per number of lines L: the L x L line pairs (a, c) ordered by offset |a - c|, and where each offset begins.
_OFFSET_ORDER: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _offset_order(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _OFFSET_ORDER:
        line = np.arange(n)
        offset = np.abs(line[:, None] - line[None, :]).reshape(-1)
        order = np.argsort(offset, kind="stable")
        _OFFSET_ORDER[n] = (order, np.searchsorted(offset[order], np.arange(n)))
    return _OFFSET_ORDER[n]


def _plane_max(lo: np.ndarray, hi: np.ndarray, step: float, along: float) -> np.ndarray:
    """Largest squared distance (mm^2) between vertices of lines lying in one plane, per item.

    ``lo``, ``hi``: (B, P, L) extents along the lines (doubled coordinates, sentinels for empty lines) of the L
    lines in each of P planes, ``step`` the distance (mm) between neighbouring lines and ``along`` half the spacing
    along them. Between lines a and c the farthest vertices are max(hi_a - lo_c, hi_c - lo_a) apart along the
    lines (>= 0 for two nonempty lines), so the answer is the maximum over line offsets k of
    (k step)^2 + along^2 g_k |g_k|, g_k the largest hi_a - lo_c over the line pairs |a - c| = k of one plane
    (hugely negative, so that the term never wins, when every such pair holds an empty line). The gaps of all
    line pairs are reduced over the planes into one (B, L, L) array (items in chunks of bounded size), then to g_k
    per offset in one ``maximum.reduceat``; with more than _ALL_OFFSETS_MAX lines (large ROIs, where a few offsets
    usually settle the maximum) :func:`_plane_max_pruned` goes offset by offset instead.
    """
    nb, n_planes, n = lo.shape
    if n > _ALL_OFFSETS_MAX:
        return _plane_max_pruned(lo, hi, step, along)
    order, bounds = _offset_order(n)
    square = (np.arange(n, dtype=np.float64) * step) ** 2
    best = np.zeros(nb)
    chunk = max(1, _GAP_BUDGET // (n * n))
    for b0 in range(0, nb, chunk):
        b1 = min(nb, b0 + chunk)
        gaps = hi[b0:b1, 0, :, None] - lo[b0:b1, 0, None, :]  # (items, a, c)
        for q in range(1, n_planes):
            np.maximum(gaps, hi[b0:b1, q, :, None] - lo[b0:b1, q, None, :], out=gaps)
        gap = np.maximum.reduceat(gaps.reshape(b1 - b0, n * n)[:, order], bounds, axis=1).astype(np.float64)
        best[b0:b1] = np.maximum((square + along * along * gap * np.abs(gap)).max(1), 0.0)
    return best


def _plane_max_pruned(lo: np.ndarray, hi: np.ndarray, step: float, along: float) -> np.ndarray:
    """:func:`_plane_max` offset by offset, from the largest, stopping once no item can improve (for many lines).

    Between lines a and b the farthest vertices are max(hi_a - lo_b, hi_b - lo_a) apart along the
    lines, so the answer is the maximum over line offsets k of (k step)^2 + along^2 g_k |g_k|, g_k the largest
    hi_a - lo_b over line pairs b = a - k or a + k (g_k is hugely negative, so the term never wins, when every such
    pair holds an empty line).
    """
    nb, n = lo.shape[0], lo.shape[2]
    best = np.full(nb, -np.inf)
    # offsets from the largest down; once no item can beat its best at offset k (gap <= the item's largest
    # hi - lo over all its lines, and no pair at all beyond the spread of its nonempty lines), no smaller offset can
    span = np.maximum(hi.reshape(nb, -1).max(1) - lo.reshape(nb, -1).min(1), 0).astype(np.float64)
    nonempty = (hi != -_EMPTY).any(1)  # (B, L)
    spread = np.where(nonempty.any(1), n - 1 - nonempty[:, ::-1].argmax(1) - nonempty.argmax(1), -1)
    for k in range(int(spread.max(initial=-1)), -1, -1):
        reach = np.minimum(spread, k)  # the largest offset still to come with a pair of nonempty lines
        bound = np.where(reach >= 0, (reach * step) ** 2 + along * along * span * span, -np.inf)
        if (bound <= best).all():
            break
        forward = (hi[:, :, k:] - lo[:, :, : n - k]).reshape(nb, -1).max(1)
        backward = (hi[:, :, : n - k] - lo[:, :, k:]).reshape(nb, -1).max(1)
        gap = np.maximum(forward, backward).astype(np.float64)
        best = np.maximum(best, (k * step) ** 2 + along * along * gap * np.abs(gap))
    return np.maximum(best, 0.0)


def _max_3d(vertices: tuple[np.ndarray, ...], keep: np.ndarray, half: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Largest vertex-to-vertex distance (mm) per item, over the vertices ``keep`` that are extreme on their x-, y-
    and z-lines alike (a superset of the convex hull's vertices, so the maximum is unchanged).

    ``lower`` (B,) is a distance between two vertices of each item (a lower bound of the answer): a vertex p with
    |p - c| + R < lower, c the centre of the item's candidates' bounding box and R their largest distance from it,
    is farther than ``lower`` from no vertex and is dropped before the pairwise search.
    """
    nb = len(lower)
    b, z, y, x = (np.compress(keep, v) for v in vertices)
    order = np.argsort(b, kind="stable")  # grouped by item
    b = b[order]
    phys = np.stack([z[order], y[order], x[order]], axis=1) * half
    bounds = np.searchsorted(b, np.arange(nb + 1))
    centre = (np.maximum.reduceat(phys, bounds[:-1]) + np.minimum.reduceat(phys, bounds[:-1])) / 2
    radius = np.sqrt(((phys - centre[b]) ** 2).sum(1))
    reach = np.maximum.reduceat(radius, bounds[:-1])  # R per item
    near = radius + reach[b] >= lower[b] * (1 - 1e-12)
    b, phys = np.compress(near, b), np.compress(near, phys, axis=0)
    bounds = np.searchsorted(b, np.arange(nb + 1))
    counts = np.diff(bounds)
    out = np.zeros(nb)
    # items grouped by candidate count (ratio 0.8), each group padded to its largest count by repeating the
    # item's first vertex (which changes no maximum); the farthest pair per item is found from the Gram
    # matrix (|a|^2 + |b|^2 - 2 a.b, rounding ~1e-13 relative) and its distance recomputed exactly
    size = group_sizes(counts)
    for n in np.unique(size[counts >= 2]).tolist():
        group = np.flatnonzero((size == n) & (counts >= 2))
        slot = np.minimum(np.arange(n)[None, :], counts[group][:, None] - 1)  # (G, n)
        q = phys[bounds[group][:, None] + slot]  # (G, n, 3)
        norm = (q * q).sum(-1)
        d2 = norm[:, :, None] + norm[:, None, :] - 2.0 * np.matmul(q, q.transpose(0, 2, 1))
        best = d2.reshape(len(group), -1).argmax(1)
        rows = np.arange(len(group))
        diff = q[rows, best // n] - q[rows, best % n]
        out[group] = np.sqrt((diff * diff).sum(-1))
    return out


def mesh_diameters(padded: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """(B, 4) (slice, column, row, 3-D) maximum diameters (mm) of the mesh vertices of padded boolean masks.

    2-D diameters are exact maxima over pairs of grid lines within each plane (:func:`_plane_max`); the 3-D
    diameter uses :func:`_max_3d`, with the largest 2-D diameter as its lower bound. Planes at odd doubled
    coordinates only hold vertices on lines at even ones (a vertex has at most one odd doubled coordinate), so
    their odd lines are skipped.
    """
    nb, zp, yp, xp = padded.shape
    vertices = mesh_vertices(padded)
    ext, extreme = line_extents(vertices, (nb, 2 * zp - 1, 2 * yp - 1, 2 * xp - 1))
    half = np.asarray(spacing, dtype=np.float64) / 2.0

    def plane_max(lo: np.ndarray, hi: np.ndarray, h: float, along: float) -> np.ndarray:
        even = _plane_max(lo[:, 0::2], hi[:, 0::2], h, along)
        if lo.shape[1] < 2:
            return even
        return np.maximum(even, _plane_max(lo[:, 1::2, 0::2], hi[:, 1::2, 0::2], 2 * h, along))

    xlo, xhi = ext["x"]  # (B, z2, y2)
    ylo, yhi = ext["y"]  # (B, z2, x2)
    d_slice = plane_max(xlo, xhi, half[1], half[2])  # same z: lines along x at rows y
    d_col = plane_max(xlo.transpose(0, 2, 1), xhi.transpose(0, 2, 1), half[0], half[2])  # same y
    d_row = plane_max(ylo.transpose(0, 2, 1), yhi.transpose(0, 2, 1), half[0], half[1])  # same x
    d2 = np.sqrt(np.stack([d_slice, d_col, d_row], axis=1))
    return np.concatenate([d2, _max_3d(vertices, extreme, half, d2.max(1))[:, None]], axis=1)


def axis_eigenvalues(batch: RoiBatch) -> np.ndarray:
    """(B, 3) ascending eigenvalues of the covariance of each item's physical ROI voxel coordinates.

    cov = X^T X / N, X the coordinates (mm) minus their mean, numpy.linalg.eigvals (one batched call), tiny negative
    eigenvalues > -1e-10 set to 0, as PyRadiomics. The moments come exactly, in integers, from the padded masks'
    sums over one axis (N cov_ab = (N S_ab - S_a S_b) / N, S the sums of the voxel indices and of their products);
    items with an eigenvalue below 1e-9 of the largest (flat or collinear ROIs, whose zero eigenvalues come out as
    +-rounding noise in PyRadiomics) are recomputed with PyRadiomics' own operations and operand layouts
    (coordinates in the bounding box padded by one voxel, mean, division by sqrt(N), numpy.dot), so that the
    noise, and its sign, is the same.
    """
    mask = batch.box_masks[:-1]  # coordinates of the bounding box padded by one voxel, as PyRadiomics'
    nb, zp, yp, xp = mask.shape
    n = batch.counts.astype(np.int64)
    if int(n.max()) ** 2 * max(zp, yp, xp) ** 2 < 2**62:  # exact int64 moments
        zy, zx, yx = mask.sum(3, dtype=np.int64), mask.sum(2, dtype=np.int64), mask.sum(1, dtype=np.int64)
        z, y, x = (np.arange(k, dtype=np.int64) for k in (zp, yp, xp))
        first = [zy.sum(2) @ z, zy.sum(1) @ y, zx.sum(1) @ x]
        second = {
            (0, 0): zy.sum(2) @ (z * z),
            (1, 1): zy.sum(1) @ (y * y),
            (2, 2): zx.sum(1) @ (x * x),
            (0, 1): np.einsum("bzy,z,y->b", zy, z, y),
            (0, 2): np.einsum("bzx,z,x->b", zx, z, x),
            (1, 2): np.einsum("byx,y,x->b", yx, y, x),
        }
        cov = np.empty((nb, 3, 3))
        for (a, b), s_ab in second.items():
            value = (n * s_ab - first[a] * first[b]).astype(np.float64) / (n * n).astype(np.float64)
            cov[:, a, b] = cov[:, b, a] = value * (batch.spacing[a] * batch.spacing[b])
        redo = None
    else:
        cov = np.empty((nb, 3, 3))
        redo = np.arange(nb)
    eig = np.real(np.linalg.eigvals(cov)) if redo is None else np.zeros((nb, 3))
    if redo is None:
        redo = np.flatnonzero(np.abs(eig).min(1) <= 1e-9 * np.abs(eig).max(1))
    for k in redo.tolist():
        start, count = int(batch.starts[k]), int(batch.counts[k])
        rest, xk = np.divmod(batch.roi_index[start : start + count].cpu().numpy(), xp)
        rest, yk = np.divmod(rest, yp)
        # (N, 3) in Fortran order, like PyRadiomics' transposed numpy.where output
        phys = (np.stack([rest % zp, yk, xk]) * np.asarray(batch.spacing, dtype=np.float64)[:, None]).T
        phys = phys - np.add.reduce(phys, axis=0) / count  # numpy.mean's arithmetic
        phys /= np.sqrt(count)
        cov[k] = np.dot(phys.T.copy(), phys)
    if len(redo):
        eig[redo] = np.real(np.linalg.eigvals(cov[redo]))
    eig[(eig < 0) & (eig > -1e-10)] = 0
    return np.sort(eig, axis=1)


def coefficients(batch: RoiBatch) -> ShapeCoefficients:
    """Mesh, diameters and eigenvalues of every ROI in the batch (mesh sums on the batch's device, diameters and
    eigenvalues on the host)."""
    padded_np = batch.padded_mask  # the padded layout is the padded mask
    to: dict[str, Any] = {"dtype": batch.dtype, "device": batch.device}
    if batch.on_cpu:
        volume, surface = (torch.as_tensor(v, **to) for v in mesh_volume_and_surface_numpy(padded_np, batch.spacing))
    else:
        padded = torch.as_tensor(padded_np, device=batch.device)
        volume, surface = mesh_volume_and_surface(padded, batch.spacing, batch.dtype)
    z, y, x = batch.spacing
    return ShapeCoefficients(
        volume=volume,
        surface=surface,
        n_voxels=batch.n_voxels.to(batch.dtype),
        voxel_volume=z * x * y,
        diameters=torch.as_tensor(mesh_diameters(padded_np, batch.spacing), **to),
        eigenvalues=torch.as_tensor(axis_eigenvalues(batch), **to),
    )


def mesh_volume(c: ShapeCoefficients) -> torch.Tensor:
    """MeshVolume V = (1/6) sum_triangles (a x b) . c  (signed tetrahedra with the origin)."""
    return c.volume


def voxel_volume(c: ShapeCoefficients) -> torch.Tensor:
    """VoxelVolume = N_v * (dz * dx * dy)."""
    return c.n_voxels * c.voxel_volume


def surface_area(c: ShapeCoefficients) -> torch.Tensor:
    """SurfaceArea A = sum_triangles |(a - c) x (b - c)| / 2."""
    return c.surface


def surface_volume_ratio(c: ShapeCoefficients) -> torch.Tensor:
    """SurfaceVolumeRatio = A / V."""
    return c.surface / c.volume


def sphericity(c: ShapeCoefficients) -> torch.Tensor:
    """Sphericity = (36 pi V^2)^(1/3) / A."""
    return (36 * np.pi * c.volume**2) ** (1.0 / 3.0) / c.surface


def compactness1(c: ShapeCoefficients) -> torch.Tensor:
    """Compactness1 = V / (A^(3/2) sqrt(pi)) (deprecated in PyRadiomics, kept here)."""
    return c.volume / (c.surface ** (3.0 / 2.0) * np.sqrt(np.pi))


def compactness2(c: ShapeCoefficients) -> torch.Tensor:
    """Compactness2 = 36 pi V^2 / A^3 (deprecated in PyRadiomics, kept here)."""
    return (36.0 * np.pi) * (c.volume**2.0) / (c.surface**3.0)


def maximum_3d_diameter(c: ShapeCoefficients) -> torch.Tensor:
    """Maximum3DDiameter = max_{i,j} |v_i - v_j| over mesh vertices."""
    return c.diameters[:, 3]


def maximum_2d_diameter_slice(c: ShapeCoefficients) -> torch.Tensor:
    """Maximum2DDiameterSlice = max |v_i - v_j| over vertex pairs with equal slice coordinate (axial plane)."""
    return c.diameters[:, 0]


def maximum_2d_diameter_column(c: ShapeCoefficients) -> torch.Tensor:
    """Maximum2DDiameterColumn = max |v_i - v_j| over vertex pairs with equal row coordinate (coronal plane)."""
    return c.diameters[:, 1]


def maximum_2d_diameter_row(c: ShapeCoefficients) -> torch.Tensor:
    """Maximum2DDiameterRow = max |v_i - v_j| over vertex pairs with equal column coordinate (sagittal plane)."""
    return c.diameters[:, 2]


def _axis(value: torch.Tensor) -> torch.Tensor:
    return torch.where(value < 0, torch.full_like(value, float("nan")), torch.sqrt(value.clamp(min=0)) * 4)


def major_axis_length(c: ShapeCoefficients) -> torch.Tensor:
    """MajorAxisLength = 4 sqrt(lambda_major)."""
    return _axis(c.eigenvalues[:, 2])


def minor_axis_length(c: ShapeCoefficients) -> torch.Tensor:
    """MinorAxisLength = 4 sqrt(lambda_minor)."""
    return _axis(c.eigenvalues[:, 1])


def least_axis_length(c: ShapeCoefficients) -> torch.Tensor:
    """LeastAxisLength = 4 sqrt(lambda_least)."""
    return _axis(c.eigenvalues[:, 0])


def elongation(c: ShapeCoefficients) -> torch.Tensor:
    """Elongation = sqrt(lambda_minor / lambda_major)."""
    e = c.eigenvalues
    bad = (e[:, 1] < 0) | (e[:, 2] < 0)
    return torch.where(bad, torch.full_like(e[:, 0], float("nan")), torch.sqrt(e[:, 1] / e[:, 2]))


def flatness(c: ShapeCoefficients) -> torch.Tensor:
    """Flatness = sqrt(lambda_least / lambda_major)."""
    e = c.eigenvalues
    bad = (e[:, 0] < 0) | (e[:, 2] < 0)
    return torch.where(bad, torch.full_like(e[:, 0], float("nan")), torch.sqrt(e[:, 0] / e[:, 2]))


#: PyRadiomics feature name -> function.
FEATURES: dict[str, Callable[[ShapeCoefficients], torch.Tensor]] = {
    "Compactness1": compactness1,
    "Compactness2": compactness2,
    "Elongation": elongation,
    "Flatness": flatness,
    "LeastAxisLength": least_axis_length,
    "MajorAxisLength": major_axis_length,
    "Maximum2DDiameterColumn": maximum_2d_diameter_column,
    "Maximum2DDiameterRow": maximum_2d_diameter_row,
    "Maximum2DDiameterSlice": maximum_2d_diameter_slice,
    "Maximum3DDiameter": maximum_3d_diameter,
    "MeshVolume": mesh_volume,
    "MinorAxisLength": minor_axis_length,
    "Sphericity": sphericity,
    "SurfaceArea": surface_area,
    "SurfaceVolumeRatio": surface_volume_ratio,
    "VoxelVolume": voxel_volume,
}


def compute(batch: RoiBatch, *, voxel_array_shift: float = 0.0) -> dict[str, torch.Tensor]:
    """All shape features of the batch, name -> (B,) tensor (``voxel_array_shift`` is unused)."""
    c = coefficients(batch)
    return {name: fn(c) for name, fn in FEATURES.items()}
