"""Shared fixtures: repository paths and the venv's executables."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

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


@pytest.fixture(scope="session")
def benchmark_module() -> Callable[[str], ModuleType]:
    """Import a script of ``benchmarks/`` by name (``benchmark_module("gpu")`` is benchmarks/gpu.py)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", REPO / "benchmarks" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, repo, snakemake_exe):
    """presets/smoke.yaml run once into a temporary results folder, shared by every test module that reads a
    whole run (the workflow's contract tests, diagnose with its bundle); yields (configfiles, results, root,
    the finished process). No test may leave the run changed: tests/test_workflow.py's rerun checks are dry runs,
    and the one that edits a truth file restores it."""
    import yaml
    from test_workflow import _snakemake

    from radpersona.stages.snakemake import RECORD_ENV

    root = tmp_path_factory.mktemp("smoke")
    results = root / "results"
    layer = root / "where.yaml"
    layer.write_text(
        yaml.safe_dump({"results": str(results), "source": {"root": str(results / "synthetic" / "mrnet")}}),
        encoding="utf-8",
    )
    configs = ["--configfile", str(repo / "presets" / "smoke.yaml"), str(layer)]
    # every job records its stage call and declared files (radpersona.stages.snakemake.record_job)
    env = {RECORD_ENV: str(root / "jobs")}
    proc = _snakemake(snakemake_exe, repo, "--cores", "2", *configs, env=env, timeout=3600)  # 10-40 min on 2 cores
    return configs, results, root, proc
