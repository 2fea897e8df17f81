"""Rule train_baseline: one baseline and task over every fold; predictions in the fingerprint's schema."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import baselines as baselines_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    baselines_stages.train_baseline,
    cohort_path=snakemake.input.cohort,
    baseline=snakemake.wildcards.baseline,
    task=snakemake.wildcards.task,
    out=snakemake.output[0],
    settings=snakemake.params.settings,
    inner_validation=snakemake.params.inner_validation,
    threads=snakemake.threads,
    table_path=snakemake.input.get("table"),
    feature_settings=snakemake.params.feature_settings,
    volumes_dir=Path(snakemake.input.volumes[0]).parent if "volumes" in snakemake.input.keys() else None,
)
