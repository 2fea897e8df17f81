"""Rule preprocess: resize and normalise one case's views."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import preprocess as preprocess_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    preprocess_stages.preprocess,
    case=snakemake.wildcards.case,
    raw=list(snakemake.input.raw),
    out=list(snakemake.output.vol),
    settings=snakemake.params.settings,
    views=snakemake.params.views,
)
