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
    bad.write_text(yaml.safe_dump({"radiomics": {"bin_width": -1}}), encoding="utf-8")
    assert main(["check-config", "config.yaml", str(bad)]) == 1
    assert "'radiomics.bin_width'" in capsys.readouterr().err


def test_version_lists_reg_aladin(capsys):
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert "radpersona" in out and "reg_aladin 1.5" in out


def test_explain_writes_page(tmp_path, capsys, monkeypatch, repo):
    """`radpersona explain` on a tiny results folder (the fixture of tests/test_explain.py)."""
    import sys

    sys.path.insert(0, str(repo / "tests"))
    from test_explain import BOX, EXPLAINED, GRID, build_results

    results = build_results(tmp_path / "results")
    override = tmp_path / "override.yaml"
    override.write_text(
        yaml.safe_dump(
            {
                "persona": {"box": list(BOX)},
                "report": {
                    "cases": [],
                    "auto_cases": 1,
                    "top_features": 4,
                    "slices_per_view": 1,
                    "top_beta": 5,
                    "dpi": 30,
                },
                "experiments": {"proposed": {"reg": "reg", "grid": GRID, "fingerprint": {}}},
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(repo)
    out = tmp_path / "page.html"
    argv = [
        "explain",
        "--case",
        EXPLAINED,
        "--task",
        "acl",
        "--results",
        str(results),
        "--out",
        str(out),
        "--config",
        "config.yaml",
        str(override),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"case {EXPLAINED} acl" in printed and str(out) in printed
    assert out.read_text(encoding="utf-8").count('<tr class="feature"') == 4
    assert main([*argv[:2], "9999", *argv[3:]]) == 1
    assert "case '9999'" in capsys.readouterr().err
