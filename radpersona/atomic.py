"""Atomic file output: write to a temporary file in the target's folder, then rename it into place.

A stage killed midway (Ctrl-C, a SLURM time limit, a full disk) leaves either the old file or none,
never a truncated one that a later stage or a user in pandas would read as complete.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path``, on error it is removed.

    The temporary name keeps the target's suffixes (``.nii.gz``, ``.png``, ...), so writers that pick
    the format from the extension write the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write UTF-8 text atomically (whatever the locale's encoding)."""
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes atomically."""
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def write_csv_atomic(frame: pd.DataFrame, path: str | Path, float_format: str | None = "%.6g") -> None:
    """Write a table as CSV (no index, UTF-8) atomically."""
    with atomic_output(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=float_format, encoding="utf-8")
