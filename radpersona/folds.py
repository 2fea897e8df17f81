"""The cohort's cross-validation folds: which cases train and which are reported, per fold.

Folds are patient-level and assigned at ingest (``cohort.parquet`` column ``fold``: ``0..folds-1`` on
train, ``-1`` on valid). Fold ``k`` trains on the other training folds and reports fold ``k``; fold
``all`` trains on all of train and reports valid. The fingerprint and every baseline use this one
selection, so that their predictions of a case come from models that never saw it. Torch-free.
"""

from __future__ import annotations

import pandas as pd

from radpersona.errors import InputDataError

ALL_FOLD = "all"
"""The fold of the model trained on all of train (reports the valid split)."""


def fold_cases(cohort: pd.DataFrame, task: str, fold: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and reported cases of ``fold`` (``all`` = train vs valid); cases without a ``task`` label dropped.

    Both frames keep the cohort's row order and index.

    Raises:
        InputDataError: the cohort has no column ``task``.
    """
    if task not in cohort.columns:
        raise InputDataError(f"cohort has no label column {task!r}")
    labelled = cohort[cohort[task].notna()]
    train = labelled[labelled["split"] == "train"]
    if fold == ALL_FOLD:
        return train, labelled[labelled["split"] == "valid"]
    k = int(fold)
    return train[train["fold"] != k], train[train["fold"] == k]


def cohort_folds(cohort: pd.DataFrame) -> list[str]:
    """The cross-validation folds present on train (as strings), then ``all``."""
    folds = sorted(int(f) for f in cohort.loc[cohort["split"] == "train", "fold"].unique() if int(f) >= 0)
    return [str(f) for f in folds] + [ALL_FOLD]
