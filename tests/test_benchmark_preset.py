"""presets/benchmark.yaml: the cohort it generates holds the tears the benchmark needs, its crop and box cover
the default box's physical region, and its DAG has every row of the benchmark table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_workflow import _job_counts, _snakemake

from radpersona.settings import load_settings
from radpersona.synthetic import case_labels

PRESET = "benchmark.yaml"
ROWS = ["proposed", "proposed_g3", "nofs", "NoPersona", "permuted", "lr_l1", "lr_l2", "rf", "mrnet", "elnet"]


@pytest.fixture(scope="module")
def settings(repo):
    return load_settings(repo / "config.yaml", repo / "presets" / PRESET)


def test_the_benchmark_cohort_holds_enough_tears(settings):
    """At least 240 training and 120 valid cases; valid holds >= 25 ACL and >= 40 meniscal tears and both
    classes of abn; the DDPMs get at least 30 healthy training cases. Counted from the generator's own label
    stream (``case_labels``: what ``synthesize`` will draw)."""
    syn = settings.synthetic
    assert syn.n_train >= 240 and syn.n_valid >= 120
    assert syn.difficulty >= 0.5  # the default difficulty or harder
    prevalence = syn.prevalence.as_dict()

    def labels(indices: range) -> list:
        return [case_labels(i, seed=syn.seed, prevalence=prevalence) for i in indices]

    valid = labels(range(syn.n_train, syn.n_train + syn.n_valid))
    train = labels(range(syn.n_train))
    assert sum(c.acl for c in valid) >= 25 and sum(c.men for c in valid) >= 40
    assert 20 <= sum(1 - c.abn for c in valid) < syn.n_valid
    assert sum(1 - c.abn for c in train) >= 30


def test_the_crop_and_box_cover_the_default_box_region(settings, repo):
    """persona.box on the cropped field of view spans the default box's physical fraction of the full view."""
    default = load_settings(repo / "config.yaml")
    crop = settings.preprocess.crop
    assert crop < 1.0
    depth, height, width = settings.persona.box
    assert depth == default.persona.box[0]  # slices are not cropped
    assert height * crop == pytest.approx(default.persona.box[1], abs=0.01)
    assert width * crop == pytest.approx(default.persona.box[2], abs=0.01)


@pytest.mark.slow
def test_the_benchmark_dag_has_every_row(tmp_path, repo, snakemake_exe, settings):
    """A dry run of the preset (on a 24 + 12 case stand-in of its cohort, for time): every experiment and
    baseline is trained for every task, the permuted-label control among them, and the benchmark table lists
    them all."""
    where = tmp_path / "where.yaml"
    layer = {"results": str(tmp_path / "results"), "synthetic": {"n_train": 24, "n_valid": 12}}
    where.write_text(yaml.safe_dump(layer), encoding="utf-8")
    configs = ["--configfile", str(repo / "presets" / PRESET), str(where)]
    proc = _snakemake(snakemake_exe, repo, "-n", "--cores", "2", *configs, timeout=1800)
    output = proc.stdout + proc.stderr
    counts = _job_counts(output)
    experiments = [name for name in ROWS if name in settings.experiments]
    assert len(experiments) == 5 and set(settings.baselines.run) == set(ROWS) - set(experiments)
    folds = settings.fingerprint.folds
    assert counts["train_fingerprint"] == len(experiments) * 3 * (folds + 1)
    assert counts["train_baseline"] == len(settings.baselines.run) * 3
    assert counts["extract_features"] == 36 * len(settings.radiomics.grids)
    assert list(settings.evaluation.tables["benchmark"]) == ROWS
    assert str(Path(tmp_path / "results" / "tables" / "benchmark.md")) in output
