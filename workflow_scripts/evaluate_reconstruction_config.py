"""Rule evaluate_reconstruction_config: held-out healthy and counterfactual reconstruction of one configuration."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.evaluate_reconstruction_config,
    results=snakemake.params.results,
    config_name=snakemake.wildcards.rconfig,
    models=snakemake.params.models,
    table=snakemake.output.table,
    figure=snakemake.output.figure,
    overrides=snakemake.params.overrides,
    persona=snakemake.params.persona,
    sample=snakemake.params.sample,
    location_seed=snakemake.params.location_seed,
    preprocess=snakemake.params.preprocess,
    synthetic=snakemake.params.synthetic,
    default_reg=snakemake.params.default_reg,
    source_views=snakemake.params.source_views,
    threads=snakemake.threads,
)
