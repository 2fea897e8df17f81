"""Rule predict: predictions and fingerprints of every reported case of one experiment and task."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import fingerprint as fingerprint_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    fingerprint_stages.predict,
    cohort_path=snakemake.input.cohort,
    wide_path=snakemake.input.table,
    volumes=Path(snakemake.input.volumes[0]).parent,
    models=dict(zip(snakemake.params.folds, snakemake.input.models)),
    predictions_out=snakemake.output.predictions,
    fingerprints_out=snakemake.output.fingerprints,
    population_out=snakemake.output.population,
    experiment=snakemake.wildcards.experiment,
    task=snakemake.wildcards.task,
    settings=snakemake.params.settings,
    threads=snakemake.threads,
    views=snakemake.params.views,
)
