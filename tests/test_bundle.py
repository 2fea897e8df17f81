"""Model bundle checks (checksums, versions) and `radpersona diagnose`'s refusals of bad input, on a small bundle
whose models are never reached: every refusal here happens before a model is read. The bundle a real run makes,
and diagnose's numbers against the workflow's, are in tests/test_diagnose.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from test_sources_manifest import write_dicom_series

from radpersona.bundle import current_versions, verify_bundle, write_manifest
from radpersona.cli import main
from radpersona.errors import InputDataError
from radpersona.layout import BundleLayout
from radpersona.parquet import write_parquet
from radpersona.settings import load_settings
from radpersona.sources.manifest import IDENTITY_DIRECTION
from radpersona.stages.diagnose import diagnose
from radpersona.vocabulary import VIEWS
from radpersona.volume import write_json_atomic, write_volume

REPO = Path(__file__).resolve().parents[1]
SHAPE = (16, 32, 32)  # presets/smoke.yaml's preprocess.shape


def knee(seed: int = 0, shape=(20, 40, 40)) -> np.ndarray:
    """A smooth blob with noise: enough structure for reg_aladin."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    blob = np.exp(-((grid**2).sum(axis=0)) * 3.0) * 200.0
    return (blob + rng.normal(0, 5, shape)).astype(np.float32)


@pytest.fixture()
def bundle(tmp_path) -> BundleLayout:
    """A bundle folder as the `bundle` stage writes it (settings of presets/smoke.yaml); its models are
    placeholders that the refusals below never reach."""
    settings = load_settings(REPO / "config.yaml", REPO / "presets" / "smoke.yaml")
    files = BundleLayout(str(tmp_path / "bundle"))
    Path(files.root).mkdir()
    for n, view in enumerate(VIEWS):
        write_volume(files.reference(view), knee(n, SHAPE))
    Path(files.ddpm()).write_bytes(b"ddpm weights")
    Path(files.fingerprint_model()).write_bytes(b"fingerprint weights")
    write_parquet(pd.DataFrame({"feature": ["a"], "mean": [0.0]}), files.imputation())
    write_json_atomic(
        files.config(),
        {
            "experiment": "proposed",
            "task": "acl",
            "views": list(VIEWS),
            "directions": {v: list(IDENTITY_DIRECTION) for v in VIEWS},
            "threshold": 0.5,
            "threshold_from": "inner",
            "reg": "reg",
            "grid": 2,
            "source_kind": "synthetic",
            "preprocess": settings.preprocess.to_config(),
            "registration": settings.registration.to_config(),
            "persona": {"box": list(settings.persona.box), "sample": settings.persona.sample.to_config()},
            "radiomics": settings.radiomics.to_config(),
            "fingerprint": settings.fingerprint.to_config(),
            "report": settings.report.to_config(),
        },
    )
    write_json_atomic(files.versions(), current_versions(reg_aladin=False))
    write_manifest(files)
    return files


@pytest.fixture()
def exam(tmp_path) -> dict[str, Path]:
    """A good exam: one NIfTI file per view."""
    paths = {}
    for n, view in enumerate(VIEWS):
        paths[view] = tmp_path / "exam" / f"{view}.nii.gz"
        paths[view].parent.mkdir(exist_ok=True)
        sitk.WriteImage(sitk.GetImageFromArray(knee(10 + n)), str(paths[view]))
    return paths


def refused(bundle: BundleLayout, exam: dict, tmp_path: Path, match: str) -> InputDataError:
    """diagnose refuses the exam with a message matching ``match`` and leaves nothing in the output's folder."""
    out = tmp_path / "out" / "exam1"
    with pytest.raises(InputDataError, match=match) as info:
        diagnose(bundle=bundle.root, exam=exam, out=out)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir()), list(out.parent.iterdir())
    return info.value


def test_a_bundle_matching_its_manifest_and_versions_is_accepted(bundle):
    verified = verify_bundle(bundle.root, check_versions=True)
    assert (
        verified.config["task"] == "acl" and verified.versions["torch"] == current_versions(reg_aladin=False)["torch"]
    )


