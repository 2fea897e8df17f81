"""Tests of the synthetic knee cohort generator (radpersona.synthetic), tiny sizes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from radpersona import VIEWS
from radpersona.errors import ConfigError
from radpersona.layout import Layout
from radpersona.settings import SyntheticSettings, read_config
from radpersona.synthetic import (
    LESION_CODES,
    OTHER_FINDINGS,
    draw_labels,
    generate_cohort,
    lesion_scales,
    other_finding_probability,
    simulate_case,
    view_affine,
)
from radpersona.synthetic.acquisition import upsample

SMALL = dict(matrix=32, slices=(5, 9))
LABEL_FILES = ("abnormal", "acl", "meniscus")


def _files(root: Path) -> dict[str, bytes]:
    """Every regular file below ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Layout, pd.DataFrame]:
    root = tmp_path_factory.mktemp("cohort")
    table = generate_cohort(root / "mrnet", Layout(str(root)), n_train=5, n_valid=3, seed=3, **SMALL)
    return root / "mrnet", Layout(str(root)), table


def test_layout_dtypes_shapes_and_csv(cohort: tuple[Path, Layout, pd.DataFrame]) -> None:
    mrnet, _, table = cohort
    assert list(table.columns) == ["case", "split", "abn", "acl", "men", "patient"]
    assert list(table["case"]) == [f"{i:04d}" for i in range(8)]
    assert list(table["split"]) == ["train"] * 5 + ["valid"] * 3
    assert table["patient"].map(type).eq(str).all() and table["patient"].is_unique
    slice_counts = set()
    for case, split in zip(table["case"], table["split"]):
        for view in VIEWS:
            vol = np.load(mrnet / split / view / f"{case}.npy")
            assert vol.dtype == np.uint8
            assert vol.ndim == 3 and vol.shape[1:] == (32, 32)
            assert 5 <= vol.shape[0] <= 9
            assert vol.max() > 100  # bright tissue (fat/fluid) is present, not an empty volume
            slice_counts.add(vol.shape[0])
    assert len(slice_counts) > 1, "slice count must vary between cases and views"
    for split, ids in (("train", range(5)), ("valid", range(5, 8))):
        assert sorted(p.stem for p in (mrnet / split / "sagittal").glob("*.npy")) == [f"{i:04d}" for i in ids]
        for name, task in zip(LABEL_FILES, ("abn", "acl", "men")):
            lines = (mrnet / f"{split}-{name}.csv").read_text(encoding="utf-8").splitlines()
            assert all(re.fullmatch(r"\d{4},[01]", line) for line in lines), lines  # no header
            assert [line.split(",")[0] for line in lines] == [f"{i:04d}" for i in ids]
            expected = table.set_index("case").loc[[f"{i:04d}" for i in ids], task].tolist()
            assert [int(line.split(",")[1]) for line in lines] == expected


def test_truth_folder_complete(cohort: tuple[Path, Layout, pd.DataFrame]) -> None:
    mrnet, layout, table = cohort
    for case, split, abn, acl, men in table[["case", "split", "abn", "acl", "men"]].itertuples(index=False):
        meta = json.loads(Path(layout.truth_record(case)).read_text(encoding="utf-8"))
        assert meta["labels"]["abn"] == abn and meta["labels"]["acl"] == acl and meta["labels"]["men"] == men
        assert meta["generator_version"] and meta["seed"] == 3
        assert {"rotation", "translation_mm", "scale"} <= set(meta["pose"])
        types = {les["type"] for les in meta["lesions"]}
        assert ("acl_tear" in types) == bool(acl) and ("meniscal_tear" in types) == bool(men)
        for view in VIEWS:
            image = np.load(mrnet / split / view / f"{case}.npy")
            healthy = np.load(layout.truth(case, view, "healthy"))
            lesion = np.load(layout.truth(case, view, "lesion"))
            assert healthy.shape == image.shape == lesion.shape
            assert healthy.dtype == np.uint8 and lesion.dtype == np.uint8
            assert lesion.max() <= max(LESION_CODES.values())
            assert meta["views"][view]["shape"] == list(image.shape)
            if not abn:
                assert not lesion.any()
                np.testing.assert_array_equal(image, healthy)


