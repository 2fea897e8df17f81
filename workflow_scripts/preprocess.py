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
    views=list(snakemake.params.views),
    settings=snakemake.params.settings,
    results=snakemake.params.results,
)
