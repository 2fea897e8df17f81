"""Rule registration_qc: gather per-case QC rows into qc.parquet."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import register as register_stages
from radpersona.stages.snakemake import run_rule

run_rule(
    snakemake,
    register_stages.registration_qc,
    parts=list(snakemake.input.parts),
    results=snakemake.params.results,
)
