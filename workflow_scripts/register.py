"""Rule register: reg_aladin of one case's views to the references, with QC."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import register as register_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    register_stages.register,
    case=snakemake.wildcards.case,
    views=list(snakemake.params.views),
    settings=snakemake.params.settings,
    results=snakemake.params.results,
    threads=snakemake.threads,
)
