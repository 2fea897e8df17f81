"""Rule evaluate_reconstruction: all configurations' tables, mean +/- sd summary and paired Wilcoxon tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import persona as persona_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    persona_stages.evaluate_reconstruction,
    parts=list(snakemake.input),
    table=snakemake.output.table,
    summary=snakemake.output.summary,
    markdown=snakemake.output.md,
)
