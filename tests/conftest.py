"""Shared fixtures: repository paths and the venv's executables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def snakemake_exe() -> str:
    exe = BIN / "snakemake"
    if not exe.exists():
        pytest.skip("snakemake is not installed next to this Python")
    return str(exe)
