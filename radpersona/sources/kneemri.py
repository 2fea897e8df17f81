"""The Rijeka KneeMRI dataset (Štajduhar et al. 2017): ``metadata.csv`` and pickled volumes.

Layout under ``source.root``: ``metadata.csv`` with the columns ``examId, seriesNo, aclDiagnosis,
kneeLR, roiX, roiY, roiZ, roiWidth, roiHeight, roiDepth, volumeFilename`` and the volumes
``volumeFilename`` (``.pck``: a pickled numpy ``uint16`` array ``(slices, 320, 320)``), either
directly under the root or in sub-folders (the dataset ships them in ``vol01`` .. ``vol08``).
Sagittal only; no voxel spacing is stored, so volumes get a nominal 1 mm spacing.

Labels: ``aclDiagnosis`` is 0 (healthy), 1 (partially injured) or 2 (complete rupture);
``acl = 1`` when ``aclDiagnosis > 0`` (``source.kneemri.acl_positive: any_tear``) or when
``aclDiagnosis == 2`` (``complete_tear``). ``abn`` and ``men`` are not published (null).

Split: the dataset has no official split. Cases are split into train and valid at the patient level
(``examId``) with ``source.kneemri.valid_fraction`` and ``source.kneemri.seed``; the paper's
664 / 92 split is not published either, so the split is ours and is recorded in the cohort table.

Pickles can run arbitrary code when loaded. :func:`load_pck` uses :class:`ArrayOnlyUnpickler`,
which admits only the globals that rebuild a numpy array (``numpy.core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``, ``numpy.core.numeric._frombuffer``, and a latin-1-only stand-in
for ``_codecs.encode``) and refuses anything else before it is called.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..settings import KneeMRISettings
from ..volume import check_source_array
from . import read_source_csv

METADATA_COLUMNS = [
    "examId",
    "seriesNo",
    "aclDiagnosis",
    "kneeLR",
    "roiX",
    "roiY",
    "roiZ",
    "roiWidth",
    "roiHeight",
    "roiDepth",
    "volumeFilename",
]
ROI_COLUMNS = ["roiX", "roiY", "roiZ", "roiWidth", "roiHeight", "roiDepth"]
VIEWS_KNEEMRI: tuple[str, ...] = ("sagittal",)
TASKS_KNEEMRI: tuple[str, ...] = ("acl",)
"""The one task KneeMRI labels (``aclDiagnosis``); ``abn`` and ``men`` are null in its cohort table."""

#: (module, name) pairs a KneeMRI pickle may reference: numpy's array reconstruction only.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol 5 (Python 3.8+): array from its raw buffer
        ("numpy._core.numeric", "_frombuffer"),
    }
)


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for ``_codecs.encode`` (how Python 3 protocol-2 pickles store bytes): latin-1 only."""
    if not isinstance(text, str) or encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and refuses every other global (no code runs).

    Admitted: :data:`ALLOWED_GLOBALS`, and ``_codecs.encode`` replaced by a latin-1-only encoder
    (Python 3 writes the array's bytes that way under pickle protocol 2).
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 (pickle API)
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} (only numpy array reconstruction is allowed)")

    def persistent_load(self, pid: Any) -> Any:  # noqa: D102 (pickle API)
        raise pickle.UnpicklingError("refused persistent id (only numpy array reconstruction is allowed)")


