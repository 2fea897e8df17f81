# Evaluate: metrics per experiment, task, fold and split.


rule metrics:
    input:
        expand(R("predictions/{experiment}_{task}.parquet"), experiment=list(EXPERIMENTS), task=TASKS),
    output:
        csv=R("tables/metrics.csv"),
        md=R("tables/metrics.md"),
    params:
        evaluation=config["evaluation"],
    log:
        LOG("metrics"),
    benchmark:
        BENCH("metrics")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/metrics.py"