def test_a_tampered_bundle_file_is_refused_naming_it(bundle):
    path = Path(bundle.reference("coronal"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(InputDataError, match=r"reference_coronal\.nii\.gz.*SHA-256"):
        verify_bundle(bundle.root)


def test_a_file_missing_from_or_added_to_a_bundle_is_refused(bundle):
    extra = Path(bundle.root) / "notes.txt"
    extra.write_text("x", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"notes\.txt.*not in the bundle's manifest"):
        verify_bundle(bundle.root)
    extra.unlink()
    Path(bundle.ddpm()).unlink()
    with pytest.raises(InputDataError, match=r"ddpm\.pt.*missing"):
        verify_bundle(bundle.root)


def test_a_version_mismatch_is_refused_naming_package_and_versions(bundle):
    running = {**current_versions(reg_aladin=False), "torch": "0.0.1"}
    with pytest.raises(InputDataError, match=r"versions\.json.*made with torch .*this installation has 0\.0\.1"):
        verify_bundle(bundle.root, running=running)
    # the same through the CLI: a bundle recording another numpy than the installed one
    versions = json.loads(Path(bundle.versions()).read_text(encoding="utf-8"))
    versions["numpy"] = "1.0.0"
    write_json_atomic(bundle.versions(), versions)
    write_manifest(bundle)  # a consistent manifest: only the version differs
    with pytest.raises(InputDataError, match=r"made with numpy 1\.0\.0"):
        verify_bundle(bundle.root)


def test_cli_diagnose_refuses_a_tampered_bundle_with_exit_1(bundle, exam, tmp_path, capsys):
    Path(bundle.config()).write_text(Path(bundle.config()).read_text(encoding="utf-8") + " ", encoding="utf-8")
    argv = ["diagnose", "--bundle", bundle.root, "--out", str(tmp_path / "out")]
    argv += [a for view in VIEWS for a in (f"--{view}", str(exam[view]))]
    assert main(argv) == 1
    assert "config.json" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_missing_view_is_refused(bundle, exam, tmp_path):
    del exam["axial"]
    err = refused(bundle, exam, tmp_path, r"view 'axial'.*needs view\(s\).*--axial")
    assert err.view == "axial"


def test_a_wrong_orientation_is_refused(bundle, exam, tmp_path):
    image = sitk.ReadImage(str(exam["coronal"]))
    image.SetDirection((0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0))  # slice and column axes swapped
    sitk.WriteImage(image, str(exam["coronal"]))
    refused(bundle, exam, tmp_path, r"view 'coronal'.*coronal\.nii\.gz.*orientation .* differs from the training")


def test_a_wrong_dimensionality_is_refused(bundle, exam, tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(knee(3)[0]), str(exam["sagittal"]))  # one 2-D slice
    refused(bundle, exam, tmp_path, r"sagittal\.nii\.gz.*(3-D|shorter than 2).*\(got")


def test_nan_voxels_are_refused(bundle, exam, tmp_path):
    array = knee(4)
    array[3, 5, 7] = np.nan
    sitk.WriteImage(sitk.GetImageFromArray(array), str(exam["axial"]))
    refused(bundle, exam, tmp_path, r"view 'axial'.*axial\.nii\.gz.*non-finite voxels")


def test_a_dicom_folder_with_two_series_is_refused(bundle, exam, tmp_path):
    folder = tmp_path / "dicom_sagittal"
    write_dicom_series(folder, knee(5), "1.2.826.0.1.3680043.2.1125.11")
    write_dicom_series(folder, knee(6), "1.2.826.0.1.3680043.2.1125.12")
    exam["sagittal"] = folder
    refused(bundle, exam, tmp_path, r"dicom_sagittal.*holds 2 DICOM series")


def test_a_registration_that_fails_qc_is_refused(bundle, exam, tmp_path, monkeypatch):
    """reg_aladin failing on a view is an error for diagnose even when the config keeps failed registrations."""
    from radpersona import registration

    assert json.loads(Path(bundle.config()).read_text(encoding="utf-8"))["registration"]["on_failure"] != "error"
    monkeypatch.setattr(registration, "reg_aladin_command", lambda *args, **kwargs: ["false"])
    refused(bundle, exam, tmp_path, r"view 'sagittal'.*registration failed: reg_aladin exit 1")


def test_an_existing_output_folder_is_refused(bundle, exam, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(InputDataError, match="output folder exists"):
        diagnose(bundle=bundle.root, exam=exam, out=out)
