"""The cohort's cross-validation folds: which cases train and which are reported, per fold.

Folds are patient-level and assigned at ingest (``cohort.parquet`` column ``fold``: ``0..folds-1`` on
train, ``-1`` on valid). Fold ``k`` trains on the other training folds and reports fold ``k``; fold
``all`` trains on all of train and reports valid. The fingerprint and every baseline use this one
selection, so that their predictions of a case come from models that never saw it. Torch-free.
"""

from __future__ import annotations

import pandas as pd

from radpersona.errors import InputDataError
from radpersona.vocabulary import PersonaProtocol

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


def healthy_training_cases(cohort: pd.DataFrame, split: str = "train") -> list[str]:
    """Healthy cases of ``split`` in case order: ``abn == 0``, or, for a source without ``abn`` (KneeMRI), every
    known label 0. The one definition of "healthy" for the registration template and the persona DDPMs."""
    train = cohort[cohort["split"] == split]
    if train["abn"].notna().any():
        healthy = train[train["abn"] == 0]
    else:
        labels = train[["acl", "men"]]
        healthy = train[labels.notna().any(axis=1) & (labels.fillna(0) == 0).all(axis=1)]
    return sorted(healthy["case"].astype(str).tolist())


def persona_training_cases(cohort: pd.DataFrame, fold: str) -> list[str]:
    """The healthy training cases (:func:`healthy_training_cases`) a persona DDPM of ``fold`` trains on: all
    of them for ``all``, those outside CV fold ``k`` for ``k``."""
    healthy = healthy_training_cases(cohort)
    if fold == ALL_FOLD:
        return healthy
    inside = set(cohort.loc[cohort["fold"] == int(fold), "case"].astype(str))
    return [case for case in healthy if case not in inside]


def persona_model_fold(cohort: pd.DataFrame, cross_fit: bool) -> dict[str, str]:
    """Per case, the DDPM fold whose model makes its persona: with ``cross_fit`` a training case's own CV fold
    (a model that never saw it) and ``all`` for the reported cases; without, ``all`` for every case."""
    if not cross_fit:
        return {case: ALL_FOLD for case in cohort["case"]}
    return {
        case: (str(int(fold)) if split == "train" else ALL_FOLD)
        for case, split, fold in zip(cohort["case"], cohort["split"], cohort["fold"])
    }


PERSONA_PROTOCOLS = {
    PersonaProtocol.CROSS_FIT: "Personas: cross-fitted (persona.cross_fit: true): each persona comes from a DDPM "
    "that never saw its case.",
    PersonaProtocol.EXTERNAL: "Personas: an external model (persona.checkpoint), trained elsewhere: it never saw "
    "a case of this cohort.",
    PersonaProtocol.PAPER: "Personas: the paper's protocol (persona.cross_fit: false): one DDPM trained on every "
    "healthy training case makes every persona, so the healthy training cases' personas come from a model that saw "
    "them (training-set membership can leak into the residual).",
}
"""The line every result table of a run carries about how its personas were made (``PersonaSettings.protocol``)."""

EXTERNAL_MODEL = "external"
"""``model_fold`` of the membership table when ``persona.checkpoint`` makes every persona."""


def persona_model_folds(cohort: pd.DataFrame, protocol: PersonaProtocol) -> dict[str, str]:
    """Per case, the model that makes its persona: :func:`persona_model_fold` for a protocol that trains on this
    cohort, :data:`EXTERNAL_MODEL` for every case when an external checkpoint does."""
    if protocol == PersonaProtocol.EXTERNAL:
        return {case: EXTERNAL_MODEL for case in cohort["case"]}
    return persona_model_fold(cohort, protocol == PersonaProtocol.CROSS_FIT)


def cohort_folds(cohort: pd.DataFrame) -> list[str]:
    """The cross-validation folds present on train (as strings), then ``all``."""
    folds = sorted(int(f) for f in cohort.loc[cohort["split"] == "train", "fold"].unique() if int(f) >= 0)
    return [str(f) for f in folds] + [ALL_FOLD]
