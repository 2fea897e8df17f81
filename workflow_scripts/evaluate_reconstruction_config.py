"""Rule evaluate_reconstruction_config: held-out healthy and counterfactual reconstruction of one configuration."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.evaluate_reconstruction_config,
    cohort_path=snakemake.input.cohort,
    config_name=snakemake.wildcards.rconfig,
    models=dict(zip(snakemake.params.models, snakemake.input.models)),
    volumes=Path(snakemake.input.volumes[0]).parent,
    out_csv=snakemake.output.table,
    out_figure=snakemake.output.figure,
    persona=snakemake.params.persona,
    preprocess=snakemake.params.preprocess,
    default_reg=snakemake.params.default_reg,
    threads=snakemake.threads,
    source_views=snakemake.params.source_views,
    truth_dir=snakemake.params.truth_dir,
    raw_dir=Path(snakemake.input.raw[0]).parent if snakemake.input.raw else None,
    pre_dir=Path(snakemake.input.pre[0]).parent if snakemake.input.pre else None,
    reference_dir=snakemake.params.reference_dir,
    qc_dir=snakemake.params.qc_dir,
)
