"""Rule evaluate_reconstruction: all configurations' tables, mean +/- sd summary and paired Wilcoxon tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.persona.reconstruction import stage_reconstruction_tables
from radpersona.workflow import snakemake_entry

snakemake_entry(
    snakemake,
    stage_reconstruction_tables,
    parts=list(snakemake.input),
    out_csv=snakemake.output.table,
    out_summary_csv=snakemake.output.summary,
    out_md=snakemake.output.md,
)
