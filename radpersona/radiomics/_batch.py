"""Preparation of a batch of regions of interest (ROIs) for the vectorised feature families.

Every family works on a :class:`RoiBatch`: the ROIs of several items cropped to their bounding boxes,
discretised with PyRadiomics' fixed bin width and laid out on one torch device. Items of one array shape are
stacked and prepared together in numpy (masks, voxel counts, bounding boxes, intensities); discretisation and
everything after it is vectorised over the whole batch (bit-identical to PyRadiomics' ``numpy.digitize``
binning, see :func:`discretise_batch`). On the CPU, the host-side kernels work on numpy views of the tensors.

Layouts:

- *ROI voxel lists*: all ROI voxels of all items, item-major and in C order within each item's box (the
  order of ``image[mask]``), with their item, intensity, grey level and compact grey-level rank (0..Gc-1
  over the levels present in the item's ROI, which keeps co-occurrence and run-length matrices small).
  Item b's voxels are ``starts[b] : starts[b] + counts[b]``; :meth:`RoiBatch.segment_sum` reduces over them.
- *Flat padded boxes*: every item's box preceded by one slice, row and column of background, in a common box
  (Zp, Yp, Xp) = (Z + 1, Y + 1, X + 1), stacked (plus one empty box at the end) and flattened, so that the
  neighbour of ROI voxel ``f`` along an offset is ``f + flat_offset``. It never wraps into another row, slice or
  item: a coordinate one step beyond the box, on either side, lands on the background row, column or slice of
  the next (or this) box.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from radpersona.errors import InputDataError

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
    """Grey levels 1..Ng of one ROI's ``values``: ``numpy.digitize(values, bin_edges(values, w))`` (reference)."""
    return np.digitize(values, bin_edges(values, bin_width)).astype(np.int64)


