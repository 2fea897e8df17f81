"""Acquisition of one view: its sampling grid, gain, bias field, Rician noise and uint8 quantisation.

Each view samples the same world-frame knee on its own grid: sagittal slices are perpendicular to x,
coronal to y, axial to z (:data:`radpersona.orientation.VIEW_AXES`); ``matrix x matrix`` in-plane
voxels over a ``FOV_MM`` field of view; the slice count is drawn per case and view within ``slices``
and the slab is ``VIEW_COVERAGE_MM`` +-10 % thick, so that slices are ``coverage / n_slices`` apart.

The analytic field is evaluated on an in-plane grid of at most about ``COARSE_SPACING_MM``
(:func:`coarse_factor`: every voxel up to ``matrix = 255``, every second voxel for 256), multiplied
by a per-view gain ``g`` and a smooth multiplicative bias field ``B`` (:func:`bias_field`) and linearly
interpolated to the full matrix (:func:`upsample`); Rician noise of ``sigma = (0.015 + 0.05 d) g``
(``d`` the difficulty) is drawn at full resolution, and the magnitude quantised::

    image = clip(round(|up(g B signal) + n_re + i n_im| * QUANT_SCALE), 0, 255)   (uint8)

The healthy twin shares grid, gain, bias field and noise realisation; the lesion mask is the lesion
code whose visible occupancy exceeds 0.5 at the voxel centre.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..orientation import VIEW_AXES
from .geometry import FULL, Block, Grid
from .render import render_knee

FOV_MM = 160.0
"""In-plane field of view of every view (mm)."""
COARSE_SPACING_MM = 1.25
"""Largest in-plane spacing (mm) of the grid the analytic field is evaluated on."""
QUANT_SCALE = 255.0 / 1.3
"""Magnitude -> uint8 scale (magnitude 1.3 maps to 255)."""
VIEW_COVERAGE_MM: Mapping[str, float] = {"sagittal": 105.0, "coronal": 105.0, "axial": 120.0}
"""Nominal slab thickness (mm) per view; a case draws +-10 % around it."""


def coarse_factor(matrix: int) -> int:
    """In-plane subsampling factor ``f`` of the analytic evaluation (1 up to matrix 255, 2 for 256).

    The largest divisor of ``matrix`` not above ``matrix // 128``, so the evaluation grid spacing
    ``FOV / (matrix / f)`` stays at or below about ``COARSE_SPACING_MM``.
    """
    f = max(1, matrix // int(round(FOV_MM / COARSE_SPACING_MM)))
    while matrix % f:
        f -= 1
    return f


def draw_acquisition(
    rng: np.random.Generator, view: str, slices: tuple[int, int], matrix: int, difficulty: float
) -> dict[str, Any]:
    """Draw one view's acquisition: slice count and spacing, gain, noise, bias-field coefficients.

    Slice count uniform in ``slices`` (inclusive), coverage ``VIEW_COVERAGE_MM[view] U(0.9, 1.1)``,
    gain ``U(0.85, 1.15)``, bias coefficients ``N(0, 1) (0.05 + 0.25 d) / 3``. The affine maps the voxel
    index ``(slice, row, col, 1)`` to world mm, centred on the scanner's origin.
    """
    n_slices = int(rng.integers(slices[0], slices[1] + 1))
    coverage = VIEW_COVERAGE_MM[view] * float(rng.uniform(0.9, 1.1))
    spacing = coverage / n_slices
    pixel = FOV_MM / matrix
    axes = np.asarray(VIEW_AXES[view], dtype=np.float64)
    affine = np.eye(4)
    affine[:3, 0] = axes[0] * spacing
    affine[:3, 1] = axes[1] * pixel
    affine[:3, 2] = axes[2] * pixel
    centre_index = np.array([(n_slices - 1) / 2, (matrix - 1) / 2, (matrix - 1) / 2])
    affine[:3, 3] = -affine[:3, :3] @ centre_index
    bias_strength = 0.05 + 0.25 * difficulty
    return {
        "view": view,
        "shape": [n_slices, matrix, matrix],
        "slice_spacing_mm": spacing,
        "pixel_spacing_mm": pixel,
        "axes": axes.tolist(),
        "affine": affine.tolist(),
        "gain": float(rng.uniform(0.85, 1.15)),
        "noise_sigma": 0.015 + 0.05 * difficulty,
        "bias_coefficients": (rng.normal(0.0, 1.0, size=9) * bias_strength / 3.0).tolist(),
    }


def view_affine(meta: Mapping[str, Any], view: str) -> np.ndarray:
    """4x4 affine from a view's voxel index ``(slice, row, col, 1)`` to world mm, read from a case's truth JSON."""
    return np.asarray(meta["views"][view]["affine"], dtype=np.float64)


def view_grid(acq: Mapping[str, Any], pose: Mapping[str, Any], factor: int) -> Grid:
    """Knee-frame evaluation grid of a view: every slice, in-plane pixel-area centres of ``factor``-sized cells."""
    n_slices, matrix, _ = acq["shape"]
    affine = np.asarray(acq["affine"])
    # coarse index (s, i, j) -> fine index (s, (i + 0.5) f - 0.5, (j + 0.5) f - 0.5)
    coarse_to_fine = np.diag([1.0, float(factor), float(factor)])
    shift = np.array([0.0, 0.5 * factor - 0.5, 0.5 * factor - 0.5])
    inv = np.asarray(pose["rotation"]).T / float(pose["scale"])  # world -> knee: R^T (p - t) / s
    linear = inv @ affine[:3, :3] @ coarse_to_fine
    offset = inv @ (affine[:3, :3] @ shift + affine[:3, 3] - np.asarray(pose["translation_mm"]))
    return Grid((n_slices, matrix // factor, matrix // factor), linear, offset)


def bias_field(acq: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """Smooth multiplicative bias field ``exp(sum_k b_k m_k)`` over the quadratic monomials ``m_k`` of
    ``(u, v, w)`` in [-1, 1]^3 (u, v, w, uv, vw, uw, u^2, v^2, w^2)."""
    u = np.linspace(-1, 1, shape[0], dtype=np.float32).reshape(-1, 1, 1)
    v = np.linspace(-1, 1, shape[1], dtype=np.float32).reshape(1, -1, 1)
    w = np.linspace(-1, 1, shape[2], dtype=np.float32).reshape(1, 1, -1)
    b = [np.float32(value) for value in acq["bias_coefficients"]]
    log_field = (
        b[0] * u
        + b[1] * v
        + b[2] * w
        + b[3] * u * v
        + b[4] * v * w
        + b[5] * u * w
        + b[6] * u * u
        + b[7] * v * v
        + b[8] * w * w
    )
    return np.exp(log_field).astype(np.float32)


def upsample(volume: np.ndarray, factor: int) -> np.ndarray:
    """Linear in-plane upsampling by an integer ``factor`` with pixel-area (grid-mode) alignment."""
    if factor == 1:
        return volume
    for axis in (1, 2):
        n = volume.shape[axis]
        pos = (np.arange(n * factor) + 0.5) / factor - 0.5
        i0 = np.floor(pos).astype(np.int64)
        w = (pos - i0).astype(np.float32)
        i1 = np.clip(i0 + 1, 0, n - 1)
        i0 = np.clip(i0, 0, n - 1)
        shape = [1, 1, 1]
        shape[axis] = -1
        w = w.reshape(shape)
        volume = np.take(volume, i0, axis=axis) * (1 - w) + np.take(volume, i1, axis=axis) * w
    return volume


def pad_block(lo: np.ndarray, hi: np.ndarray, pad: int, shape: tuple[int, ...]) -> Block:
    """Coarse block ``[lo, hi)`` padded in-plane (axes 1, 2) by ``pad`` pixels, clipped to ``shape``."""
    return (
        slice(int(lo[0]), int(hi[0])),
        slice(max(0, int(lo[1]) - pad), min(shape[1], int(hi[1]) + pad)),
        slice(max(0, int(lo[2]) - pad), min(shape[2], int(hi[2]) + pad)),
    )


def fine_block(block: Block, factor: int) -> Block:
    """Fine-grid block covering a coarse block (in-plane axes scaled by ``factor``)."""
    if block == FULL:
        return FULL
    return (
        block[0],
        slice(block[1].start * factor, block[1].stop * factor),
        slice(block[2].start * factor, block[2].stop * factor),
    )


class ViewRender(NamedTuple):
    """One rendered view: image, healthy twin, lesion label mask (all uint8) and lesion influence.

    ``influence`` is True wherever any lesion has non-zero visible occupancy (after interpolation);
    outside it ``image == healthy`` exactly.
    """

    image: np.ndarray
    healthy: np.ndarray
    mask: np.ndarray
    influence: np.ndarray


def render_view(
    anatomy: Mapping[str, Any],
    lesions: Sequence[Mapping[str, Any]],
    pose: Mapping[str, Any],
    acq: Mapping[str, Any],
    noise_rng: np.random.Generator,
) -> ViewRender:
    """Render one view of ``acq["shape"]``: image, healthy twin, lesion mask, lesion influence.

    The image and its healthy twin share pose, acquisition, bias field and the Rician noise
    realisation drawn from ``noise_rng``; they differ only where a lesion is painted.
    """
    n_slices, matrix, _ = acq["shape"]
    factor = coarse_factor(matrix)
    grid = view_grid(acq, pose, factor)
    canvas = render_knee(grid, anatomy, lesions)
    field_ = bias_field(acq, grid.shape) * np.float32(acq["gain"])
    sigma = np.float32(acq["noise_sigma"] * acq["gain"])
    shape = (n_slices, matrix, matrix)
    n_re = noise_rng.standard_normal(shape, dtype=np.float32) * sigma
    n_im = noise_rng.standard_normal(shape, dtype=np.float32) * sigma

    def finish(signal: np.ndarray, block: Block = FULL) -> np.ndarray:
        """Signal (coarse ``block``) -> field, upsampling, Rician noise, uint8 (fine block)."""
        full = upsample(signal[block] * field_[block], factor)
        fine = fine_block(block, factor)
        magnitude = np.hypot(full + n_re[fine], n_im[fine])
        return np.clip(np.rint(magnitude * np.float32(QUANT_SCALE)), 0, 255).astype(np.uint8)

    healthy = finish(canvas.healthy)
    image = healthy.copy()
    mask = np.zeros(shape, dtype=np.uint8)
    influence = np.zeros(shape, dtype=bool)
    if canvas.visible:
        assert canvas.lesioned is not None  # lesions were painted
        codes = sorted(canvas.visible)
        coarse_stack = np.stack([canvas.visible[c] for c in codes])
        touched = np.argwhere(np.any(coarse_stack > 0, axis=0))
        if len(touched):
            # lesions are local: redo the lesioned image only around them. Interpolation reaches one
            # coarse pixel, so fine pixels of the bounding box padded by 1 can differ; computing them
            # needs the box padded by 2 (identical arithmetic to a full-volume computation).
            lo, hi = touched.min(axis=0), touched.max(axis=0) + 1
            outer = pad_block(lo, hi, 2, grid.shape)
            inner = pad_block(lo, hi, 1, grid.shape)
            keep = tuple(
                slice(i.start - o.start, i.stop - o.start)
                for i, o in zip(fine_block(inner, factor), fine_block(outer, factor))
            )
            fine_inner = fine_block(inner, factor)
            image[fine_inner] = finish(canvas.lesioned, outer)[keep]
            stack = np.stack([upsample(v[outer], factor)[keep] for v in coarse_stack])
            influence[fine_inner] = np.any(stack > 0, axis=0)
            best = np.argmax(stack, axis=0)
            best_val = np.take_along_axis(stack, best[None], axis=0)[0]
            mask[fine_inner] = np.where(best_val > 0.5, np.asarray(codes, dtype=np.uint8)[best], 0)
    return ViewRender(image, healthy, mask, influence)
