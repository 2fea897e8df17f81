"""Rule localisation: do the top fingerprint features lie in patches overlapping the true lesion?"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import fingerprint as fingerprint_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    fingerprint_stages.localisation,
    results=snakemake.params.results,
    experiment=snakemake.wildcards.experiment,
    out=snakemake.output[0],
    preprocess=snakemake.params.preprocess,
    reg=snakemake.params.reg,
    box=snakemake.params.box,
    grid=snakemake.params.grid,
)
