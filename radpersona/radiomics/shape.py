"""3-D shape features, PyRadiomics 3.1 definitions, from its marching-cubes mesh.

The mesh is built as PyRadiomics' C extension ``cshape`` builds it: the ROI mask (cropped to its
bounding box) is padded with one voxel of background, every 2x2x2 cube gets an 8-bit index from its
corners (:mod:`radpersona.radiomics._tables`), vertices sit at edge midpoints, the volume V is the sum of
signed tetrahedra (a x b) . c / 6 over the triangles (sign flipped for complemented cube indices), the
surface A the sum of triangle areas |(a - c) x (b - c)| / 2, all in mm via the spacing. Diameters are
the largest vertex-to-vertex distances (in 3-D, and between vertices sharing a slice, row or column
coordinate). Axis lengths use the eigenvalues lambda_major >= lambda_minor >= lambda_least of the
covariance of the physical ROI voxel coordinates. Marching cubes run batched in torch with per-cube-index
volume and area tables; 2-D diameters are exact maxima over pairs of grid lines of vertices, the 3-D
diameter a maximum over line-extreme vertices; the 3x3 eigenproblems use PyRadiomics' arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from radpersona.radiomics._batch import RoiBatch
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


def mesh_volume_and_surface(mask: torch.Tensor, spacing: tuple[float, float, float], dtype: torch.dtype):
    """Signed-tetrahedra volume and triangle surface of the marching-cubes mesh of each padded mask.

    ``mask``: (B, Z, Y, X) boolean, already padded with background on every side.
    Returns (volume, surface), each (B,). Per-cube contributions come from :func:`_config_tables`:
    V = (1/6) sum_cubes sign (K0[idx] + o . K1[idx]), A = sum_cubes area[idx].
    """
    device = mask.device
    m = mask.to(torch.int32)
    nb, nz, ny, nx = m.shape
    index = torch.zeros((nb, nz - 1, ny - 1, nx - 1), dtype=torch.int32, device=device)
    for bit, (cz, cy, cx) in enumerate(CORNERS):
        index |= m[:, cz : cz + nz - 1, cy : cy + ny - 1, cx : cx + nx - 1] << bit
    flipped = index >= 128
    index = torch.where(flipped, 255 - index, index).long()
    k0, k1, area = (torch.as_tensor(t, dtype=dtype, device=device) for t in _config_tables(tuple(spacing)))
    sign = 1.0 - 2.0 * flipped.to(dtype)
    sp = torch.tensor(spacing, dtype=dtype, device=device)
    kz, ky, kx = k1[index].unbind(-1)  # (B, Z-1, Y-1, X-1) each
    oz = (torch.arange(nz - 1, dtype=dtype, device=device) * sp[0])[:, None, None]
    oy = (torch.arange(ny - 1, dtype=dtype, device=device) * sp[1])[:, None]
    ox = torch.arange(nx - 1, dtype=dtype, device=device) * sp[2]
    tet = sign * (k0[index] + oz * kz + oy * ky + ox * kx)
    volume = tet.sum((1, 2, 3)) / 6.0
    surface = area[index].sum((1, 2, 3))
    return volume, surface


_INF = float("inf")


def _extent(diff: torch.Tensor, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest and highest doubled coordinate 2 k + offset along the last axis where ``diff`` is True
    (float64; +inf / -inf for lines without any)."""
    coord = torch.arange(diff.shape[-1], device=diff.device, dtype=torch.float64) * 2 + offset
    lo = torch.where(diff, coord, _INF).amin(-1)
    hi = torch.where(diff, coord, -_INF).amax(-1)
    return lo, hi


