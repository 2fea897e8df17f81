"""Ingest: read a source cohort, check it, and write the cohort table and raw NIfTI volumes.

Sources (``source.kind``):

- ``mrnet`` — the MRNet v1.0 layout: ``{train,valid}/{axial,coronal,sagittal}/NNNN.npy`` (uint8,
  (slices, 256, 256)) and ``{train,valid}-{abnormal,acl,meniscus}.csv`` (no header: ``id,label``).
  MRNet's public ``valid`` split (120 exams) is its *tuning* set, not the paper's hidden test set;
  outputs call it ``valid``. MRNet ships no voxel spacing: volumes get a nominal 1 mm spacing.
- ``synthetic`` — the generated cohort (:mod:`radpersona.synthetic`), read through the MRNet reader.
- ``kneemri`` and ``manifest`` — not implemented yet (they raise a clear error).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import VIEWS
from .errors import ConfigError, InputDataError
from .parquet import write_parquet
from .progress import Progress
from .volume import check_finite, write_volume

logger = logging.getLogger("radpersona")

MRNET_LABEL_FILES = {"abn": "abnormal", "acl": "acl", "men": "meniscus"}
SPLITS = ("train", "valid")
COHORT_COLUMNS = [
    "case", "source", "split", "abn", "acl", "men",
    "path_sagittal", "path_coronal", "path_axial", "fold", "patient",
]


def _read_label_csv(path: Path, task: str) -> pd.Series:
    """Read one MRNet label file (no header, ``id,label``) into a Series indexed by 4-digit id."""
    if not path.exists():
        raise InputDataError("label file is missing", path=path)
    try:
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot parse label file: {exc}", path=path) from None
    if frame.shape[1] != 2:
        raise InputDataError("label file must have two columns (id,label) and no header", path=path, value=frame.shape[1])
    ids = frame[0].str.strip()
    bad_id = ids[~ids.str.fullmatch(r"\d+")]
    if len(bad_id):
        raise InputDataError("case id is not a number (is there a header line?)", path=path, value=bad_id.iloc[0])
    ids = ids.str.zfill(4)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputDataError("duplicate case id in label file", case=dup.iloc[0], path=path, value=dup.iloc[0])
    labels = frame[1].str.strip()
    bad = ~labels.isin(["0", "1"])
    if bad.any():
        raise InputDataError(f"{task} label must be 0 or 1", case=ids[bad].iloc[0], path=path, value=labels[bad].iloc[0])
    return pd.Series(labels.astype(int).to_numpy(), index=ids.to_numpy(), name=task)


def read_mrnet_labels(root: str | Path) -> pd.DataFrame:
    """Read all MRNet label files under ``root``: columns case, split, abn, acl, men.

    Raises:
        InputDataError: missing or malformed label files, duplicate ids, non-binary labels, ids that
            differ between the three label files of a split, or an id present in both splits.
    """
    root = Path(root)
    frames = []
    for split in SPLITS:
        series = [_read_label_csv(root / f"{split}-{name}.csv", task) for task, name in MRNET_LABEL_FILES.items()]
        reference = set(series[0].index)
        for s, (task, name) in zip(series[1:], list(MRNET_LABEL_FILES.items())[1:]):
            diff = reference.symmetric_difference(s.index)
            if diff:
                case = sorted(diff)[0]
                raise InputDataError(
                    f"case ids differ between {split}-abnormal.csv and {split}-{name}.csv",
                    case=case, path=root / f"{split}-{name}.csv", value=case,
                )
        frame = pd.concat(series, axis=1)
        frame.index.name = "case"
        frame = frame.reset_index()
        frame.insert(1, "split", split)
        frames.append(frame)
    labels = pd.concat(frames, ignore_index=True)
    dup = labels["case"][labels["case"].duplicated()]
    if len(dup):
        raise InputDataError("case id appears in both train and valid", case=dup.iloc[0], path=root, value=dup.iloc[0])
    implied = labels[((labels["acl"] == 1) | (labels["men"] == 1)) & (labels["abn"] == 0)]
    if len(implied):
        logger.warning("%d cases have an ACL or meniscal tear but abn = 0 (e.g. case %s)", len(implied), implied["case"].iloc[0])
    return labels.sort_values("case", kind="stable").reset_index(drop=True)


def mrnet_volume_path(root: str | Path, split: str, view: str, case: str) -> Path:
    """Path of one MRNet volume."""
    return Path(root) / split / view / f"{case}.npy"


def check_mrnet_volumes(root: str | Path, labels: pd.DataFrame) -> None:
    """Check that every labelled case has all three views and every volume file has a label."""
    root = Path(root)
    known = {(row.split, row.case) for row in labels.itertuples()}
    for row in labels.itertuples():
        for view in VIEWS:
            path = mrnet_volume_path(root, row.split, view, row.case)
            if not path.exists():
                raise InputDataError("volume file is missing for a labelled case", case=row.case, view=view, path=path)
    for split in SPLITS:
        for view in VIEWS:
            folder = root / split / view
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.npy")):
                if (split, path.stem.zfill(4)) not in known:
                    raise InputDataError(
                        f"volume has no label in {split}-abnormal.csv", case=path.stem, view=view, path=path, value=path.stem
                    )


def load_mrnet_volume(path: str | Path, *, case: str, view: str) -> np.ndarray:
    """Load one MRNet ``.npy`` volume safely (no pickles) and check it is a finite 3-D array."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"cannot read .npy volume ({exc})", case=case, view=view, path=path) from None
    if not isinstance(array, np.ndarray) or array.ndim != 3:
        raise InputDataError("expected a 3-D array (slices, rows, cols)", case=case, view=view, path=path,
                             value=getattr(array, "shape", None))
    if min(array.shape) < 2:
        raise InputDataError("volume has an axis shorter than 2 voxels", case=case, view=view, path=path, value=array.shape)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise InputDataError("volume must be numeric", case=case, view=view, path=path, value=str(array.dtype))
    array = array.astype(np.float32)
    check_finite(array, case=case, view=view, path=path)
    return array


