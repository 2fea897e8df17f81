"""The MRNet v1.0 layout: where its files are, and its label and volume readers.

Under the dataset folder (``source.root``)::

    {train,valid}/{sagittal,coronal,axial}/NNNN.npy     uint8 (slices, 256, 256), one file per case and view
    {train,valid}-{abnormal,acl,meniscus}.csv           no header: ``NNNN,label`` (label 0 or 1)

MRNet's public ``valid`` split (120 exams) is its *tuning* set, not the paper's hidden test set;
outputs call it ``valid``. MRNet ships no voxel spacing. The synthetic cohort
(:mod:`radpersona.synthetic`) is written in this layout and read back through this module.
The folder is outside ``results/``, so its paths are named here rather than by
:class:`radpersona.layout.Layout`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from ..errors import InputDataError
from ..vocabulary import SPLITS, TASKS, VIEWS
from ..volume import check_source_array

logger = logging.getLogger("radpersona")

MRNET_LABEL_FILES: Mapping[str, str] = MappingProxyType({"abn": "abnormal", "acl": "acl", "men": "meniscus"})
"""Task -> the word MRNet's label files use for it."""


@dataclass(frozen=True)
class MRNetLayout:
    """Paths of one MRNet-layout folder. Methods only format paths (wildcard patterns work)."""

    root: str

    def volume(self, split: str, view: str, case: str) -> str:
        """One case's volume of one view (``{root}/{split}/{view}/{case}.npy``)."""
        return str(Path(self.root) / split / view / f"{case}.npy")

    def labels(self, split: str, task: str) -> str:
        """The label CSV of a split and task (``{root}/{split}-{abnormal|acl|meniscus}.csv``)."""
        return str(Path(self.root) / f"{split}-{MRNET_LABEL_FILES[task]}.csv")

    def label_files(self) -> list[str]:
        """The six label CSVs, split by split in :data:`radpersona.vocabulary.TASKS` order."""
        return [self.labels(split, task) for split in SPLITS for task in TASKS]


def _read_label_csv(path: Path, task: str) -> pd.Series:
    """Read one MRNet label file (no header, ``id,label``) into a Series indexed by 4-digit id."""
    if not path.exists():
        raise InputDataError("label file is missing", path=path)
    try:
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot parse label file: {exc}", path=path) from None
    if frame.shape[1] != 2:
        raise InputDataError(
            "label file must have two columns (id,label) and no header", path=path, value=frame.shape[1]
        )
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
        raise InputDataError(
            f"{task} label must be 0 or 1", case=ids[bad].iloc[0], path=path, value=labels[bad].iloc[0]
        )
    return pd.Series(labels.astype(int).to_numpy(), index=ids.to_numpy(), name=task)


def read_mrnet_labels(root: str | Path) -> pd.DataFrame:
    """Read all MRNet label files under ``root``: columns case, split, abn, acl, men.

    Raises:
        InputDataError: missing or malformed label files, duplicate ids, non-binary labels, ids that
            differ between the three label files of a split, or an id present in both splits.
    """
    layout = MRNetLayout(str(root))
    frames = []
    for split in SPLITS:
        series = [_read_label_csv(Path(layout.labels(split, task)), task) for task in TASKS]
        reference = set(series[0].index)
        for s, task in zip(series[1:], TASKS[1:]):
            diff = reference.symmetric_difference(s.index)
            if diff:
                case = sorted(diff)[0]
                raise InputDataError(
                    f"case ids differ between {split}-{MRNET_LABEL_FILES[TASKS[0]]}.csv and "
                    f"{split}-{MRNET_LABEL_FILES[task]}.csv",
                    case=case,
                    path=layout.labels(split, task),
                    value=case,
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
        logger.warning(
            "%d cases have an ACL or meniscal tear but abn = 0 (e.g. case %s)", len(implied), implied["case"].iloc[0]
        )
    return labels.sort_values("case", kind="stable").reset_index(drop=True)


def check_mrnet_volumes(root: str | Path, labels: pd.DataFrame, exclude: Collection[str] = ()) -> None:
    """Check that every labelled case has all three views and every volume file has a label.

    Cases in ``exclude`` need not have their volumes (they are left out of the cohort).
    """
    layout = MRNetLayout(str(root))
    known = {(row.split, row.case) for row in labels.itertuples()}
    for row in labels.itertuples():
        if row.case in exclude:
            continue
        for view in VIEWS:
            path = layout.volume(str(row.split), view, str(row.case))
            if not Path(path).exists():
                raise InputDataError("volume file is missing for a labelled case", case=row.case, view=view, path=path)
    for split in SPLITS:
        for view in VIEWS:
            folder = Path(root) / split / view
            if not folder.is_dir():
                continue
            for found in sorted(folder.glob("*.npy")):
                if (split, found.stem.zfill(4)) not in known:
                    raise InputDataError(
                        f"volume has no label in {split}-{MRNET_LABEL_FILES[TASKS[0]]}.csv",
                        case=found.stem,
                        view=view,
                        path=found,
                        value=found.stem,
                    )


def load_mrnet_volume(path: str | Path, *, case: str, view: str) -> np.ndarray:
    """Load one MRNet ``.npy`` volume safely (no pickles) and check it is a finite 3-D array."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"cannot read .npy volume ({exc})", case=case, view=view, path=path) from None
    return check_source_array(array, case=case, view=view, path=path)
