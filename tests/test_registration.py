"""NiftyReg registration: tool lookup, QC records, and recovery of a known affine."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radpersona.errors import InputDataError
from radpersona.registration import find_niftyreg_tool, ncc, read_affine, register_volume
from radpersona.volume import read_volume, write_volume

SETTINGS = {"levels": 3, "levels_to_perform": 3, "max_iterations": 10, "rigid_only": False, "ncc_margin": 0.05,
            "on_failure": "error"}


def phantom(shape=(32, 48, 48)) -> np.ndarray:
    """A smooth asymmetric phantom: three ellipsoids of different brightness."""
    z, y, x = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    vol = np.zeros(shape, np.float32)
    for (cz, cy, cx), (rz, ry, rx), val in [((16, 24, 24), (10, 16, 14), 1.0), ((12, 18, 30), (4, 5, 6), 2.0),
                                             ((20, 30, 16), (5, 4, 3), 3.0)]:
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
    record = register_volume(tmp_path / "ref.nii.gz", tmp_path / "flo.nii.gz", tmp_path / "res.nii.gz", tmp_path / "aff.txt",
                             settings=SETTINGS, case="c", view="sagittal")
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
    monkeypatch.setattr(registration, "reg_aladin_command", lambda *a, **k: ["sh", "-c", "echo 'cannot allocate' >&2; exit 3"])
    kept = register_volume(tmp_path / "ref.nii.gz", tmp_path / "flo.nii.gz", tmp_path / "out.nii.gz", tmp_path / "out.txt",
                           settings={**SETTINGS, "on_failure": "keep_unregistered"}, case="0007", view="axial")
    assert kept["status"].startswith("failed: reg_aladin exit 3: cannot allocate") and "kept unregistered" in kept["status"]
    np.testing.assert_array_equal(read_volume(tmp_path / "out.nii.gz")[0], flo)
    np.testing.assert_array_equal(read_affine(tmp_path / "out.txt"), np.eye(4))
    with pytest.raises(InputDataError, match=r"case '0007', view 'axial'.*registration failed"):
        register_volume(tmp_path / "ref.nii.gz", tmp_path / "flo.nii.gz", tmp_path / "o2.nii.gz", tmp_path / "o2.txt",
                        settings=SETTINGS, case="0007", view="axial")
    assert not (tmp_path / "o2.nii.gz").exists() and not (tmp_path / "o2.txt").exists()


def test_shape_mismatch_is_named(tmp_path):
    write_volume(tmp_path / "ref.nii.gz", np.zeros((8, 8, 8)))
    write_volume(tmp_path / "flo.nii.gz", np.zeros((8, 8, 6)))
    with pytest.raises(InputDataError, match=r"case '0001', view 'coronal'.*differs from the reference"):
        register_volume(tmp_path / "ref.nii.gz", tmp_path / "flo.nii.gz", tmp_path / "r.nii.gz", tmp_path / "a.txt",
                        settings=SETTINGS, case="0001", view="coronal")
