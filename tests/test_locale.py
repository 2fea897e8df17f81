"""The workflow works under an ASCII locale (``LANG=C`` without Python's UTF-8 mode), as on many cluster nodes.

Snakemake reads the Snakefile, config files, report captions and rule scripts with the locale's
encoding (``snakemake --report`` does), so those files must stay ASCII.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
READ_BY_SNAKEMAKE = [
    "Snakefile",
    "config.yaml",
    "presets/*.yaml",
    "rules/*.smk",
    "report/*.rst",
    "workflow_scripts/*.py",
    "schemas/*.yaml",
    "profiles/*/config.yaml",
    "envs/*.yaml",
]


@pytest.mark.parametrize("pattern", READ_BY_SNAKEMAKE)
def test_files_snakemake_reads_are_ascii(pattern):
    files = sorted(REPO.glob(pattern))
    assert files, f"no file matches {pattern}"
    for path in files:
        for number, line in enumerate(path.read_bytes().split(b"\n"), 1):
            try:
                line.decode("ascii")
            except UnicodeDecodeError as err:
                pytest.fail(
                    f"{path.relative_to(REPO)}:{number}: non-ASCII byte {line[err.start]:#x} "
                    f"(Snakemake reads this file with the locale's encoding): {line.decode('utf-8', 'replace')!r}"
                )
