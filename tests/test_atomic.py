"""Atomic output: a writer that fails leaves the previous file and no temporary behind."""

from __future__ import annotations

import pandas as pd
import pytest

from radpersona.atomic import atomic_output, write_csv_atomic, write_text_atomic


def test_success_replaces_the_target_and_keeps_its_suffixes(tmp_path):
    target = tmp_path / "sub" / "vol.nii.gz"
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".nii.gz") and tmp != target
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["vol.nii.gz"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "table.csv"
    write_csv_atomic(pd.DataFrame({"a": [1.0]}), target)
    before = target.read_text(encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_output(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("disk full")
    assert target.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_text_is_utf8_whatever_the_locale(tmp_path):
    target = tmp_path / "t.md"
    write_text_atomic(target, "mean ± sd")
    assert target.read_bytes() == "mean ± sd".encode()
