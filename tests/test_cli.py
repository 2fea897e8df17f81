"""The radpersona console script."""

from __future__ import annotations

import yaml

from radpersona.cli import main


def test_check_config_ok(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    assert main(["check-config", "config.yaml", "presets/smoke.yaml"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_check_config_names_bad_key(repo, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(repo)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"radiomics": {"bin_width": -1}}))
    assert main(["check-config", "config.yaml", str(bad)]) == 1
    assert "'radiomics.bin_width'" in capsys.readouterr().err


def test_version_lists_reg_aladin(capsys):
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert "radpersona" in out and "reg_aladin 1.5" in out
