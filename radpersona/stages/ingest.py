"""Stages of rules/ingest.smk: the synthetic cohort, per-case ingest and the cohort table."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from radpersona.ingest import stage_cohort as ingest  # noqa: F401
from radpersona.ingest import stage_ingest_case as ingest_case  # noqa: F401

logger = logging.getLogger("radpersona")


def synthesize(settings: Mapping[str, Any], mrnet_root: str | Path, truth_root: str | Path) -> None:
    """Generate the synthetic cohort in the MRNet layout plus its truth folder."""
    from radpersona.synthetic import generate_cohort

    start = time.perf_counter()
    generate_cohort(
        Path(mrnet_root),
        Path(truth_root),
        n_train=settings["n_train"],
        n_valid=settings["n_valid"],
        seed=settings["seed"],
        difficulty=settings["difficulty"],
        prevalence=settings["prevalence"],
        slices=tuple(settings["slices"]),
        matrix=settings["matrix"],
    )
    logger.info(
        "synthesize: %d cases in %.1f s (seed %d)",
        settings["n_train"] + settings["n_valid"],
        time.perf_counter() - start,
        settings["seed"],
    )
