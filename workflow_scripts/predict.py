"""Rule predict: predictions and fingerprints of every reported case of one experiment and task."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import fingerprint as fingerprint_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    fingerprint_stages.predict,
    results=snakemake.params.results,
    experiment=snakemake.wildcards.experiment,
    reg=snakemake.params.reg,
    grid=snakemake.params.grid,
    task=snakemake.wildcards.task,
    folds=snakemake.params.folds,
    predictions_out=snakemake.output.predictions,
    fingerprints_out=snakemake.output.fingerprints,
    population_out=snakemake.output.population,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    views=snakemake.params.views,
)
