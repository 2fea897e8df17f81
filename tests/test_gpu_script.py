"""benchmarks/gpu.sh: refuses clearly without CUDA (writing nothing), and its JSON merge counts and checks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu.sh"
BASH = shutil.which("bash")

pytestmark = pytest.mark.skipif(BASH is None, reason="needs bash")


def test_script_parses() -> None:
    result = subprocess.run([BASH, "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_without_cuda_it_fails_with_one_clear_message_and_writes_no_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(out), "PYTHON": sys.executable}
    result = subprocess.run([BASH, str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("benchmarks/gpu.sh: no CUDA device (torch.cuda.is_available() is False")
    assert lines[0].endswith("this script needs a GPU")
    assert result.stdout == ""
    assert not out.exists() or not any(out.iterdir())


def test_combine_counts_the_tests_and_checks_the_goals(tmp_path: Path, benchmark_module) -> None:
    gpu = benchmark_module("gpu")
    (tmp_path / "tests.xml").write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.a" name="ok1"/><testcase classname="tests.a" name="ok2"/>'
        '<testcase classname="tests.b" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="tests.b" name="later"><skipped message="y"/></testcase>'
        "</testsuite></testsuites>"
    )
    (tmp_path / "tests.files").write_text("tests/a.py\ntests/b.py\n")
    (tmp_path / "tests.log").write_text("1 failed, 2 passed, 1 skipped\n")
    radiomics = {"engines": {"ours": {"extrapolated": {"patients": 1370, "seconds": 42.0}}}}
    (tmp_path / "radiomics.json").write_text(json.dumps(radiomics))
    models = {"ddpm_train": {"volumes_per_second": 75.0}, "ddim_sample": {"volumes_per_second": 3.0}}
    (tmp_path / "models.json").write_text(json.dumps(models))
    for name, rc in (("tests", 1), ("radiomics", 0), ("models", 0)):
        (tmp_path / f"{name}.rc").write_text(f"{rc}\n")

    result = gpu.combine(tmp_path, wall_seconds=12.0)

    tests = result["tests"]
    assert (tests["passed"], tests["failed"], tests["errors"], tests["skipped"], tests["total"]) == (2, 1, 0, 1, 4)
    assert tests["failing"] == ["tests.b::bad"] and tests["files"] == ["tests/a.py", "tests/b.py"]
    assert tests["log_tail"] == ["1 failed, 2 passed, 1 skipped"]
    goals = result["goals"]
    assert goals["radiomics_1370_patients_seconds"]["met"] is True
    assert goals["ddpm_train_volumes_per_second"]["met"] is True
    assert goals["ddim_sample_volumes_per_second"]["met"] is False
    assert result["ok"] is False
    json.dumps(result)  # plain JSON


def test_combine_marks_a_part_that_left_no_json(tmp_path: Path, benchmark_module) -> None:
    gpu = benchmark_module("gpu")
    (tmp_path / "tests.xml").write_text('<testsuite><testcase classname="t" name="one"/></testsuite>')
    for name, rc in (("tests", 0), ("radiomics", 124), ("models", 0)):
        (tmp_path / f"{name}.rc").write_text(f"{rc}\n")
    (tmp_path / "radiomics.log").write_text("still running\n")
    (tmp_path / "models.json").write_text("{}")

    result = gpu.combine(tmp_path)

    assert result["radiomics"]["timed_out"] is True and result["radiomics"]["result"] is None
    assert result["radiomics"]["log_tail"] == ["still running"]
    assert result["goals"]["radiomics_1370_patients_seconds"]["met"] is None
    assert result["tests"]["passed"] == 1 and result["ok"] is False