def _generate(root: Path, **kwargs) -> pd.DataFrame:
    """A cohort with its MRNet layout in ``root/m`` and its truth in the results folder ``root/r``."""
    return generate_cohort(root / "m", Layout(str(root / "r")), **kwargs)


TRUTH = "r/synthetic/truth"  # the truth folder of ``_generate``, relative to its root


def test_determinism_and_case_independence(tmp_path: Path) -> None:
    a = _generate(tmp_path / "a", n_train=2, n_valid=1, seed=11, **SMALL)
    b = _generate(tmp_path / "b", n_train=2, n_valid=1, seed=11, **SMALL)
    pd.testing.assert_frame_equal(a, b)
    files_a, files_b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert files_a.keys() == files_b.keys() and all(files_a[k] == files_b[k] for k in files_a)
    # another seed: different images
    _generate(tmp_path / "c", n_train=2, n_valid=1, seed=12, **SMALL)
    files_c = _files(tmp_path / "c")
    npy = [k for k in files_a if k.endswith(".npy") and k.startswith("m/")]
    assert npy and all(files_a[k] != files_c.get(k) for k in npy)
    # a case depends only on (seed, index): case 0001 of a bigger cohort (and in parallel) is the same
    _generate(tmp_path / "d", n_train=4, n_valid=0, seed=11, workers=2, **SMALL)
    for view in VIEWS:
        for rel in (f"m/train/{view}/0001.npy", f"{TRUTH}/0001_{view}_healthy.npy", f"{TRUTH}/0001_{view}_lesion.npy"):
            assert (tmp_path / "d" / rel).read_bytes() == files_a[rel]


def test_idempotent_rerun_shrink_and_foreign_folder(tmp_path: Path) -> None:
    mrnet, truth = tmp_path / "m", tmp_path / TRUTH
    first = _generate(tmp_path, n_train=3, n_valid=1, seed=5, **SMALL)
    before = _files(tmp_path)
    again = _generate(tmp_path, n_train=3, n_valid=1, seed=5, **SMALL)
    pd.testing.assert_frame_equal(first, again)
    assert _files(tmp_path) == before
    # a smaller cohort removes the files of cases that left it
    _generate(tmp_path, n_train=2, n_valid=1, seed=5, **SMALL)
    assert not (mrnet / "train" / "axial" / "0002.npy").exists()
    assert not (mrnet / "valid" / "axial" / "0003.npy").exists()
    assert (mrnet / "valid" / "axial" / "0002.npy").exists()
    assert not list(truth.glob("0003*"))
    assert (mrnet / "valid-acl.csv").read_text(encoding="utf-8").splitlines()[0].startswith("0002,")
    foreign = tmp_path / "real_mrnet"
    foreign.mkdir()
    (foreign / "train-acl.csv").write_text("0000,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not empty"):
        generate_cohort(foreign, Layout(str(tmp_path / "t2")), n_train=1, n_valid=0, seed=0, **SMALL)
    assert (foreign / "train-acl.csv").read_text(encoding="utf-8") == "0000,1\n"
    # empty folders (Snakemake makes the folders of a rule's outputs before it runs) are not foreign
    fresh = tmp_path / "fresh"
    (fresh / "m" / "train" / "sagittal").mkdir(parents=True)
    (fresh / TRUTH).mkdir(parents=True)
    assert len(_generate(fresh, n_train=1, n_valid=0, seed=0, **SMALL)) == 1


def test_invalid_settings_are_refused_naming_the_key(repo: Path) -> None:
    """Bad synthetic settings are refused by the settings (the generator does not check them again)."""
    base = read_config(repo / "config.yaml")["synthetic"]
    with pytest.raises(ConfigError, match="difficulty"):
        SyntheticSettings.from_config({**base, "difficulty": 1.5})
    with pytest.raises(ConfigError, match="slices"):
        SyntheticSettings.from_config({**base, "slices": [9, 3]})
    with pytest.raises(ConfigError, match=r"prevalence\.abn"):
        SyntheticSettings.from_config({**base, "prevalence": {"abn": 0.2, "acl": 0.3, "men": 0.3}})
    with pytest.raises(ConfigError, match=r"prevalence\.men'.*required"):
        SyntheticSettings.from_config({**base, "prevalence": {"abn": 0.8, "acl": 0.2}})