def load_pck(path: str | Path, *, case: str | None = None, view: str = "sagittal") -> np.ndarray:
    """Load one KneeMRI ``.pck`` volume with :class:`ArrayOnlyUnpickler`; return it as float32.

    Raises:
        InputDataError: unreadable file, a pickle that references anything but numpy's array
            reconstruction (refused before it runs), not a numeric 3-D array, or non-finite voxels.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputDataError(f"cannot read .pck volume ({exc.strerror})", case=case, view=view, path=path) from None
    try:
        # latin1: the dataset's pickles were written by Python 2 (byte strings hold the array data)
        array = ArrayOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as exc:
        raise InputDataError(f"unsafe or invalid pickle: {exc}", case=case, view=view, path=path) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError) as exc:
        raise InputDataError(
            f"cannot unpickle .pck volume ({type(exc).__name__}: {exc})", case=case, view=view, path=path
        ) from None
    if not isinstance(array, np.ndarray):
        raise InputDataError(
            "the pickle does not hold a numpy array", case=case, view=view, path=path, value=type(array).__name__
        )
    return check_source_array(array, case=case, view=view, path=path)


def _case_id(filename: str) -> str:
    """Case id from a volume file name: ``329637-8.pck`` -> ``329637-8`` (letters, digits, - and _)."""
    stem = Path(filename).name
    stem = stem[: -len(".pck")] if stem.lower().endswith(".pck") else Path(stem).stem
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem)


def read_metadata(root: str | Path, settings: KneeMRISettings, cases: Collection[str] | None = None) -> pd.DataFrame:
    """Read and check ``metadata.csv``; return one row per case with labels and the patient split.

    Columns: case, split, abn (null), acl, men (null), patient, volume (path), knee, acl_diagnosis,
    roi_x .. roi_depth. With ``cases``, only those cases' volume files must exist (one ingest job per
    case); every row is still checked, and the split still drawn over every patient.

    Raises:
        InputDataError: missing or malformed file, missing columns, duplicate volumes, a diagnosis
            not in {0, 1, 2}, a volume file that is missing or that has no metadata row.
    """
    root = Path(root)
    path = root / "metadata.csv"
    meta = read_source_csv(path, "KneeMRI metadata.csv", METADATA_COLUMNS)
    meta["case"] = meta["volumeFilename"].map(_case_id)
    empty = meta[meta["volumeFilename"] == ""]
    if len(empty):
        raise InputDataError("empty volumeFilename", case=str(empty["examId"].iloc[0]), path=path, value="")
    dup = meta["case"][meta["case"].duplicated()]
    if len(dup):
        raise InputDataError("duplicate volume in metadata.csv", case=dup.iloc[0], path=path, value=dup.iloc[0])
    bad = meta[~meta["aclDiagnosis"].isin(["0", "1", "2"])]
    if len(bad):
        raise InputDataError(
            "aclDiagnosis must be 0, 1 or 2",
            case=bad["case"].iloc[0],
            view="sagittal",
            path=path,
            value=bad["aclDiagnosis"].iloc[0],
        )
    for col in ROI_COLUMNS:
        bad = meta[~meta[col].str.fullmatch(r"-?\d+")]
        if len(bad):
            raise InputDataError(
                f"{col} must be an integer", case=bad["case"].iloc[0], path=path, value=bad[col].iloc[0]
            )
    diagnosis = meta["aclDiagnosis"].astype(int)
    # any_tear: partial or complete rupture; complete_tear: complete rupture only
    acl = ((diagnosis == 2) if settings.acl_positive == "complete_tear" else (diagnosis > 0)).astype(int)
    files = index_volumes(root)
    known = set(meta["volumeFilename"].map(lambda f: Path(f).name))
    for name, stray in sorted(files.items()):
        if name not in known:
            raise InputDataError(
                "volume has no row in metadata.csv", case=_case_id(name), view="sagittal", path=stray, value=name
            )
    volumes = []
    for case, name in zip(meta["case"], meta["volumeFilename"]):
        found = files.get(Path(name).name)
        if found is None and cases is not None and case not in cases:
            volumes.append(str(root / name))  # another job's case: its own job checks it
            continue
        if found is None:
            raise InputDataError(
                "volume file is missing for a case in metadata.csv",
                case=case,
                view="sagittal",
                path=root / name,
                value=name,
            )
        volumes.append(str(found))
    table = pd.DataFrame(
        {
            "case": meta["case"],
            "abn": pd.array([pd.NA] * len(meta), dtype="Int64"),
            "acl": acl.astype("Int64"),
            "men": pd.array([pd.NA] * len(meta), dtype="Int64"),
            "patient": meta["examId"],
            "volume": volumes,
            "knee": meta["kneeLR"],
            "acl_diagnosis": diagnosis,
        }
    )
    for col, name in zip(ROI_COLUMNS, ["roi_x", "roi_y", "roi_z", "roi_width", "roi_height", "roi_depth"]):
        table[name] = meta[col].astype(int)
    table.insert(1, "split", patient_split(table["patient"], settings.valid_fraction, settings.seed))
    return table.sort_values("case", kind="stable").reset_index(drop=True)


def index_volumes(root: str | Path) -> dict[str, Path]:
    """Map each ``.pck`` file name under ``root`` (any depth) to its path.

    Raises:
        InputDataError: one file name found in two folders (which one is meant is ambiguous).
    """
    found: dict[str, Path] = {}
    for path in sorted(Path(root).rglob("*.pck")):
        if path.name in found:
            raise InputDataError(
                "two volumes with the same file name",
                case=_case_id(path.name),
                view="sagittal",
                path=path,
                value=str(found[path.name]),
            )
        found[path.name] = path
    return found


def patient_split(patients: pd.Series, valid_fraction: float, seed: int) -> list[str]:
    """Seeded patient-level train/valid split: all cases of a patient land in the same split."""
    unique = np.array(sorted(set(patients)))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(unique))
    n_valid = int(round(valid_fraction * len(unique)))
    valid = set(unique[order[:n_valid]].tolist())
    return ["valid" if p in valid else "train" for p in patients]
