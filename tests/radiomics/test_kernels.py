"""The engine's batched kernels against direct (per item, brute-force) computations, and its torch code paths (the
ones CUDA runs) against its host (numpy) paths on the CPU."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from radpersona.radiomics import ALL_FAMILIES, extract_features, glrlm, shape
from radpersona.radiomics._batch import DIRECTIONS, RoiBatch, build_batch, discretise, discretise_batch, group_sizes


def _mixed_items(seed: int = 4) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Whole boxes and irregular masks of varied shapes and grey-level counts (several GLCM groups)."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for k in range(14):
        shape_k = tuple(int(v) for v in rng.integers(2, 12, size=3))
        spread = float(rng.choice([15.0, 60.0, 250.0]))
        images.append(rng.normal(300, spread, shape_k).round())
        masks.append(np.ones(shape_k, bool) if k % 2 else rng.random(shape_k) > 0.35)
    return images, masks


def test_discretise_batch_equals_numpy_digitize():
    rng = np.random.default_rng(0)
    for _trial in range(400):
        width = float(rng.choice([25.0, 0.1, 3.7, 1e-3, 1.0, 7.0, 1e3]))
        offset = float(rng.choice([0.0, -500.0, 123.456, 1e6, -1e4]))
        items = []
        for count in rng.integers(1, 40, size=int(rng.integers(1, 5))):
            kind = rng.integers(0, 3)
            if kind == 0:
                items.append(rng.normal(offset, 100 * width, count))
            elif kind == 1:  # exactly on edges
                items.append(rng.integers(-20, 20, count) * width + offset)
            else:
                items.append(np.round(rng.normal(offset, 50 * width, count)))
        got = discretise_batch(np.concatenate(items), np.array([len(v) for v in items]), width)
        want = np.concatenate([discretise(v, width) for v in items])
        np.testing.assert_array_equal(got, want)


def test_group_sizes_bound_the_padding():
    sizes = np.array([23, 1, 7, 18, 19, 2, 23, 11, 14, 14, 9])
    padded = group_sizes(sizes)
    assert (padded >= sizes).all() and (0.8 * padded < sizes).all()
    assert set(padded) <= set(sizes)


def test_torch_paths_equal_host_paths(monkeypatch, cases):
    """Every family through the torch-only code (as on CUDA) on CPU tensors, against the numpy host kernels."""
    images, masks = _mixed_items()
    images += [c[1] for c in cases]
    masks += [c[2] for c in cases]
    kw = dict(spacing=(2.0, 0.7, 0.9), families=ALL_FAMILIES, bin_width=20.0, voxel_array_shift=5.0)
    host = extract_features(images, masks, **kw)
    monkeypatch.setattr(RoiBatch, "on_cpu", property(lambda self: False))
    torch_only = extract_features(images, masks, **kw)
    np.testing.assert_allclose(torch_only.to_numpy(), host.to_numpy(), rtol=1e-9, atol=1e-12)
    assert (torch_only.attrs["status"] == host.attrs["status"]).all().all()


def test_items_alone_equal_items_in_a_batch():
    images, masks = _mixed_items(seed=9)
    kw = dict(spacing=(1.5, 0.8, 0.8), families=ALL_FAMILIES, bin_width=15.0)
    together = extract_features(images, masks, **kw).to_numpy()
    alone = np.vstack([extract_features([im], [m], **kw).to_numpy() for im, m in zip(images, masks)])
    np.testing.assert_allclose(together, alone, rtol=1e-10, atol=1e-12)


def _vertices(padded: np.ndarray) -> list[np.ndarray]:
    """Every mesh vertex (doubled coordinates) of each padded mask, directly from the edges between voxels."""
    out = []
    for mask in padded:
        points = []
        for axis in range(3):
            hi = tuple(slice(1, None) if a == axis else slice(None) for a in range(3))
            lo = tuple(slice(None, -1) if a == axis else slice(None) for a in range(3))
            coords = np.argwhere(mask[hi] != mask[lo]) * 2
            coords[:, axis] += 1
            points.append(coords)
        out.append(np.concatenate(points))
    return out


@pytest.mark.parametrize("all_offsets_max", [0, 40])  # offset by offset (pruned) / all line offsets at once
def test_mesh_diameters_equal_brute_force(monkeypatch, all_offsets_max):
    monkeypatch.setattr(shape, "_ALL_OFFSETS_MAX", all_offsets_max)
    monkeypatch.setattr(shape, "_GAP_BUDGET", 2000)  # several chunks of items
    rng = np.random.default_rng(2)
    padded = np.zeros((12, 9, 10, 12), bool)
    for k in range(len(padded)):
        padded[k, 1:-1, 1:-1, 1:-1] = rng.random((7, 8, 10)) > rng.uniform(0.3, 0.9)
    padded[0, 1:-1, 1:-1, 1:-1] = False
    padded[0, 4, 2:7, 3] = True  # a line
    spacing = (2.5, 0.6, 0.9)
    got = shape.mesh_diameters(padded, spacing)
    half = np.asarray(spacing) / 2
    for k, verts in enumerate(_vertices(padded)):
        phys = verts * half
        d2 = ((phys[:, None, :] - phys[None, :, :]) ** 2).sum(-1)
        want = [np.sqrt(d2.max())]
        for axis in (0, 1, 2):  # slice (same z), column (same y), row (same x)
            same = verts[:, None, axis] == verts[None, :, axis]
            want.append(np.sqrt(np.where(same, d2, 0).max()))
        np.testing.assert_allclose(got[k], [want[1], want[2], want[3], want[0]], rtol=1e-12)


def _brute_runs(rank: np.ndarray, direction: tuple[int, int, int]) -> dict[tuple[int, int], int]:
    """{(rank, length): count} of the runs along one direction in a (Z, Y, X) array of ranks + 1 (0 outside)."""
    counts: dict[tuple[int, int], int] = {}
    shape_ = np.array(rank.shape)
    d = np.array(direction)
    for start in itertools.product(*(range(n) for n in rank.shape)):
        p = np.array(start)
        prev = p - d
        value = rank[tuple(p)]
        if value == 0 or ((prev >= 0).all() and (prev < shape_).all() and rank[tuple(prev)] == value):
            continue
        length = 0
        while (p >= 0).all() and (p < shape_).all() and rank[tuple(p)] == value:
            length += 1
            p = p + d
        counts[(int(value) - 1, length)] = counts.get((int(value) - 1, length), 0) + 1
    return counts


def test_run_lengths_equal_brute_force():
    images, masks = _mixed_items(seed=5)
    batch = build_batch(
        images, masks, spacing=(1.0, 1.0, 1.0), bin_width=40.0, dtype=torch.float64, device=torch.device("cpu")
    )
    allowed = torch.ones(batch.size, len(DIRECTIONS), dtype=torch.bool)
    single, (cells, lengths), counts = glrlm.run_lengths(batch, allowed)
    nb, na, g = single.shape
    ranks = batch.rank.numpy()
    for b in range(nb):
        z, y, x = batch.box_sizes[b]
        for a, d in enumerate(DIRECTIONS):
            want = _brute_runs(ranks[b, :z, :y, :x], d)
            got = {(r, 1): int(single[b, a, r]) for r in range(g) if single[b, a, r]}
            sel = cells // g == b * na + a
            got.update({(int(c % g), int(n)): int(k) for c, n, k in zip(cells[sel], lengths[sel], counts[sel])})
            assert got == want, (b, d)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float64_equals_cpu():
    images, masks = _mixed_items(seed=3)
    kw = dict(spacing=(2.0, 0.8, 0.8), families=ALL_FAMILIES, bin_width=20.0)
    cpu = extract_features(images, masks, **kw)
    gpu = extract_features(images, masks, device="cuda", dtype="float64", **kw)
    np.testing.assert_allclose(gpu.to_numpy(), cpu.to_numpy(), rtol=1e-9, atol=1e-12)


def test_cube_index_sets_one_bit_per_inside_corner():
    from radpersona.radiomics._tables import CORNERS

    rng = np.random.default_rng(8)
    mask = rng.random((3, 5, 6, 7)) > 0.5
    nb, nz, ny, nx = mask.shape
    want = np.zeros((nb, nz - 1, ny - 1, nx - 1), dtype=np.uint8)
    for bit, (cz, cy, cx) in enumerate(CORNERS):
        want |= mask[:, cz : cz + nz - 1, cy : cy + ny - 1, cx : cx + nx - 1].astype(np.uint8) << bit
    np.testing.assert_array_equal(shape.cube_index(mask), want)


def test_blocks_and_chunks_do_not_change_results(monkeypatch):
    import radpersona.radiomics as engine

    images, masks = _mixed_items(seed=12)
    kw = dict(spacing=(1.2, 0.9, 0.9), families=ALL_FAMILIES, bin_width=18.0)
    whole = extract_features(images, masks, **kw)
    monkeypatch.setattr(engine, "_PREPARE_BUDGET", 600)  # a few items per prepared block
    monkeypatch.setattr(engine, "_VOXEL_BUDGET", 1500)  # and several chunks per block
    split = extract_features(images, masks, **kw)
    np.testing.assert_allclose(split.to_numpy(), whole.to_numpy(), rtol=1e-10, atol=1e-12)
    assert (split.attrs["status"] == whole.attrs["status"]).all().all()


@pytest.mark.parametrize("torch_only", [False, True], ids=["host", "torch"])
def test_float32_agrees_with_float64(monkeypatch, cases, torch_only):
    """float32 (the CUDA default) within 1e-3 of float64, on the host kernels and on the torch-only code."""
    images, masks = _mixed_items(seed=6)
    images += [c[1] for c in cases]
    masks += [c[2] for c in cases]
    kw = dict(spacing=(2.0, 0.8, 0.8), families=ALL_FAMILIES, bin_width=20.0)
    double = extract_features(images, masks, **kw).to_numpy()
    if torch_only:
        monkeypatch.setattr(RoiBatch, "on_cpu", property(lambda self: False))
    single = extract_features(images, masks, dtype="float32", **kw).to_numpy()
    both_nan = np.isnan(single) & np.isnan(double)
    close = np.abs(single - double) <= 1e-3 * np.abs(double) + 1e-3
    assert (close | both_nan).all()