def test_label_logic_and_prevalence() -> None:
    prevalence = {"abn": 0.808, "acl": 0.184, "men": 0.351}
    n = 4000
    draws = [draw_labels(np.random.default_rng([2024, i]), prevalence) for i in range(n)]
    abn = np.array([d.abn for d in draws])
    acl = np.array([d.acl for d in draws])
    men = np.array([d.men for d in draws])
    other = np.array([bool(d.other) for d in draws])
    assert np.all(abn[(acl == 1) | (men == 1)] == 1)
    assert all(d.other for d in draws if d.abn and not (d.acl or d.men))  # abnormal without tear: a finding
    assert not any(d.other for d in draws if not d.abn)
    assert all(set(d.other) <= set(OTHER_FINDINGS) for d in draws)
    for values, p in ((abn, 0.808), (acl, 0.184), (men, 0.351)):
        tolerance = 4.5 * np.sqrt(p * (1 - p) / n)
        assert abs(values.mean() - p) < tolerance, (values.mean(), p)
    # other findings are independent of the tear labels (no shortcut through effusion etc.)
    q = other_finding_probability(prevalence)
    assert q == pytest.approx((0.808 - (1 - 0.816 * 0.649)) / (0.816 * 0.649))
    for mask in (acl == 1, acl == 0, men == 1, men == 0):
        tolerance = 4.5 * np.sqrt(q * (1 - q) / mask.sum())
        assert abs(other[mask].mean() - q) < tolerance
    # the per-case draw is reproducible from its generator
    assert draw_labels(np.random.default_rng([2024, 7]), prevalence) == draws[7]


def test_upsample_is_linear_with_grid_alignment() -> None:
    factor, n = 2, 8
    coarse_pos = (np.arange(n) + 0.5) * factor - 0.5  # coarse sample centres in fine-index units
    coarse = np.broadcast_to((3.0 * coarse_pos[:, None] + 2.0 * coarse_pos[None, :])[None], (2, n, n)).astype(
        np.float32
    )
    fine = upsample(coarse, factor)
    pos = np.arange(n * factor)
    expected = 3.0 * pos[:, None] + 2.0 * pos[None, :]
    np.testing.assert_allclose(fine[1, 1:-1, 1:-1], expected[1:-1, 1:-1], atol=1e-4)


def _segment_plane_distance(p0: np.ndarray, p1: np.ndarray, origin: np.ndarray, normal: np.ndarray) -> float:
    """Distance between a segment and a plane (0 when the segment crosses it)."""
    d0, d1 = float((p0 - origin) @ normal), float((p1 - origin) @ normal)
    return 0.0 if d0 * d1 <= 0 else min(abs(d0), abs(d1))


