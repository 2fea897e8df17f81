# Ingest: the synthetic cohort (synthetic source only) and the cohort table with raw volumes.


if config["source"]["kind"] == "synthetic":

    rule synthesize:
        output:
            mrnet=directory(config["source"]["root"]),
            truth=directory(R("synthetic/truth")),
        params:
            settings=config["synthetic"],
        log:
            LOG("synthesize"),
        benchmark:
            BENCH("synthesize")
        conda:
            "../envs/core.yaml"
        script:
            "../workflow_scripts/synthesize.py"


rule ingest:
    input:
        source=config["source"]["root"] if config["source"]["kind"] == "synthetic" else [],
    output:
        cohort=R("cohort.parquet"),
        raw=case_volumes(R("volumes/raw")),
    params:
        config={k: config[k] for k in ("source", "fingerprint")},
        truth=R("synthetic/truth") if config["source"]["kind"] == "synthetic" else None,
    log:
        LOG("ingest"),
    benchmark:
        BENCH("ingest")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/ingest.py"
