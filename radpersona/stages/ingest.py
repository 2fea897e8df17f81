"""Stages of rules/ingest.smk: the synthetic cohort, per-case ingest and the cohort table."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radpersona.errors import InputDataError
from radpersona.ingest import assemble_cohort, ingest_case_row, read_source, records_frame
from radpersona.layout import Layout
from radpersona.parquet import write_parquet
from radpersona.settings import SourceSettings, SyntheticSettings

logger = logging.getLogger("radpersona")


def synthesize(*, settings: Mapping[str, Any] | SyntheticSettings, source_root: str, results: str) -> None:
    """Rule ``synthesize``: the synthetic cohort in the MRNet layout under ``source_root`` (``source.root``)
    and its truth under ``Layout(results).synthetic_truth_dir()``."""
    from radpersona.synthetic import generate_cohort

    settings = SyntheticSettings.from_config(settings)
    start = time.perf_counter()
    generate_cohort(
        source_root,
        Layout(results),
        n_train=settings.n_train,
        n_valid=settings.n_valid,
        seed=settings.seed,
        difficulty=settings.difficulty,
        prevalence=settings.prevalence.as_dict(),
        slices=settings.slices,
        matrix=settings.matrix,
    )
    logger.info(
        "synthesize: %d cases in %.1f s (seed %d)",
        settings.n_train + settings.n_valid,
        time.perf_counter() - start,
        settings.seed,
    )


def ingest_case(*, source: Mapping[str, Any] | SourceSettings, case: str, results: str) -> None:
    """Rule ``ingest_case``: one case's raw volumes (``raw(case, view)`` for each view the source has)
    and its cohort record (``ingest_record(case)``) in ``Layout(results)``.

    A bad file fails this case alone, naming case, view and file, and says how to go on without it.
    """
    source = SourceSettings.from_config(source)
    layout = Layout(results)
    match, views = read_source(source, cases=[case])
    if not len(match):
        raise InputDataError("case is not in the source (or is excluded)", case=case, value=case)
    try:
        record = ingest_case_row(source.kind, match.iloc[0].to_dict(), views, layout)
    except InputDataError as err:
        # the way on without this case: `snakemake --keep-going` has finished the others' ingest and preprocessing
        err.args = (f"{err.args[0]}; to run the cohort without it, add {case!r} to the config key source.exclude",)
        raise
    try:
        write_parquet(records_frame([record]), layout.ingest_record(case))
    except BaseException:
        for view in views:
            Path(layout.raw(case, view)).unlink(missing_ok=True)
        raise


def ingest(
    *, source: Mapping[str, Any] | SourceSettings, folds: int, seed: int, records: Sequence[str], results: str
) -> None:
    """Rule ``ingest``: gather the per-case records into ``cohort()`` of ``Layout(results)``, with
    patient-level folds (``fingerprint.folds``, ``fingerprint.seed``)."""
    source = SourceSettings.from_config(source)
    frames = [pd.read_parquet(p) for p in records]
    assemble_cohort(source, pd.concat(frames, ignore_index=True), Layout(results), folds=folds, seed=seed)