def test_acl_tear_visible_in_every_view_that_crosses_it(tmp_path: Path) -> None:
    prevalence = {"abn": 1.0, "acl": 1.0, "men": 0.0}
    table = _generate(tmp_path, n_train=4, n_valid=0, seed=21, prevalence=prevalence, matrix=64)
    assert table["acl"].eq(1).all()
    truth = tmp_path / TRUTH
    for case in table["case"]:
        meta = json.loads((truth / f"{case}.json").read_text(encoding="utf-8"))
        (tear,) = [les for les in meta["lesions"] if les["type"] == "acl_tear"]
        p0, p1 = np.asarray(tear["gap_start_world"]), np.asarray(tear["gap_end_world"])
        radius = tear["radius_mm"] * meta["pose"]["scale"]
        crossed = visible = 0
        for view in VIEWS:
            mask = np.load(truth / f"{case}_{view}_lesion.npy") == LESION_CODES["acl_tear"]
            image = np.load(tmp_path / "m" / "train" / view / f"{case}.npy")
            healthy = np.load(truth / f"{case}_{view}_healthy.npy")
            affine = view_affine(meta, view)
            n_slices, matrix, _ = mask.shape
            normal = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
            view_crossed = False
            for s in range(n_slices):
                origin = affine[:3, :3] @ np.array([s, (matrix - 1) / 2, (matrix - 1) / 2]) + affine[:3, 3]
                distance = _segment_plane_distance(p0, p1, origin, normal)
                if distance <= 0.5 * radius:  # the plane cuts the gap through its core
                    view_crossed = True
                    assert mask[s].any(), f"case {case} {view} slice {s}: tear crossed but not in the mask"
                elif distance > radius:  # no voxel centre of this slice lies inside the gap
                    assert not mask[s].any(), f"case {case} {view} slice {s}: mask outside the tear"
            crossed += view_crossed
            if mask.any():
                visible += 1
                # the torn ACL gap is fluid-bright in the image, dark ligament in the healthy twin
                assert float(image[mask].astype(float).mean() - healthy[mask].astype(float).mean()) > 20
        assert crossed >= 2 and visible >= 2, (case, crossed, visible)


def test_lesions_are_local_and_healthy_twin_is_exact() -> None:
    prevalence = {"abn": 1.0, "acl": 0.5, "men": 0.5}
    seen = set()
    for index in range(4):
        sim = simulate_case(index, seed=8, prevalence=prevalence, matrix=48)
        assert sim.lesions, "every case is abnormal here"
        for view, rendered in sim.views.items():
            image, healthy, mask, influence = rendered
            # identical wherever no lesion has any occupancy (same pose, acquisition and noise)
            np.testing.assert_array_equal(image[~influence], healthy[~influence])
            assert not mask[~influence].any()
            seen.update(int(c) for c in np.unique(mask[mask > 0]))
            # the influence is local: a few pixels and one slice around the > 0.5 mask, apart from
            # partial-volume fringes of lesions too thin to pass 0.5 at a voxel centre
            near = ndimage.binary_dilation(mask > 0, structure=np.ones((3, 7, 7), bool))
            assert (influence & ~near).mean() < 0.01, (index, view)
            if mask.any():
                assert (image[mask > 0] != healthy[mask > 0]).mean() > 0.5
    assert len(seen) >= 3  # several lesion types were drawn and survived into the masks


def test_simulation_matches_written_files(cohort: tuple[Path, Layout, pd.DataFrame]) -> None:
    mrnet, layout, table = cohort
    case, split = table["case"].iloc[-1], table["split"].iloc[-1]
    sim = simulate_case(int(case), seed=3, **SMALL)
    for view in VIEWS:
        np.testing.assert_array_equal(np.load(mrnet / split / view / f"{case}.npy"), sim.views[view].image)
        np.testing.assert_array_equal(np.load(layout.truth(case, view, "healthy")), sim.views[view].healthy)
        np.testing.assert_array_equal(np.load(layout.truth(case, view, "lesion")), sim.views[view].mask)


def test_difficulty_raises_background_noise(tmp_path: Path) -> None:
    prevalence = {"abn": 0.0, "acl": 0.0, "men": 0.0}
    sd = {}
    for difficulty in (0.0, 1.0):
        root = tmp_path / str(difficulty)
        _generate(root, n_train=1, n_valid=0, seed=4, difficulty=difficulty, prevalence=prevalence, **SMALL)
        axial = np.load(root / "m" / "train" / "axial" / "0000.npy").astype(float)
        sd[difficulty] = axial[:, :3, :3].std()  # corner: air, pure (Rician) noise
    assert sd[1.0] > 2 * sd[0.0]


