"""Preparation of a batch of regions of interest (ROIs) for the vectorised feature families.

Every family works on a :class:`RoiBatch`: the ROIs of several items cropped to their bounding boxes,
padded to one common box, discretised exactly as PyRadiomics 3.1 does (fixed bin width, bin edges
``numpy.arange(min - min % w, max + 2 w, w)``, ``numpy.digitize`` semantics) and moved to one torch
device. Cropping and binning are per item in numpy (cheap, and bit-identical to PyRadiomics); all
feature arithmetic afterwards is batched torch code.

Besides the dense boxes, a batch holds a flat view for gather-based neighbourhood work: every item's box
is padded with one voxel of background on each side and flattened, so that the neighbour of ROI voxel
``f`` along an offset is ``f + flat_offset`` (never wrapping into another row or item), and the
grey levels are also given as per-item compact ranks (0..Gc-1 over the levels present in the ROI), which
keeps co-occurrence and run-length matrices small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

#: The 13 unique 3-D directions at distance 1, as (slice, row, column) offsets, in PyRadiomics' order.
DIRECTIONS: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (1, 1, 0),
    (1, 1, -1),
    (1, 0, 1),
    (1, 0, 0),
    (1, 0, -1),
    (1, -1, 1),
    (1, -1, 0),
    (1, -1, -1),
    (0, 1, 1),
    (0, 1, 0),
    (0, 1, -1),
    (0, 0, 1),
)


def bin_edges(values: np.ndarray, bin_width: float) -> np.ndarray:
    """PyRadiomics' fixed-bin-width edges for the ROI intensities ``values``.

    edges = arange(min - (min mod w), max + 2 w, w); a single edge e becomes [e - 0.5, e + 0.5].
    """
    minimum = float(np.min(values))
    maximum = float(np.max(values))
    low = minimum - (minimum % bin_width)
    high = maximum + 2 * bin_width
    edges = np.arange(low, high, bin_width)
    if len(edges) == 1:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def discretise(values: np.ndarray, bin_width: float) -> np.ndarray:
    """Grey levels 1..Ng of ``values``: ``numpy.digitize(values, bin_edges(values, w))``."""
    return np.digitize(values, bin_edges(values, bin_width)).astype(np.int64)


@dataclass
class RoiBatch:
    """ROIs of several items, cropped, discretised and padded to a common box on one device.

    Attributes:
        values: (B, N) intensities of the ROI voxels, NaN beyond each item's voxel count.
        levels: (B, N) discretised grey levels (1..Ng) of the ROI voxels, 0 beyond the count (all 1 when the
            items were prepared without levels, see :func:`prepare_item`).
        valid: (B, N) True for real ROI voxels.
        n_voxels: (B,) number of ROI voxels per item.
        grey: (B, Z, Y, X) grey levels in the common box, 0 outside the ROI.
        mask: (B, Z, Y, X) the ROI in the common box.
        box_sizes: (B, 3) numpy array, each item's bounding-box size (slices, rows, cols).
        n_levels: (B,) Ng, the highest grey level present in each ROI.
        max_level: G, the highest grey level over the batch.
        spacing: voxel spacing (slices, rows, cols) in mm.
        masks_np: the cropped boolean masks (numpy), for the shape family.
        dtype, device: the floating dtype and device of the tensors.
        padded_shape: (Zp, Yp, Xp) = common box + 2 (one background voxel on each side).
        grey_flat: (B * Zp * Yp * Xp,) grey levels of the padded boxes, 0 outside the ROI.
        rank_flat: same layout, compact rank + 1 of the grey level, 0 outside the ROI.
        roi_index: (Nroi,) flat indices (into ``grey_flat``) of all ROI voxels, item-major, C order.
        roi_item: (Nroi,) item of each ROI voxel.
        roi_grey: (Nroi,) grey level of each ROI voxel.
        roi_rank: (Nroi,) compact rank (0..Gc-1) of each ROI voxel's grey level.
        level_values: (B, Gc) grey level of each compact rank, 0 beyond the item's present levels.
        n_present: (B,) number of distinct grey levels in each ROI (numpy).
    """

    values: torch.Tensor
    levels: torch.Tensor
    valid: torch.Tensor
    n_voxels: torch.Tensor
    grey: torch.Tensor
    mask: torch.Tensor
    box_sizes: np.ndarray
    n_levels: torch.Tensor
    max_level: int
    spacing: tuple[float, float, float]
    masks_np: list[np.ndarray]
    dtype: torch.dtype
    device: torch.device
    padded_shape: tuple[int, int, int]
    grey_flat: torch.Tensor
    rank_flat: torch.Tensor
    roi_index: torch.Tensor
    roi_item: torch.Tensor
    roi_grey: torch.Tensor
    roi_rank: torch.Tensor
    level_values: torch.Tensor
    n_present: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        """Number of items B in the batch."""
        return int(self.values.shape[0])

    @property
    def rank(self) -> torch.Tensor:
        """(B, Z, Y, X) compact grey-level rank + 1 in the common box, 0 outside the ROI."""
        zp, yp, xp = self.padded_shape
        return self.rank_flat.reshape(self.size, zp, yp, xp)[:, 1 : zp - 1, 1 : yp - 1, 1 : xp - 1]

    @property
    def n_compact(self) -> int:
        """Gc, the largest number of distinct grey levels of a ROI in the batch."""
        return int(self.level_values.shape[1])

    def flat_offset(self, offset: Sequence[int]) -> int:
        """Flat-index step of a (slice, row, col) offset in the padded layout."""
        _, yp, xp = self.padded_shape
        return int((offset[0] * yp + offset[1]) * xp + offset[2])

    def neighbour_values(self, kind: str) -> torch.Tensor:
        """(13, Nroi) int32 grey level (``kind="grey"``) or compact rank + 1 (``kind="rank"``) of every ROI
        voxel's neighbour at the offsets ``DIRECTIONS``; 0 where the neighbour lies outside the ROI. Computed
        once per batch and kind (a numpy gather on the CPU)."""
        key = "nb_" + kind
        if key not in self._cache:
            steps = [self.flat_offset(d) for d in DIRECTIONS]
            source = self.grey_flat if kind == "grey" else self.rank_flat
            if self.device.type == "cpu":
                src = source.numpy().astype(np.int32)
                roi = self.roi_index.numpy()
                out = np.empty((len(steps), roi.shape[0]), dtype=np.int32)
                for row, step in zip(out, steps):
                    np.take(src[step:], roi, out=row)  # src[f + step] for every ROI voxel f
                self._cache[key] = torch.from_numpy(out)
            else:
                shift = torch.tensor(steps, dtype=torch.int64, device=self.device)
                self._cache[key] = source.to(torch.int32)[self.roi_index[None, :] + shift[:, None]]
        return self._cache[key]

    def equal_neighbour_pairs(self) -> list[torch.Tensor]:
        """Per direction of ``DIRECTIONS``, a boolean tensor over flat padded positions f < len - step (step the
        direction's :meth:`flat_offset`): True where f and f + step are both ROI voxels of one grey level.
        Computed once per batch (slices of ``rank_flat``; a ROI voxel's flat successor is its true neighbour)."""
        if "equal_pairs" not in self._cache:
            ranks = self.rank_flat.to(torch.int16 if self.n_compact < 32767 else torch.int32)
            inside = ranks != 0
            pairs = []
            for d in DIRECTIONS:
                step = self.flat_offset(d)
                pairs.append((ranks[:-step] == ranks[step:]) & inside[:-step])
            self._cache["equal_pairs"] = pairs
        return self._cache["equal_pairs"]


def box_sum_3x3x3(volume: torch.Tensor) -> torch.Tensor:
    """(B, Z-2, Y-2, X-2) sums of every interior voxel's 3x3x3 neighbourhood (itself included) of a (B, Z, Y, X)
    tensor, as three separable 3-tap sums."""
    s = volume[..., :-2] + volume[..., 1:-1] + volume[..., 2:]
    s = s[:, :, :-2] + s[:, :, 1:-1] + s[:, :, 2:]
    return s[:, :-2] + s[:, 1:-1] + s[:, 2:]


def crop_to_roi(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``image`` and boolean ``mask`` to the bounding box of the mask (which must be non-empty)."""
    if mask.all():
        return image, mask
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return image[tuple(box)], mask[tuple(box)]


@dataclass
class PreparedItem:
    """One ROI cropped to its bounding box and discretised (see :func:`prepare_item`)."""

    mask: np.ndarray  # cropped boolean mask
    values: np.ndarray  # ROI intensities, C order
    levels: np.ndarray  # their grey levels 1..Ng

    @property
    def n_levels(self) -> int:
        """Ng, the highest grey level of the ROI."""
        return int(self.levels.max())


def prepare_item(image: np.ndarray, mask: np.ndarray, bin_width: float, with_levels: bool = True) -> PreparedItem:
    """Crop a (non-empty) ROI to its bounding box and discretise its intensities.

    With ``with_levels=False`` (for families that ignore intensities, i.e. shape) every ROI voxel gets grey
    level 1 instead of its discretised level.
    """
    img_c, mask_c = crop_to_roi(np.asarray(image, dtype=np.float64), np.asarray(mask) > 0)
    v = img_c.reshape(-1) if mask_c.all() else img_c[mask_c]
    levels = discretise(v, bin_width) if with_levels else np.ones(v.shape, dtype=np.int64)
    return PreparedItem(mask=mask_c, values=v, levels=levels)


def build_batch(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    spacing: tuple[float, float, float],
    bin_width: float,
    dtype: torch.dtype,
    device: torch.device,
) -> RoiBatch:
    """Crop, discretise and pad the (non-empty) ROIs of ``images``/``masks`` into one :class:`RoiBatch`."""
    items = [prepare_item(image, mask, bin_width) for image, mask in zip(images, masks)]
    return build_batch_from_items(items, spacing=spacing, dtype=dtype, device=device)


def build_batch_from_items(
    items: Sequence[PreparedItem], *, spacing: tuple[float, float, float], dtype: torch.dtype, device: torch.device
) -> RoiBatch:
    """Pad prepared ROIs into one :class:`RoiBatch` (dense boxes, flat padded layout, compact grey ranks)."""
    n_items = len(items)
    counts = np.array([len(it.values) for it in items], dtype=np.int64)
    n_max = int(counts.max())
    box_sizes = np.array([it.mask.shape for it in items], dtype=np.int64)
    box = box_sizes.max(axis=0)
    zp, yp, xp = (int(n) + 2 for n in box)
    mask_pad = np.zeros((n_items, zp, yp, xp), dtype=bool)
    for b, it in enumerate(items):
        z, y, x = it.mask.shape
        mask_pad[b, 1 : z + 1, 1 : y + 1, 1 : x + 1] = it.mask
    all_levels = np.concatenate([it.levels for it in items])
    all_values = np.concatenate([it.values for it in items])
    roi_index = np.flatnonzero(mask_pad)  # item-major, C order within each box = order of it.values
    roi_item = np.repeat(np.arange(n_items), counts)
    max_level = int(all_levels.max())
    # compact ranks: position of each grey level among the levels present in its ROI
    item_level = roi_item * (max_level + 1) + all_levels
    present = np.zeros((n_items, max_level + 1), dtype=bool)
    present.reshape(-1)[item_level] = True
    n_present = present.sum(1)
    rank_map = np.cumsum(present, axis=1) - 1
    roi_rank = rank_map.reshape(-1)[item_level]
    n_compact = int(n_present.max())
    level_values = np.zeros((n_items, n_compact), dtype=np.int64)
    pi, pl = np.nonzero(present)
    level_values[pi, rank_map[pi, pl]] = pl
    grey_flat = np.zeros(mask_pad.size, dtype=np.int64)
    grey_flat[roi_index] = all_levels
    rank_flat = np.zeros(mask_pad.size, dtype=np.int64)
    rank_flat[roi_index] = roi_rank + 1
    # dense (B, N) voxel lists
    if np.all(counts == n_max):
        values = all_values.reshape(n_items, n_max)
        levels = all_levels.reshape(n_items, n_max)
    else:
        starts = np.cumsum(counts) - counts
        slot = np.arange(len(all_levels)) - np.repeat(starts - np.arange(n_items) * n_max, counts)  # b * n_max + pos
        values = np.full((n_items, n_max), np.nan)
        values.reshape(-1)[slot] = all_values
        levels = np.zeros((n_items, n_max), dtype=np.int64)
        levels.reshape(-1)[slot] = all_levels
    n_levels = np.maximum.reduceat(all_levels, np.cumsum(counts) - counts)  # Ng of each item
    to = dict(device=device)
    grey_pad_t = torch.as_tensor(grey_flat.reshape(mask_pad.shape), **to)
    mask_pad_t = torch.as_tensor(mask_pad, **to)
    inner = (slice(None), slice(1, zp - 1), slice(1, yp - 1), slice(1, xp - 1))
    return RoiBatch(
        values=torch.as_tensor(values, dtype=dtype, **to),
        levels=torch.as_tensor(levels, **to),
        valid=torch.as_tensor(levels > 0, **to),
        n_voxels=torch.as_tensor(counts, **to),
        grey=grey_pad_t[inner],
        mask=mask_pad_t[inner],
        box_sizes=box_sizes,
        n_levels=torch.as_tensor(n_levels, dtype=dtype, **to),
        max_level=max_level,
        spacing=spacing,
        masks_np=[it.mask for it in items],
        dtype=dtype,
        device=device,
        padded_shape=(zp, yp, xp),
        grey_flat=grey_pad_t.reshape(-1),
        rank_flat=torch.as_tensor(rank_flat, **to),
        roi_index=torch.as_tensor(roi_index, **to),
        roi_item=torch.as_tensor(roi_item, **to),
        roi_grey=torch.as_tensor(all_levels, **to),
        roi_rank=torch.as_tensor(roi_rank, **to),
        level_values=torch.as_tensor(level_values, **to),
        n_present=n_present,
    )


def neighbour(volume: torch.Tensor, offset: Sequence[int], fill: int | bool | float = 0) -> torch.Tensor:
    """``out[b, p] = volume[b, p + offset]`` for a (B, Z, Y, X) tensor, ``fill`` where p + offset leaves the box."""
    out = torch.full_like(volume, fill)
    src: list[slice] = [slice(None)]
    dst: list[slice] = [slice(None)]
    for k, n in zip(offset, volume.shape[1:]):
        if abs(k) >= n:
            return out
        if k > 0:
            src.append(slice(k, n))
            dst.append(slice(0, n - k))
        elif k < 0:
            src.append(slice(0, n + k))
            dst.append(slice(-k, n))
        else:
            src.append(slice(None))
            dst.append(slice(None))
    out[tuple(dst)] = volume[tuple(src)]
    return out


def direction_allowed(box_sizes: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, 13) True where a direction only moves along axes in which the item's bounding box is > 1 voxel.

    PyRadiomics generates no angle with a component along an axis of size 1 (its ``generate_angles``).
    """
    dirs = np.abs(np.array(DIRECTIONS))  # (13, 3)
    moving = box_sizes > 1  # (B, 3)
    allowed = np.all(~(dirs[None, :, :] > 0) | moving[:, None, :], axis=2)
    return torch.as_tensor(allowed, device=device)


def angle_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean over angles (dim 1) of ``values`` where ``weight`` is True and the value is not NaN (numpy.nanmean)."""
    use = weight & ~torch.isnan(values)
    total = torch.where(use, values, torch.zeros_like(values)).sum(1)
    count = use.sum(1).to(values.dtype)
    return total / count
