"""Rules ingest_case (one case: raw volumes + record) and ingest (gather records into the cohort table)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.ingest import stage_cohort, stage_ingest_case
from radpersona.workflow import snakemake_entry

if snakemake.rule == "ingest_case":
    snakemake_entry(
        snakemake,
        stage_ingest_case,
        config=snakemake.params.config,
        case=snakemake.wildcards.case,
        raw=list(snakemake.output.raw),
        record_out=snakemake.output.record,
    )
else:
    snakemake_entry(
        snakemake,
        stage_cohort,
        config=snakemake.params.config,
        records=list(snakemake.input.records),
        cohort_path=snakemake.output.cohort,
        truth_dir=snakemake.params.truth,
    )