def assign_folds(cohort: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Patient-level folds on train (cases of one patient share a fold), stratified by label pattern.

    Returns an int array aligned with ``cohort``: fold in 0..n_folds-1 on train, -1 on valid.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(cohort), -1, dtype=int)
    train = np.flatnonzero(cohort["split"].to_numpy() == "train")
    if len(train) < n_folds:
        raise ConfigError(f"config key 'fingerprint.folds': {n_folds} folds need at least as many training cases, got {len(train)}")
    sub = cohort.iloc[train]
    strata = (sub[["abn", "acl", "men"]].fillna(0).astype(int) * [4, 2, 1]).sum(axis=1).to_numpy()
    # strata rarer than the fold count cannot be stratified; merge them
    counts = pd.Series(strata).value_counts()
    strata = np.where(pd.Series(strata).map(counts).to_numpy() < n_folds, -1, strata)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(sub)), strata, groups=sub["patient"].to_numpy())):
        folds[train[held]] = k
    return folds


def list_cases(config: Mapping[str, Any]) -> pd.DataFrame:
    """Cases and splits known when the workflow is parsed (columns case, split)."""
    kind = config["source"]["kind"]
    if kind == "synthetic":
        n_train, n_valid = config["synthetic"]["n_train"], config["synthetic"]["n_valid"]
        cases = [f"{i:04d}" for i in range(n_train + n_valid)]
        return pd.DataFrame({"case": cases, "split": ["train"] * n_train + ["valid"] * n_valid})
    if kind == "mrnet":
        return read_mrnet_labels(config["source"]["root"])[["case", "split"]]
    raise ConfigError(f"config key 'source.kind': {kind!r} is not supported yet (supported: synthetic, mrnet)")


def ingest(config: Mapping[str, Any], *, cohort_path: str | Path, raw_dir: str | Path, truth_dir: str | Path | None = None) -> pd.DataFrame:
    """Read the source, check it, write raw NIfTI volumes and the cohort table.

    Writes ``raw_dir/{case}_{view}.nii.gz`` (float32, nominal 1 mm spacing for MRNet) and the cohort
    Parquet (contract columns, plus ``shape_{view}``: the original array shape as 'SxRxC').
    """
    kind = config["source"]["kind"]
    root = Path(config["source"]["root"])
    if kind not in ("synthetic", "mrnet"):
        raise ConfigError(f"config key 'source.kind': {kind!r} is not supported yet (supported: synthetic, mrnet)")
    labels = read_mrnet_labels(root)
    check_mrnet_volumes(root, labels)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    bar = Progress("ingest", total=len(labels), unit="cases")
    for row in labels.itertuples():
        record: dict[str, Any] = {"case": row.case, "source": kind, "split": row.split,
                                  "abn": row.abn, "acl": row.acl, "men": row.men}
        for view in VIEWS:
            src = mrnet_volume_path(root, row.split, view, row.case)
            array = load_mrnet_volume(src, case=row.case, view=view)
            dst = raw_dir / f"{row.case}_{view}.nii.gz"
            write_volume(dst, array, (1.0, 1.0, 1.0), description=f"radpersona raw {kind} {row.case} {view}")
            record[f"path_{view}"] = str(src)
            record[f"shape_{view}"] = "x".join(str(s) for s in array.shape)
        record["patient"] = row.case  # MRNet publishes no patient ids: one patient per exam
        rows.append(record)
        bar.update(1)
    cohort = pd.DataFrame(rows)
    for task in ("abn", "acl", "men"):
        cohort[task] = cohort[task].astype("Int64")
    cohort["fold"] = assign_folds(cohort, config["fingerprint"]["folds"], config["fingerprint"]["seed"])
    if kind == "synthetic" and truth_dir is not None:
        cohort["truth_dir"] = str(truth_dir)
    extra = [c for c in cohort.columns if c not in COHORT_COLUMNS]
    cohort = cohort[COHORT_COLUMNS + extra]
    write_parquet(cohort, cohort_path, metadata={"source": kind, "root": str(root)})
    logger.info("ingest: %d cases (%s), %d train / %d valid", len(cohort), kind,
                (cohort["split"] == "train").sum(), (cohort["split"] == "valid").sum())
    return cohort
