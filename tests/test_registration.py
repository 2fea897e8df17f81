"""NiftyReg registration: tool lookup, QC records and flags, recovery of a known affine, templates, stages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radpersona.errors import ConfigError, InputDataError, ToolNotFoundError
from radpersona.layout import Layout
from radpersona.parquet import read_parquet_metadata
from radpersona.registration import (
    find_niftyreg_tool,
    healthy_training_cases,
    ncc,
    niftyreg_version,
    read_affine,
    reference_case,
    register_volume,
)
from radpersona.settings import RegistrationSettings, read_config
from radpersona.settings.base import REPO_ROOT
from radpersona.stages import register as register_stages
from radpersona.volume import read_volume, write_volume

SETTINGS = RegistrationSettings.from_config(read_config(REPO_ROOT / "config.yaml")["registration"]).replace(
    levels=3, levels_to_perform=3, max_iterations=10, rigid_only=False, ncc_margin=0.05, on_failure="error"
)


def phantom(shape=(32, 48, 48)) -> np.ndarray:
    """A smooth asymmetric phantom: three ellipsoids of different brightness."""
    z, y, x = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    vol = np.zeros(shape, np.float32)
    for (cz, cy, cx), (rz, ry, rx), val in [
        ((16, 24, 24), (10, 16, 14), 1.0),
        ((12, 18, 30), (4, 5, 6), 2.0),
        ((20, 30, 16), (5, 4, 3), 3.0),
    ]:
        vol += val * (((z - cz) / rz) ** 2 + ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1)
    return sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(sitk.GetImageFromArray(vol), 1.0))


def test_tool_is_found():
    assert find_niftyreg_tool("reg_aladin").exists()


def test_recovers_a_known_affine_within_one_voxel(tmp_path):
    ref = phantom()
    image = sitk.GetImageFromArray(ref)  # spacing 1, origin 0, identity direction (LPS world = index x,y,z)
    truth = sitk.AffineTransform(3)
    angle = np.deg2rad(6.0)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    truth.SetMatrix((rot * 1.04).ravel().tolist())
    truth.SetCenter((24.0, 24.0, 16.0))
    truth.SetTranslation((2.0, -1.5, 1.0))
    moved = sitk.Resample(image, image, truth, sitk.sitkLinear, 0.0)  # moved(p) = ref(T(p))
    write_volume(tmp_path / "ref.nii.gz", ref)
    write_volume(tmp_path / "flo.nii.gz", sitk.GetArrayFromImage(moved))
    record = register_volume(
        tmp_path / "ref.nii.gz",
        tmp_path / "flo.nii.gz",
        tmp_path / "res.nii.gz",
        tmp_path / "aff.txt",
        settings=SETTINGS,
        case="c",
        view="sagittal",
    )
    assert record["status"] == "ok" and record["ncc_after"] > record["ncc_before"]
    # reg_aladin's affine maps reference world points (NIfTI RAS) to floating world points.
    affine = read_affine(tmp_path / "aff.txt")
    flip = np.diag([-1.0, -1.0, 1.0])  # ITK's LPS <-> NIfTI's RAS
    rng = np.random.default_rng(0)
    points = rng.uniform([12, 12, 8], [36, 36, 24], (50, 3))  # x, y, z inside the phantom
    ras = points @ flip.T
    flo_ras = (np.c_[ras, np.ones(len(ras))] @ affine.T)[:, :3]
    recovered = flo_ras @ flip.T
    # the floating point q that shows ref point p satisfies T(q) = p, i.e. q = T^-1(p)
    inverse = truth.GetInverse()
    expected = np.array([inverse.TransformPoint(tuple(p)) for p in points])
    error = np.linalg.norm(recovered - expected, axis=1)
    assert error.max() < 1.0, f"max error {error.max():.2f} voxels"
    res, _ = read_volume(tmp_path / "res.nii.gz")
    assert ncc(res, ref) > 0.95


def test_failure_policies(tmp_path, monkeypatch):
    """A reg_aladin that exits non-zero: keep_unregistered keeps the input and flags it; error stops."""
    import radpersona.registration as registration

    ref = phantom((16, 24, 24))
    flo = np.roll(ref, 2, axis=2)
    write_volume(tmp_path / "ref.nii.gz", ref)
    write_volume(tmp_path / "flo.nii.gz", flo)
    monkeypatch.setattr(
        registration, "reg_aladin_command", lambda *a, **k: ["sh", "-c", "echo 'cannot allocate' >&2; exit 3"]
    )
    kept = register_volume(
        tmp_path / "ref.nii.gz",
        tmp_path / "flo.nii.gz",
        tmp_path / "out.nii.gz",
        tmp_path / "out.txt",
        settings=SETTINGS.replace(on_failure="keep_unregistered"),
        case="0007",
        view="axial",
    )
    assert (
        kept["status"].startswith("failed: reg_aladin exit 3: cannot allocate")
        and "kept unregistered" in kept["status"]
    )
    np.testing.assert_array_equal(read_volume(tmp_path / "out.nii.gz")[0], flo)
    np.testing.assert_array_equal(read_affine(tmp_path / "out.txt"), np.eye(4))
    with pytest.raises(InputDataError, match=r"case '0007', view 'axial'.*registration failed"):
        register_volume(
            tmp_path / "ref.nii.gz",
            tmp_path / "flo.nii.gz",
            tmp_path / "o2.nii.gz",
            tmp_path / "o2.txt",
            settings=SETTINGS,
            case="0007",
            view="axial",
        )
    assert not (tmp_path / "o2.nii.gz").exists() and not (tmp_path / "o2.txt").exists()


def test_shape_mismatch_is_named(tmp_path):
    write_volume(tmp_path / "ref.nii.gz", np.zeros((8, 8, 8)))
    write_volume(tmp_path / "flo.nii.gz", np.zeros((8, 8, 6)))
    with pytest.raises(InputDataError, match=r"case '0001', view 'coronal'.*differs from the reference"):
        register_volume(
            tmp_path / "ref.nii.gz",
            tmp_path / "flo.nii.gz",
            tmp_path / "r.nii.gz",
            tmp_path / "a.txt",
            settings=SETTINGS,
            case="0001",
            view="coronal",
        )


def _posed(ref: np.ndarray, angle_deg: float, shift: tuple[float, float, float], scale: float = 1.0) -> np.ndarray:
    """``ref`` moved by a rotation about z, a scale and a shift (about the volume centre)."""
    image = sitk.GetImageFromArray(ref)
    t = sitk.AffineTransform(3)
    a = np.deg2rad(angle_deg)
    t.SetMatrix((np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) * scale).ravel().tolist())
    t.SetCenter(tuple((np.array(ref.shape[::-1]) - 1) / 2.0))
    t.SetTranslation(shift)
    return sitk.GetArrayFromImage(sitk.Resample(image, image, t, sitk.sitkLinear, 0.0))


def test_worse_registration_is_flagged(tmp_path, monkeypatch):
    """A 'registration' whose result correlates worse than the input by more than the margin is flagged."""
    import radpersona.registration as registration

    ref = phantom((16, 24, 24))
    write_volume(tmp_path / "ref.nii.gz", ref)
    write_volume(tmp_path / "flo.nii.gz", np.roll(ref, 1, axis=2))
    write_volume(tmp_path / "bad.nii.gz", np.roll(ref, 9, axis=1))
    np.savetxt(tmp_path / "eye.txt", np.eye(4))
    monkeypatch.setattr(
        registration,
        "reg_aladin_command",
        lambda ref, flo, res, aff, settings, threads=1: [
            "sh",
            "-c",
            f"cp {tmp_path}/bad.nii.gz {res} && cp {tmp_path}/eye.txt {aff}",
        ],
    )
    record = register_volume(
        tmp_path / "ref.nii.gz",
        tmp_path / "flo.nii.gz",
        tmp_path / "out.nii.gz",
        tmp_path / "out.txt",
        settings=SETTINGS.replace(on_failure="keep_unregistered"),
        case="0003",
        view="coronal",
    )
    assert record["status"].startswith("worse: NCC") and record["flagged"] and record["exit_status"] == 0
    np.testing.assert_allclose(read_volume(tmp_path / "out.nii.gz")[0], np.roll(ref, 1, axis=2), atol=1e-5)
    with pytest.raises(InputDataError, match=r"case '0003', view 'coronal'.*registration worse: NCC"):
        register_volume(
            tmp_path / "ref.nii.gz",
            tmp_path / "flo.nii.gz",
            tmp_path / "o.nii.gz",
            tmp_path / "o.txt",
            settings=SETTINGS,
            case="0003",
            view="coronal",
        )


def test_missing_tool_is_a_clear_error(monkeypatch):
    import builtins
    import shutil

    import radpersona.registration as registration

    real_import = builtins.__import__

    def no_niftyreg(name, *args, **kwargs):
        if name == "niftyreg":
            raise ImportError("no niftyreg")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(builtins, "__import__", no_niftyreg)
    registration.find_niftyreg_tool.cache_clear()
    try:
        with pytest.raises(
            ToolNotFoundError,
            match=r"NiftyReg's reg_average was not found on PATH nor in the 'niftyreg'.*pip install niftyreg",
        ):
            registration.find_niftyreg_tool("reg_average")
    finally:
        registration.find_niftyreg_tool.cache_clear()


def test_niftyreg_version():
    assert niftyreg_version("reg_aladin").strip()[0].isdigit()


def test_group_template_and_stages(tmp_path):
    """Template of posed copies: members correlate better with it after registration; stages write contract files."""
    base = phantom((16, 32, 32))
    poses = {
        "0000": (0.0, (0.0, 0.0, 0.0)),
        "0001": (5.0, (2.0, -1.0, 0.0)),
        "0002": (-4.0, (-1.5, 2.0, 1.0)),
        "0003": (3.0, (1.0, 1.0, -1.0)),
    }
    results = str(tmp_path)
    layout = Layout(results)
    for case, (angle, shift) in poses.items():
        for view in ("sagittal", "axial"):
            write_volume(layout.pre(case, view), _posed(base, angle, shift))
    cohort = pd.DataFrame(
        {
            "case": list(poses),
            "split": ["train", "train", "train", "valid"],
            "abn": [0, 0, 1, 0],
            "acl": [0, 0, 1, 0],
            "men": [0, 0, 0, 0],
        }
    ).astype({"abn": "Int64", "acl": "Int64", "men": "Int64"})
    cohort.to_parquet(layout.cohort())
    assert healthy_training_cases(cohort) == ["0000", "0001"]
    settings = SETTINGS.replace(
        reference="template",
        reference_case=None,
        template_cases=8,
        template_iterations=2,
        seed=4,
        on_failure="keep_unregistered",
    )
    register_stages.reference(view="sagittal", settings=settings.to_config(), results=results)
    meta = json.loads(Path(layout.reference_sidecar("sagittal")).read_text(encoding="utf-8"))
    assert meta["kind"] == "template" and meta["members"] == ["0000", "0001"] and meta["seed"] == 4
    assert len(meta["iterations"]) == 2
    first = meta["iterations"][0]
    assert first["members_used"] == 2 and first["mean_ncc_after"] > first["mean_ncc_before"]
    template, _ = read_volume(layout.reference("sagittal"))
    # de-biased: the template sits in the members' mean pose (half of 0001's), not in the start case's
    halfway = _posed(base, 2.5, (1.0, -0.5, 0.0))
    assert (
        template.shape == base.shape and ncc(template, halfway) > 0.98 and ncc(template, halfway) > ncc(template, base)
    )
    last = np.array(meta["iterations"][-1]["mean_affine"])
    assert np.abs(last[:3, :3] - np.eye(3)).max() < 0.05 and np.abs(last[:3, 3]).max() < 0.5
    # a case reference copies one case's volume
    register_stages.reference(
        view="axial", settings=settings.replace(reference="case", reference_case="0001"), results=results
    )
    np.testing.assert_array_equal(
        read_volume(layout.reference("axial"))[0], read_volume(layout.pre("0001", "axial"))[0]
    )
    # register one case's two views, then gather QC
    views = ["sagittal", "axial"]
    register_stages.register(case="0002", views=views, settings=settings.to_config(), results=results)
    register_stages.registration_qc(parts=[layout.qc_case("0002")], results=results)
    qc = pd.read_parquet(layout.qc())
    assert list(qc.columns[:10]) == [
        "case",
        "view",
        "ncc_before",
        "ncc_after",
        "mse_before",
        "mse_after",
        "seconds",
        "status",
        "exit_status",
        "flagged",
    ]
    assert (qc["ncc_after"] > qc["ncc_before"]).all() and not qc["flagged"].any()
    assert qc["reference"].tolist() == [layout.reference(v) for v in ("axial", "sagittal")]
    assert read_parquet_metadata(layout.qc_case("0002"))["settings"] == settings.to_config()
    assert read_affine(layout.affine("0002", "axial")).shape == (4, 4)


def test_reference_case_outside_the_cohort_is_refused_like_at_parse_time():
    """The workflow refuses it when parsed (Settings.check_cohort); a direct call says the same."""
    cohort = pd.DataFrame({"case": ["0000", "0001"], "split": ["train", "train"], "abn": [0, 1]})
    assert reference_case(cohort, None) == "0000"
    with pytest.raises(
        ConfigError, match=r"config key 'registration.reference_case': case '0042' is not in the cohort"
    ):
        reference_case(cohort, "0042")


def test_register_stage_removes_earlier_views_on_error(tmp_path):
    ref = phantom((16, 24, 24))
    results = str(tmp_path)
    layout = Layout(results)
    for view in ("sagittal", "axial"):
        write_volume(layout.reference(view), ref)
    write_volume(layout.pre("0005", "sagittal"), np.roll(ref, 1, axis=2))
    write_volume(layout.pre("0005", "axial"), np.zeros((16, 24, 20)))  # wrong shape: second view fails
    with pytest.raises(InputDataError, match=r"case '0005', view 'axial'.*differs from the reference"):
        register_stages.register(case="0005", views=["sagittal", "axial"], settings=SETTINGS, results=results)
    out = Path(layout.registered("0005", "sagittal")).parent
    assert not list(out.iterdir()) and not Path(layout.qc_case("0005")).exists()


@pytest.mark.slow
def test_registration_raises_ncc_on_synthetic_knees(tmp_path):
    """Synthetic knees (own pose per case): registering to a healthy case raises the mean NCC for every view."""
    from radpersona import VIEWS
    from radpersona.ingest import ingest
    from radpersona.preprocess import preprocess_volume
    from radpersona.settings import PreprocessSettings, SourceSettings
    from radpersona.synthetic import generate_cohort

    results = str(tmp_path)
    layout = Layout(results)
    generate_cohort(
        tmp_path / "mrnet",
        layout,
        n_train=3,
        n_valid=1,
        seed=7,
        matrix=64,
        slices=(10, 12),
        prevalence={"abn": 0.5, "acl": 0.2, "men": 0.3},
    )
    source = SourceSettings.from_config({"kind": "synthetic", "root": str(tmp_path / "mrnet")})
    cohort = ingest(source, layout, folds=2, seed=0)
    pre = PreprocessSettings.from_config(
        {"shape": [16, 32, 32], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}
    )
    for case in cohort["case"]:
        for v in VIEWS:
            preprocess_volume(layout.raw(case, v), layout.pre(case, v), pre, case=case, view=v)
    settings = SETTINGS.replace(
        reference="case",
        reference_case=None,
        template_cases=4,
        template_iterations=1,
        seed=1,
        levels_to_perform=2,
        max_iterations=5,
        on_failure="keep_unregistered",
    )
    for v in VIEWS:
        register_stages.reference(view=v, settings=settings, results=results)
    start = json.loads(Path(layout.reference_sidecar("sagittal")).read_text(encoding="utf-8"))["initial_case"]
    parts = []
    for case in cohort["case"]:
        if case == start:
            continue
        register_stages.register(case=case, views=list(VIEWS), settings=settings, results=results)
        parts.append(layout.qc_case(case))
    register_stages.registration_qc(parts=parts, results=results)
    qc = pd.read_parquet(layout.qc())
    means = qc.groupby("view")[["ncc_before", "ncc_after"]].mean()
    assert (means["ncc_after"] > means["ncc_before"] + 0.05).all(), means
