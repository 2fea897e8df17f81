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
    out_csv=snakemake.output.table,
    out_summary_csv=snakemake.output.summary,
    out_md=snakemake.output.md,
)
