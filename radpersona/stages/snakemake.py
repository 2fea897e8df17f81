"""The adapter between a Snakemake rule and its stage function (``workflow_scripts/`` call it).

With the environment variable ``RADPERSONA_RECORD_JOBS`` set to a folder, every job also writes a JSON
record there: the rule, the stage function, the keyword arguments it was called with, and the
rule's declared inputs and outputs. ``tests/test_declared_inputs.py`` replays each record in a sandbox
that holds only the declared inputs, so a stage that reads a file its rule does not declare fails.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radpersona.errors import RadpersonaError
from radpersona.progress import configure_logging

logger = logging.getLogger("radpersona")

RECORD_ENV = "RADPERSONA_RECORD_JOBS"


def _plain(value: Any) -> Any:
    """JSON form of a stage argument (Snakemake's named lists become lists, paths strings)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "items") and callable(value.items):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or hasattr(value, "__iter__"):
        return [_plain(v) for v in value]
    return str(value)


def record_job(smk: Any, stage: Callable[..., None], kwargs: dict[str, Any], folder: str | Path) -> Path:
    """Write the job's record (see the module docstring); returns its path."""
    record = {
        "rule": str(smk.rule),
        "stage": f"{stage.__module__}:{stage.__qualname__}",
        "kwargs": _plain(kwargs),
        "input": [str(p) for p in smk.input],
        "output": [str(p) for p in smk.output],
    }
    text = json.dumps(record, sort_keys=True)
    path = Path(folder) / f"{smk.rule}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run_rule(smk: Any, stage: Callable[..., None], **kwargs: Any) -> None:
    """Run ``stage(**kwargs)`` inside a rule: log to the rule's log file, clear errors, exit 1 on failure."""
    log_path = Path(smk.log[0]) if len(smk.log) else None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr = open(log_path, "w", buffering=1, encoding="utf-8")
    configure_logging()
    if os.environ.get(RECORD_ENV):
        record_job(smk, stage, kwargs, os.environ[RECORD_ENV])
    start = time.perf_counter()
    try:
        stage(**kwargs)
    except RadpersonaError as exc:
        logger.error("%s: %s", smk.rule, exc)
        print(f"radpersona error in rule {smk.rule}: {exc}", file=sys.__stderr__)
        sys.exit(1)
    logger.info("rule %s done in %.1f s", smk.rule, time.perf_counter() - start)
