"""Rules ingest_case (one case: raw volumes + record) and ingest (gather records into the cohort table)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import ingest as ingest_stages
from radpersona.stages.snakemake import run_rule

if snakemake.rule == "ingest_case":
    run_rule(
        snakemake,
        ingest_stages.ingest_case,
        config=snakemake.params.config,
        case=snakemake.wildcards.case,
        raw=list(snakemake.output.raw),
        record_out=snakemake.output.record,
    )
else:
    run_rule(
        snakemake,
        ingest_stages.ingest,
        config=snakemake.params.config,
        records=list(snakemake.input.records),
        cohort_path=snakemake.output.cohort,
        truth_dir=snakemake.params.truth,
    )
