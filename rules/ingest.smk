# Ingest: the synthetic cohort (synthetic source only), raw volumes per case, and the cohort table.
# One ingest_case job per case, so `snakemake --keep-going` finishes the other cases when one case's
# files are bad; the `ingest` rule gathers the per-case records into cohort.parquet (with folds).


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


rule ingest_case:
    input:
        source=source_input,
    output:
        raw=expand(R("volumes/raw/{{case}}_{view}.nii.gz"), view=SOURCE_VIEWS),
        record=R("ingest/{case}.parquet"),
    params:
        config={"source": config["source"]},
    log:
        LOG("ingest_case", "{case}"),
    benchmark:
        BENCH("ingest_case", "{case}")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/ingest.py"


rule ingest:
    input:
        records=expand(R("ingest/{case}.parquet"), case=CASES),
    output:
        cohort=R("cohort.parquet"),
    params:
        # only what the folds need: a change of another fingerprint setting must not rerun ingest
        config={"source": config["source"], "fingerprint": {k: config["fingerprint"][k] for k in ("folds", "seed")}},
        truth=R("synthetic/truth") if config["source"]["kind"] == "synthetic" else None,
    log:
        LOG("ingest"),
    benchmark:
        BENCH("ingest")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/ingest.py"
