"""Readers of the cohort sources (:mod:`radpersona.ingest` chooses one by ``source.kind``).

- :mod:`radpersona.sources.mrnet` — the MRNet v1.0 layout (``.npy`` volumes and label CSVs), where
  the synthetic cohort is written too;
- :mod:`radpersona.sources.kneemri` — the Rijeka KneeMRI dataset (``metadata.csv`` + pickled
  ``.pck`` volumes, sagittal only), read with a restricted unpickler;
- :mod:`radpersona.sources.manifest` — a CSV manifest of NIfTI files or DICOM series folders,
  read with SimpleITK.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import InputDataError


def read_source_csv(path: str | Path, what: str, required: Sequence[str]) -> pd.DataFrame:
    """Read a source's CSV as stripped strings (empty cells stay ``""``), checking its required columns.

    Raises:
        InputDataError: the file is missing or unparsable, or lacks some of ``required`` (named).
    """
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{what} is missing", path=path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot parse {what}: {exc}", path=path) from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise InputDataError(f"{what} lacks columns", path=path, value=missing)
    return frame.apply(lambda col: col.str.strip())
