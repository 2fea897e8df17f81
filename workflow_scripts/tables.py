"""Rule tables: the paper's tables (mean +/- sd over folds, valid with bootstrap CI) and DeLong/McNemar comparisons."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))
from radpersona.stages import evaluate as evaluate_stages
from radpersona.stages.snakemake import run_rule

tasks = list(dict.fromkeys(Path(p).stem.rsplit("_", 1)[1] for p in snakemake.input.predictions))
run_rule(
    snakemake,
    evaluate_stages.tables,
    metrics_csv=snakemake.input.metrics,
    predictions={
        m: [p for p in snakemake.input.predictions if Path(p).stem.rsplit("_", 1)[0] == m]
        for m in snakemake.params.models
    },
    tables=snakemake.params.tables,
    descriptors=snakemake.params.descriptors,
    tasks=tasks,
    compare_to=snakemake.params.compare_to,
    mcnemar_exact_below=snakemake.params.mcnemar_exact_below,
    out_dir=Path(snakemake.output.comparisons).parent,
)
