"""Patch grids over the persona box and the long/wide feature tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radpersona.features import assemble_wide, case_features, patch_edges, patch_grid, read_wide
from radpersona.parquet import write_parquet


def test_patch_edges_cover_the_interval():
    for n in (1, 2, 3):
        edges = patch_edges(4, 21, n)
        assert edges[0][0] == 4 and edges[-1][1] == 21
        assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
        assert max(e[1] - e[0] for e in edges) - min(e[1] - e[0] for e in edges) <= 1
    with pytest.raises(ValueError):
        patch_edges(0, 2, 3)


def test_patch_grid_partitions_the_box():
    box = (slice(2, 10), slice(5, 14), slice(3, 20))
    seen = np.zeros((12, 16, 24), int)
    grid = patch_grid(box, 3)
    assert len(grid) == 27 and grid[0][0] == (0, 0, 0) and grid[-1][0] == (2, 2, 2)
    for _, sl in grid:
        seen[sl] += 1
    inside = np.zeros_like(seen)
    inside[box] = 1
    np.testing.assert_array_equal(seen, inside)


def test_case_features_long_and_wide(tmp_path):
    rng = np.random.default_rng(0)
    views = ("sagittal", "coronal", "axial")
    box = (slice(2, 6), slice(2, 8), slice(2, 8))
    paths = []
    for case in ("0000", "0001"):
        volumes = {v: {"original": rng.uniform(0, 1, (8, 10, 10)).astype(np.float32)} for v in views}
        for v in views:
            volumes[v]["persona"] = volumes[v]["original"] * 0.9
            volumes[v]["residual"] = volumes[v]["original"] - volumes[v]["persona"]
        long = case_features(
            case,
            volumes,
            {v: (1.0, 1.0, 1.0) for v in views},
            box=box,
            grid=2,
            families=("firstorder",),
            bin_width=0.05,
        )
        assert list(long.columns) == ["case", "view", "image", "i", "j", "k", "family", "feature", "value", "status"]
        assert (long["status"] == "ok").all()
        # 3 views x 3 images x 8 patches x (19 first-order + 3 location)
        assert len(long) == 3 * 3 * 8 * 22
        sel = long[(long.view == "axial") & (long.image == "original") & (long.i == 1) & (long.j == 0) & (long.k == 1)]
        patch = volumes["axial"]["original"][4:6, 2:5, 5:8]
        assert sel.set_index("feature").loc["Mean", "value"] == pytest.approx(patch.mean(), rel=1e-6)
        path = tmp_path / f"{case}.parquet"
        write_parquet(long, path)
        paths.append(path)
    wide = assemble_wide(paths, tmp_path / "table.parquet", settings={"grid": 2})
    assert wide.shape == (2, 3 * 3 * 8 * 22)
    assert wide.columns[0].count(".") == 4
    assert "axial.original.p101.firstorder.Mean" in wide.columns
    assert list(wide.columns) == sorted(wide.columns, key=lambda c: tuple(c.split(".")))
    again, meta = read_wide(tmp_path / "table.parquet")
    pd.testing.assert_frame_equal(again, wide, check_names=False)
    assert meta["n_features"] == wide.shape[1] and len(meta["settings_hash"]) == 16
