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
        source=snakemake.params.source,
        case=snakemake.wildcards.case,
        results=snakemake.params.results,
    )
else:
    run_rule(
        snakemake,
        ingest_stages.ingest,
        source=snakemake.params.source,
        folds=snakemake.params.folds,
        seed=snakemake.params.fold_seed,
        records=list(snakemake.input.records),
        results=snakemake.params.results,
    )