@pytest.mark.parametrize("matrix, slices", [(48, (20, 32)), (256, (3, 4))])
def test_culling_and_lesion_crop_are_exact(
    monkeypatch: pytest.MonkeyPatch, matrix: int, slices: tuple[int, int]
) -> None:
    """Evaluating local shapes in bounding boxes, and redoing the lesioned image only around the
    lesions (matrix 256: interpolated from a coarse grid), changes no voxel."""
    from radpersona.synthetic import acquisition, geometry

    prevalence = {"abn": 1.0, "acl": 1.0, "men": 1.0}
    index = 0  # seed 9, index 0 draws all five lesion types
    fast = simulate_case(index, seed=9, prevalence=prevalence, matrix=matrix, slices=slices)
    assert {les["type"] for les in fast.lesions} == set(LESION_CODES)
    monkeypatch.setattr(geometry.Grid, "block", lambda self, *spheres: geometry.FULL)
    monkeypatch.setattr(acquisition, "pad_block", lambda lo, hi, pad, shape: tuple(slice(0, n) for n in shape))
    full = simulate_case(index, seed=9, prevalence=prevalence, matrix=matrix, slices=slices)
    for view in VIEWS:
        for got, want in zip(fast.views[view], full.views[view]):
            np.testing.assert_array_equal(got, want)


def test_lesion_records_state_their_size_in_mm() -> None:
    """Each lesion record names its size with an ``_mm`` key, and the sizes match the drawn geometry."""
    sizes = {
        "acl_tear": {"gap_mm", "radius_mm"},
        "meniscal_tear": {"width_mm", "r_in_mm", "r_out_mm"},
        "effusion": {"extent_mm"},
        "bone_bruise": {"radii_mm", "edge_mm"},
        "cartilage_defect": {"radius_mm"},
    }
    difficulty = 0.5
    size = lesion_scales(difficulty)[0]
    sim = simulate_case(0, seed=9, prevalence={"abn": 1.0, "acl": 1.0, "men": 1.0}, matrix=32, difficulty=difficulty)
    assert {les["type"] for les in sim.lesions} == set(sizes)
    for les in sim.lesions:
        assert sizes[les["type"]] <= set(les), les
        assert not {"radius", "radii", "extent", "r_in", "r_out"} & set(les)  # no size without its unit
        if les["type"] == "acl_tear":
            assert np.linalg.norm(np.subtract(les["gap_end"], les["gap_start"])) == pytest.approx(les["gap_mm"])
            assert 5.0 * size <= les["gap_mm"] <= 8.0 * size
            assert les["radius_mm"] == pytest.approx(1.3 * sim.anatomy["acl"]["radius"])
        elif les["type"] == "meniscal_tear":
            meniscus = sim.anatomy["menisci"][les["side"]]
            assert (les["r_in_mm"], les["r_out_mm"]) == (meniscus["r_in"], meniscus["r_out"])
            assert les["width_mm"] == max(1.5, 1.8 * size)
        elif les["type"] == "effusion":
            assert 0.6 * size <= les["extent_mm"] <= 1.2 * size
        elif les["type"] == "bone_bruise":
            assert len(les["radii_mm"]) == 3 and all(6.0 * size <= r <= 10.0 * size for r in les["radii_mm"])
            assert les["edge_mm"] == 4.0 * size
        else:
            assert 3.0 * size <= les["radius_mm"] <= 5.0 * size


def test_explaining_does_not_load_the_generator(repo: Path) -> None:
    """Patch words and truth on the grid need only the view orientation, not the synthetic generator."""
    import subprocess
    import sys

    from radpersona.orientation import VIEW_AXES
    from radpersona.synthetic import VIEW_AXES as GENERATOR_AXES

    assert GENERATOR_AXES is VIEW_AXES
    code = (
        "import sys, radpersona.explain, radpersona.truth; "
        "sys.exit(any(m.startswith('radpersona.synthetic') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=repo, check=False).returncode == 0


def test_case_labels_are_the_labels_simulate_case_draws():
    """case_labels reads only a case's label stream: the same labels as the rendered case, for any index."""
    from radpersona.synthetic import case_labels, simulate_case

    prevalence = {"abn": 0.8, "acl": 0.35, "men": 0.5}
    for index in (0, 5, 241):
        rendered = simulate_case(index, seed=7, prevalence=prevalence, slices=(8, 8), matrix=32).labels
        assert case_labels(index, seed=7, prevalence=prevalence) == rendered