def _line_extents(padded: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Extents of the mesh vertices on every grid line, in doubled integer coordinates.

    Vertices are midpoints of edges between differing voxels: (2z, 2y, 2x + 1) for an x-edge, (2z, 2y + 1, 2x)
    for a y-edge, (2z + 1, 2y, 2x) for a z-edge. Returns for lines along x (indexed by (z2, y2)), along y
    ((z2, x2)) and along z ((y2, x2)) the (lo, hi) coordinate along the line, each (B, n1, n2).
    """
    b, zp, yp, xp = padded.shape
    dz = padded[:, 1:] != padded[:, :-1]  # z-edges (B, zp-1, yp, xp)
    dy = padded[:, :, 1:] != padded[:, :, :-1]
    dx = padded[:, :, :, 1:] != padded[:, :, :, :-1]
    z2, y2, x2 = 2 * zp - 1, 2 * yp - 1, 2 * xp - 1
    dev = padded.device

    def empty(n1: int, n2: int) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            torch.full((b, n1, n2), _INF, dtype=torch.float64, device=dev),
            torch.full((b, n1, n2), -_INF, dtype=torch.float64, device=dev),
        )

    xl = empty(z2, y2)  # lines along x
    for (s1, s2), (diff, off) in {
        (0, 0): (dx, 1),
        (0, 1): (dy, 0),
        (1, 0): (dz, 0),
    }.items():
        lo, hi = _extent(diff, off)
        xl[0][:, s1::2, s2::2], xl[1][:, s1::2, s2::2] = lo, hi
    yl = empty(z2, x2)  # lines along y: move y to the last axis
    for (s1, s2), (diff, off) in {
        (0, 1): (dx, 0),
        (0, 0): (dy, 1),
        (1, 0): (dz, 0),
    }.items():
        lo, hi = _extent(diff.transpose(2, 3), off)
        yl[0][:, s1::2, s2::2], yl[1][:, s1::2, s2::2] = lo, hi
    zl = empty(y2, x2)  # lines along z
    for (s1, s2), (diff, off) in {
        (0, 1): (dx, 0),
        (1, 0): (dy, 0),
        (0, 0): (dz, 1),
    }.items():
        lo, hi = _extent(diff.permute(0, 2, 3, 1), off)
        zl[0][:, s1::2, s2::2], zl[1][:, s1::2, s2::2] = lo, hi
    return {"x": xl, "y": yl, "z": zl}


def _plane_max(lo: torch.Tensor, hi: torch.Tensor, step_sq: torch.Tensor, along: float) -> torch.Tensor:
    """Largest squared distance (mm^2) between vertices of lines lying in one plane, per item.

    ``lo``, ``hi``: (B, P, L) extents along the lines (doubled coordinates, +-inf for empty lines) of the
    L lines in each of P planes; ``step_sq``: (L, L) squared distance between the lines; ``along``: half
    the spacing along them. Between lines a and b the farthest vertices are max(hi_a - lo_b, hi_b - lo_a)
    apart along the lines, so the maximum over ordered pairs of step^2 + along^2 gap |gap|, gap = hi_a - lo_b,
    is the answer (gap is -inf, so the term never wins, when either line is empty).
    """
    gap = hi[:, :, :, None] - lo[:, :, None, :]
    d2 = torch.addcmul(step_sq, gap, gap.abs(), value=along * along)
    return d2.amax((1, 2, 3)).clamp(min=0.0)


def _max_3d(ext: dict[str, tuple[torch.Tensor, torch.Tensor]], half: np.ndarray) -> np.ndarray:
    """Largest vertex-to-vertex distance (mm) per item, over the vertices that are extreme on their x-, y- and
    z-lines alike (a superset of the convex hull's vertices, so the maximum is unchanged)."""
    (xlo, xhi), (ylo, yhi), (zlo, zhi) = (tuple(t.cpu().numpy() for t in ext[k]) for k in "xyz")
    nb, z2, y2 = xlo.shape
    bb, zz, yy = np.meshgrid(np.arange(nb), np.arange(z2), np.arange(y2), indexing="ij")
    pts = []
    for xs in (xlo, xhi):
        ok = np.isfinite(xs) & ((xs is xlo) | (xhi != xlo))  # a line with one vertex contributes it once
        b, z, y, x = bb[ok], zz[ok], yy[ok], xs[ok].astype(np.int64)
        keep = ((ylo[b, z, x] == y) | (yhi[b, z, x] == y)) & ((zlo[b, y, x] == z) | (zhi[b, y, x] == z))
        pts.append(np.stack([b[keep], z[keep], y[keep], x[keep]], axis=1))
    allp = np.concatenate(pts)
    allp = allp[np.argsort(allp[:, 0], kind="stable")]  # grouped by item
    phys = allp[:, 1:] * half
    bounds = np.searchsorted(allp[:, 0], np.arange(nb + 1))
    counts = np.diff(bounds)
    out = np.zeros(nb)
    # items in groups of similar vertex counts, each group padded to its largest count by repeating the
    # item's first vertex (which changes no maximum); the farthest pair per item is found from the Gram
    # matrix (|a|^2 + |b|^2 - 2 a.b, rounding ~1e-13 relative) and its distance recomputed exactly
    order = np.argsort(counts, kind="stable")
    order = order[counts[order] >= 2]
    for group in np.array_split(order, max(1, -(-len(order) // 16))):
        if len(group) == 0:
            continue
        size = int(counts[group].max())
        slot = np.minimum(np.arange(size)[None, :], counts[group][:, None] - 1)  # (G, size)
        q = phys[bounds[group][:, None] + slot]  # (G, size, 3)
        norm = (q * q).sum(-1)
        d2 = norm[:, :, None] + norm[:, None, :] - 2.0 * np.matmul(q, q.transpose(0, 2, 1))
        best = d2.reshape(len(group), -1).argmax(1)
        rows = np.arange(len(group))
        diff = q[rows, best // size] - q[rows, best % size]
        out[group] = np.sqrt((diff * diff).sum(-1))
    return out


def mesh_diameters_batch(padded: torch.Tensor, spacing: tuple[float, float, float]) -> torch.Tensor:
    """(B, 4) (slice, column, row, 3-D) maximum diameters (mm) of the mesh vertices of padded masks.

    2-D diameters are exact maxima over pairs of grid lines within each plane (:func:`_plane_max`);
    the 3-D diameter uses :func:`_max_3d`.
    """
    ext = _line_extents(padded)
    dtype = torch.float64
    half = np.asarray(spacing, dtype=np.float64) / 2.0
    dev = padded.device

    def step_sq(n: int, h: float) -> torch.Tensor:
        c = torch.arange(n, dtype=dtype, device=dev) * h
        return (c[:, None] - c[None, :]) ** 2

    def plane_max(lo: torch.Tensor, hi: torch.Tensor, h: float, along: float) -> torch.Tensor:
        # planes at odd doubled coordinates only hold vertices on lines at even ones (a vertex has at most
        # one odd doubled coordinate), so their odd lines are skipped
        n = lo.shape[2]
        even = _plane_max(lo[:, 0::2], hi[:, 0::2], step_sq(n, h), along)
        if lo.shape[1] < 2:
            return even
        odd = _plane_max(lo[:, 1::2, 0::2], hi[:, 1::2, 0::2], step_sq(n, h)[0::2, 0::2], along)
        return torch.maximum(even, odd)

    xlo, xhi = ext["x"]  # (B, z2, y2)
    ylo, yhi = ext["y"]  # (B, z2, x2)
    d_slice = plane_max(xlo, xhi, half[1], half[2])  # same z: lines along x at rows y
    d_col = plane_max(xlo.transpose(1, 2), xhi.transpose(1, 2), half[0], half[2])  # same y
    d_row = plane_max(ylo.transpose(1, 2), yhi.transpose(1, 2), half[0], half[1])  # same x
    d3 = torch.as_tensor(_max_3d(ext, half), dtype=dtype, device=dev)
    return torch.stack([d_slice.sqrt(), d_col.sqrt(), d_row.sqrt(), d3], dim=1)


def axis_eigenvalues_batch(padded: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """(B, 3) ascending eigenvalues of the covariance of each item's physical ROI voxel coordinates.

    Same arithmetic per item as PyRadiomics (coordinates * spacing, minus their mean, divided by sqrt(N),
    X^T X, numpy.linalg.eigvals), with one batched eigenvalue call.
    """
    nb = padded.shape[0]
    coords = np.nonzero(padded)
    bounds = np.searchsorted(coords[0], np.arange(nb + 1))
    phys_all = np.stack(coords[1:], axis=1) * np.asarray(spacing, dtype=np.float64)[None, :]
    cov = np.zeros((nb, 3, 3))
    for k in range(nb):
        phys = phys_all[bounds[k] : bounds[k + 1]].copy()
        n = len(phys)
        phys -= np.mean(phys, axis=0)
        phys /= np.sqrt(n)
        cov[k] = np.dot(phys.T.copy(), phys)
    eig = np.real_if_close(np.linalg.eigvals(cov))
    eig = np.real(eig)
    eig[(eig < 0) & (eig > -1e-10)] = 0
    return np.sort(eig, axis=1)


def coefficients(batch: RoiBatch) -> ShapeCoefficients:
    """Mesh, diameters and eigenvalues of every ROI in the batch."""
    padded = F.pad(batch.mask, (1, 1, 1, 1, 1, 1))
    volume, surface = mesh_volume_and_surface(padded, batch.spacing, batch.dtype)
    diam = mesh_diameters_batch(padded, batch.spacing)
    eig = axis_eigenvalues_batch(padded.cpu().numpy(), batch.spacing)
    z, y, x = batch.spacing
    to = dict(dtype=batch.dtype, device=batch.device)
    return ShapeCoefficients(
        volume=volume,
        surface=surface,
        n_voxels=batch.n_voxels.to(batch.dtype),
        voxel_volume=z * x * y,
        diameters=diam.to(**to),
        eigenvalues=torch.as_tensor(eig, **to),
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
