"""Rule bundle: the model bundle of one experiment and task."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import bundle as bundle_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    bundle_stages.bundle,
    results=snakemake.params.results,
    experiment=snakemake.wildcards.experiment,
    task=snakemake.wildcards.task,
    out=snakemake.output[0],
    ddpm=snakemake.input.ddpm,
    settings=snakemake.params.settings,
    views=snakemake.params.views,
    directions=snakemake.params.directions,
)
