"""The adapter between a Snakemake rule and its stage function (``workflow_scripts/`` call it)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radpersona.errors import RadpersonaError
from radpersona.progress import configure_logging

logger = logging.getLogger("radpersona")


def run_rule(smk: Any, stage: Callable[..., None], **kwargs: Any) -> None:
    """Run ``stage(**kwargs)`` inside a rule: log to the rule's log file, clear errors, exit 1 on failure."""
    log_path = Path(smk.log[0]) if len(smk.log) else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "w", buffering=1, encoding="utf-8")
    configure_logging()
    start = time.perf_counter()
    try:
        stage(**kwargs)
    except RadpersonaError as exc:
        logger.error("%s: %s", smk.rule, exc)
        print(f"radpersona error in rule {smk.rule}: {exc}", file=sys.__stderr__)
        sys.exit(1)
    logger.info("rule %s done in %.1f s", smk.rule, time.perf_counter() - start)


# the name the rule scripts used before the stages package
snakemake_entry = run_rule