def discretise_batch(values: np.ndarray, counts: np.ndarray, bin_width: float) -> np.ndarray:
    """:func:`discretise` of every item at once; ``values`` holds the items' ROI intensities one after another
    (``counts[b]`` values for item b, every count >= 1).

    The level of x is the number of edges <= x. ``numpy.arange(low, high, w)`` fills e_0 = low, e_1 = low + w and
    e_k = low + k d for k >= 2, d = (low + w) - low; where low + 1 d == low + w (checked per item; else e_1 is
    patched in), every edge is e_k = low + k d. The estimate floor((x - low) / d) + 1 (off by at most one) is
    corrected against those very edges, so the result equals ``numpy.digitize`` bit for bit (also for x exactly on
    an edge). The edge list always holds >= 2 edges (high - low >= 2 w), and x < max + w <= last edge.
    """
    values = np.asarray(values, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    minimum = np.minimum.reduceat(values, starts)
    low_item = minimum - np.mod(minimum, bin_width)
    first_item = low_item + bin_width  # e_1
    delta_item = first_item - low_item  # arange's step for k >= 2
    low = np.repeat(low_item, counts)
    delta = np.repeat(delta_item, counts)
    level = np.floor((values - low) / delta) + 1.0  # float: exact small integers, no casts
    level += low + level * delta <= values  # e_level <= x: one more edge
    level -= low + (level - 1.0) * delta > values  # e_(level - 1) > x: one edge fewer
    patch = np.flatnonzero(low_item + delta_item != first_item)  # items whose e_1 is not low + d
    if len(patch):
        item = np.repeat(np.arange(len(counts)), counts)
        redo = np.flatnonzero(np.isin(item, patch) & (level <= 2.0))
        for k in redo.tolist():
            b = item[k]
            level[k] = np.searchsorted(
                np.array([low_item[b], first_item[b], low_item[b] + 2 * delta_item[b]]), values[k], side="right"
            )
    return level.astype(np.int64)


def roi_groups(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray]
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Items of one array shape at a time: (their indices, their images stacked (G, Z, Y, X), their boolean ROIs
    ``mask > 0`` stacked), so that the work per item is vectorised over the stack."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for k, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(k)
    for index in by_shape.values():
        stacked_masks = np.stack([masks[k] for k in index])
        rois = stacked_masks if stacked_masks.dtype == bool else stacked_masks > 0
        yield np.asarray(index), np.stack([images[k] for k in index]), rois


def first_and_end(hit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a (G, L) boolean array, the first True index and one past the last (0, L for rows without any)."""
    return hit.argmax(1), hit.shape[1] - hit[:, ::-1].argmax(1)


@dataclass
class PreparedRois:
    """Items' ROIs cropped to their bounding boxes, with intensities and grey levels (see :func:`prepare_rois`)."""

    item: np.ndarray  # (M,) the original index of each prepared item, in prepared order
    crops: list[np.ndarray]  # cropped boolean ROIs
    values: np.ndarray  # ROI intensities (float64), item after item, C order within each box
    levels: np.ndarray  # their grey levels 1..Ng (int64)
    counts: np.ndarray  # (M,) ROI voxels per item
    starts: np.ndarray  # (M,) offset of each item's first value
    box_sizes: np.ndarray  # (M, 3)
    n_levels: np.ndarray  # (M,) Ng, the highest grey level of each ROI


def prepare_rois(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    bin_width: float,
    with_levels: bool = True,
    min_voxels: int = 2,
) -> tuple[PreparedRois, np.ndarray]:
    """Crop every ROI (``mask > 0``) of at least ``min_voxels`` voxels to its bounding box, gather its intensities
    and discretise them; items of one array shape are handled together (:func:`roi_groups`).

    Returns the prepared items and the ROI voxel count of every item. With ``with_levels=False`` (for families
    that ignore intensities, i.e. shape) every ROI voxel gets grey level 1 instead of its discretised level, and
    intensity 0.

    Raises:
        InputDataError: an image has non-finite values inside its ROI.
    """
    all_counts = np.zeros(len(images), dtype=np.int64)
    crops: list[np.ndarray] = []
    item, values, count_parts, boxes = [], [], [], []
    for index, stack, rois in roi_groups(images, masks):
        n = rois.reshape(len(index), -1).sum(1)
        all_counts[index] = n
        check_finite(index, stack, rois)
        keep = np.flatnonzero(n >= min_voxels)
        if len(keep) == 0:
            continue
        if len(keep) < len(index):
            rois, stack, n = rois[keep], stack[keep], n[keep]
        if (n == rois[0].size).all():  # whole boxes (e.g. texture on whole patches)
            z0, y0, x0 = (np.zeros(len(keep), dtype=np.int64) for _ in range(3))
            z1, y1, x1 = (np.full(len(keep), k, dtype=np.int64) for k in rois.shape[1:])
            crops.extend(rois)
            if with_levels:
                values.append(stack.reshape(-1).astype(np.float64, copy=False))
        else:
            z0, z1 = first_and_end(np.any(rois, axis=(2, 3)))
            y0, y1 = first_and_end(np.any(rois, axis=(1, 3)))
            x0, x1 = first_and_end(np.any(rois, axis=(1, 2)))
            for g in range(len(keep)):
                crops.append(rois[g, z0[g] : z1[g], y0[g] : y1[g], x0[g] : x1[g]])
            if with_levels:  # families that ignore intensities (shape) need no values
                # item after item, C order (numpy.compress: much faster than boolean indexing)
                values.append(np.compress(rois.reshape(-1), stack.reshape(-1)).astype(np.float64, copy=False))
        item.append(index[keep])
        count_parts.append(n)
        boxes.append(np.stack([z1 - z0, y1 - y0, x1 - x0], axis=1))
    counts = np.concatenate(count_parts) if count_parts else np.zeros(0, dtype=np.int64)
    if with_levels:
        all_values = np.concatenate(values) if values else np.zeros(0)
        levels = discretise_batch(all_values, counts, bin_width) if len(all_values) else np.zeros(0, dtype=np.int64)
    else:
        all_values = np.zeros(int(counts.sum()))
        levels = np.ones(len(all_values), dtype=np.int64)
    starts = np.cumsum(counts) - counts
    prepared = PreparedRois(
        item=np.concatenate(item) if item else np.zeros(0, dtype=np.int64),
        crops=crops,
        values=all_values,
        levels=levels,
        counts=counts,
        starts=starts,
        box_sizes=np.concatenate(boxes) if boxes else np.zeros((0, 3), dtype=np.int64),
        n_levels=np.maximum.reduceat(levels, starts) if len(levels) else np.zeros(0, dtype=np.int64),
    )
    return prepared, all_counts


def check_finite(index: np.ndarray, stack: np.ndarray, rois: np.ndarray) -> None:
    """Raise :class:`InputDataError` naming the first item (original ``index``) with non-finite ROI intensities."""
    if np.issubdtype(stack.dtype, np.floating) and not np.isfinite(stack).all():
        bad = ~np.isfinite(stack) & rois
        hit = bad.reshape(len(index), -1).any(1)
        if hit.any():
            raise InputDataError(f"item {int(index[hit.argmax()])}: the image has non-finite values inside the mask")


@dataclass
class RoiBatch:
    """ROIs of several items, cropped, discretised and laid out on one device (see the module docstring).

    Attributes:
        counts: (B,) numpy, number of ROI voxels per item; ``n_voxels`` the same as a tensor.
        starts: (B,) numpy, offset of each item's first voxel in the ROI voxel lists.
        box_sizes: (B, 3) numpy array, each item's bounding-box size (slices, rows, cols).
        n_levels: (B,) Ng, the highest grey level present in each ROI (floating dtype).
        max_level: G, the highest grey level over the batch.
        spacing: voxel spacing (slices, rows, cols) in mm.
        dtype, device: the floating dtype and device of the tensors.
        padded_shape: (Zp, Yp, Xp) = common box + 1 (background slice, row and column before the voxels).
        box_masks: (B + 1, Zp, Yp, Xp) numpy, the ROIs in the padded boxes (on the host; the last box is empty).
        rank_flat: ((B + 1) * Zp * Yp * Xp,) int32 compact rank + 1 of the grey level, 0 outside the ROI.
        roi_index: (N,) flat indices (into the flat padded layout) of all ROI voxels, item-major, C order.
        roi_item: (N,) item of each ROI voxel.
        roi_values: (N,) intensity of each ROI voxel (floating dtype).
        roi_grey: (N,) grey level of each ROI voxel.
        roi_rank: (N,) compact rank (0..Gc-1) of each ROI voxel's grey level.
        level_values: (B, Gc) grey level of each compact rank, 0 beyond the item's present levels.
        n_present: (B,) numpy, number of distinct grey levels in each ROI.
    """

    counts: np.ndarray
    starts: np.ndarray
    n_voxels: torch.Tensor
    box_sizes: np.ndarray
    n_levels: torch.Tensor
    max_level: int
    spacing: tuple[float, float, float]
    dtype: torch.dtype
    device: torch.device
    padded_shape: tuple[int, int, int]
    box_masks: np.ndarray
    rank_flat: torch.Tensor
    roi_index: torch.Tensor
    roi_item: torch.Tensor
    roi_values: torch.Tensor
    roi_grey: torch.Tensor
    roi_rank: torch.Tensor
    level_values: torch.Tensor
    n_present: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def size(self) -> int:
        """Number of items B in the batch."""
        return len(self.counts)

    @property
    def on_cpu(self) -> bool:
        """True when the tensors live on the CPU (numpy kernels may then work on them without copies)."""
        return self.device.type == "cpu"

    @property
    def n_compact(self) -> int:
        """Gc, the largest number of distinct grey levels of a ROI in the batch."""
        return int(self.level_values.shape[1])

    @property
    def mask(self) -> torch.Tensor:
        """(B, Z, Y, X) the ROIs in the common box (a view of ``rank_flat != 0``)."""
        if "mask" not in self._cache:
            self._cache["mask"] = self._inner(self.rank_flat != 0)
        return self._cache["mask"]

    @property
    def grey_flat(self) -> torch.Tensor:
        """(B * Zp * Yp * Xp,) int32 grey levels in the flat padded layout, 0 outside the ROI (made on first use)."""
        if "grey_flat" not in self._cache:
            if self.on_cpu:
                grey_np = np.zeros(self.rank_flat.shape[0], dtype=np.int32)
                grey_np[self.roi_index.numpy()] = self.roi_grey.numpy().astype(np.int32)  # same dtype: a fast scatter
                self._cache["grey_flat"] = torch.from_numpy(grey_np)
            else:
                grey = torch.zeros(self.rank_flat.shape, dtype=torch.int32, device=self.device)
                grey[self.roi_index] = self.roi_grey.to(torch.int32)
                self._cache["grey_flat"] = grey
        return self._cache["grey_flat"]

    @property
    def rank(self) -> torch.Tensor:
        """(B, Z, Y, X) compact grey-level rank + 1 in the common box, 0 outside the ROI (a view of ``rank_flat``)."""
        return self._inner(self.rank_flat)

    @property
    def padded_mask(self) -> np.ndarray:
        """(B, Zp + 1, Yp + 1, Xp + 1) numpy: every ROI with one voxel of background on each side."""
        if "padded_mask" not in self._cache:
            self._cache["padded_mask"] = np.pad(self.box_masks[:-1], ((0, 0), (0, 1), (0, 1), (0, 1)))
        return self._cache["padded_mask"]

    def boxes(self, flat: torch.Tensor) -> torch.Tensor:
        """(B, Zp, Yp, Xp) view of a tensor in the flat padded layout (without the trailing empty box)."""
        zp, yp, xp = self.padded_shape
        return flat[: self.size * zp * yp * xp].reshape(self.size, zp, yp, xp)

    def _inner(self, flat: torch.Tensor) -> torch.Tensor:
        return self.boxes(flat)[:, 1:, 1:, 1:]

    @property
    def item_rank(self) -> torch.Tensor:
        """(N,) int64 cell of every ROI voxel in per-item rank tables: item * Gc + compact rank (made on first use)."""
        if "item_rank" not in self._cache:
            if self.on_cpu:
                base = np.repeat(np.arange(self.size, dtype=np.int64) * self.n_compact, self.counts)
                self._cache["item_rank"] = torch.from_numpy(base + self.roi_rank.numpy())
            else:
                self._cache["item_rank"] = self.roi_item * self.n_compact + self.roi_rank
        return self._cache["item_rank"]

    def flat_offset(self, offset: Sequence[int]) -> int:
        """Flat-index step of a (slice, row, col) offset in the padded layout."""
        _, yp, xp = self.padded_shape
        return int((offset[0] * yp + offset[1]) * xp + offset[2])

    def segment_sum(self, values: torch.Tensor) -> torch.Tensor:
        """(B,) per-item sums of ``values`` given per ROI voxel (N,) (contiguous segments of the voxel lists)."""
        if self.on_cpu:
            return torch.from_numpy(np.add.reduceat(values.numpy(), self.starts))
        lengths = torch.as_tensor(self.counts, device=self.device)
        return torch.segment_reduce(values, "sum", lengths=lengths)

    def per_voxel(self, item_values: torch.Tensor) -> torch.Tensor:
        """(N,) ``item_values[roi_item]``: each ROI voxel gets its item's value."""
        if self.on_cpu:
            return torch.from_numpy(np.repeat(item_values.numpy(), self.counts))
        return item_values[self.roi_item]

    def equal_neighbour_pairs(self) -> list[torch.Tensor]:
        """Per direction of ``DIRECTIONS``, a boolean tensor over flat padded positions f < len - step (step the
        direction's :meth:`flat_offset`): True where f and f + step are both ROI voxels of one grey level.
        Computed once per batch (slices of ``rank_flat``; a ROI voxel's flat successor is its true neighbour)."""
        if "equal_pairs" not in self._cache:
            small = np.uint8 if self.n_compact < 255 else np.int32
            if self.on_cpu:
                ranks_np = self.rank_flat.numpy().astype(small)
                inside_np = ranks_np != 0
                pairs = []
                for d in DIRECTIONS:
                    step = self.flat_offset(d)
                    same = ranks_np[:-step] == ranks_np[step:]
                    same &= inside_np[:-step]
                    pairs.append(torch.from_numpy(same))
            else:
                ranks = self.rank_flat.to(torch.uint8 if small is np.uint8 else torch.int32)
                inside = ranks != 0
                pairs = []
                for d in DIRECTIONS:
                    step = self.flat_offset(d)
                    pairs.append((ranks[:-step] == ranks[step:]) & inside[:-step])
            self._cache["equal_pairs"] = pairs
        return self._cache["equal_pairs"]


def build_batch(
    images: Sequence[np.ndarray],
    rois: Sequence[np.ndarray],
    *,
    spacing: tuple[float, float, float],
    bin_width: float,
    dtype: torch.dtype,
    device: torch.device,
    with_levels: bool = True,
) -> RoiBatch:
    """Crop, discretise and lay out the ROIs (of two voxels or more) ``rois`` of ``images`` as one :class:`RoiBatch`
    (items in the order of :func:`prepare_rois`)."""
    prepared, _ = prepare_rois(images, rois, bin_width, with_levels)
    return layout_batch(prepared, range(len(prepared.crops)), spacing=spacing, dtype=dtype, device=device)


def layout_batch(
    prepared: PreparedRois,
    items: Sequence[int],
    *,
    spacing: tuple[float, float, float],
    dtype: torch.dtype,
    device: torch.device,
) -> RoiBatch:
    """The :class:`RoiBatch` of the prepared ROIs ``items`` (in that order): flat padded boxes, compact ranks."""
    item_index = np.asarray(items, dtype=np.int64)
    n_items = len(item_index)
    counts = prepared.counts[item_index]
    if np.array_equal(item_index, np.arange(len(prepared.counts))):
        all_values, all_levels = prepared.values, prepared.levels
    else:  # gather the items' voxel segments
        starts_new = np.cumsum(counts) - counts
        index = np.repeat(prepared.starts[item_index] - starts_new, counts) + np.arange(int(counts.sum()))
        all_values, all_levels = prepared.values[index], prepared.levels[index]
    starts = np.cumsum(counts) - counts
    box_sizes = prepared.box_sizes[item_index]
    zp, yp, xp = (int(n) + 1 for n in box_sizes.max(axis=0))
    mask_pad = np.zeros((n_items + 1, zp, yp, xp), dtype=bool)
    full = counts == np.prod(box_sizes, axis=1)
    # runs of consecutive whole boxes of one size are filled at once, other items one by one
    continues = np.zeros(n_items, dtype=bool)  # item b continues the run of item b - 1
    continues[1:] = full[1:] & full[:-1] & (box_sizes[1:] == box_sizes[:-1]).all(1)
    run_starts = np.flatnonzero(~continues).tolist() + [n_items]
    for b0, b1 in zip(run_starts[:-1], run_starts[1:]):
        z, y, x = box_sizes[b0]
        mask_pad[b0:b1, 1 : z + 1, 1 : y + 1, 1 : x + 1] = True if full[b0] else prepared.crops[item_index[b0]]
    roi_index = np.flatnonzero(mask_pad)  # item-major, C order within each box = order of the values
    max_level = int(all_levels.max())
    if max_level == 1:  # one grey level (e.g. shape alone, which ignores intensities): rank 0 everywhere
        n_present = np.ones(n_items, dtype=np.int64)
        roi_rank = np.zeros(len(all_levels), dtype=np.int64)
        level_values = np.ones((n_items, 1), dtype=np.int64)
        rank_flat = mask_pad.reshape(-1).astype(np.int32)
    else:  # compact ranks: position of each grey level among the levels present in its ROI
        item_level = np.repeat(np.arange(n_items) * (max_level + 1), counts) + all_levels
        present = np.zeros((n_items, max_level + 1), dtype=bool)
        present.reshape(-1)[item_level] = True
        n_present = present.sum(1)
        rank_map = np.cumsum(present, axis=1) - 1
        roi_rank = np.take(rank_map.reshape(-1), item_level)
        level_values = np.zeros((n_items, int(n_present.max())), dtype=np.int64)
        pi, pl = np.nonzero(present)
        level_values[pi, rank_map[pi, pl]] = pl
        rank_flat = np.zeros(mask_pad.size, dtype=np.int32)
        rank_flat[roi_index] = (roi_rank + 1).astype(np.int32)  # same dtype: a fast scatter

    def to(array: np.ndarray, tensor_dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(device=device, dtype=tensor_dtype)

    return RoiBatch(
        counts=counts,
        starts=starts,
        n_voxels=to(counts),
        box_sizes=box_sizes,
        n_levels=to(prepared.n_levels[item_index], dtype),
        max_level=max_level,
        spacing=spacing,
        dtype=dtype,
        device=device,
        padded_shape=(zp, yp, xp),
        box_masks=mask_pad,
        rank_flat=to(rank_flat),
        roi_index=to(roi_index),
        roi_item=to(np.repeat(np.arange(n_items), counts)),
        roi_values=to(all_values, dtype),
        roi_grey=to(all_levels),
        roi_rank=to(roi_rank),
        level_values=to(level_values),
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


def group_sizes(sizes: np.ndarray, ratio: float = 0.8) -> np.ndarray:
    """Padded size of every item for work done in groups of similar sizes (e.g. matrices over the present grey
    levels): each group holds the sizes in (ratio * largest, largest] and is padded to its largest (bounded
    padding, few groups)."""
    size = np.zeros(len(sizes), dtype=np.int64)
    order = np.argsort(-sizes, kind="stable")
    top = 0
    for k in order:
        if sizes[k] <= ratio * top:
            top = 0
        top = top or int(sizes[k])
        size[k] = top
    return size


def angle_mean(values: torch.Tensor, weight: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Mean over angles (``dim``) of ``values`` where ``weight`` (broadcastable) is True and the value is not NaN
    (numpy.nanmean; NaN where no angle qualifies)."""
    use = weight & ~torch.isnan(values)
    total = torch.where(use, values, torch.zeros_like(values)).sum(dim)
    count = use.sum(dim).to(values.dtype)
    return total / count
