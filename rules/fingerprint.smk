# Fingerprint: usage predictor + logistic regression per experiment, task and fold; predictions.



rule train_fingerprint:
    input:
        cohort=R("cohort.parquet"),
        table=experiment_table,
        volumes=experiment_volumes,
    output:
        R("models/fingerprint/{experiment}_{task}_fold{fold}.pt"),
    params:
        settings=lambda wc: EXPERIMENTS[wc.experiment]["fingerprint"],
    threads: THREADS
    resources:
        gpu=lambda wc: int(EXPERIMENTS[wc.experiment]["fingerprint"]["device"] == "cuda"),
    log:
        LOG("train_fingerprint", "{experiment}_{task}_fold{fold}"),
    benchmark:
        BENCH("train_fingerprint", "{experiment}_{task}_fold{fold}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_fingerprint.py"


rule predict:
    input:
        cohort=R("cohort.parquet"),
        table=experiment_table,
        volumes=experiment_volumes,
        models=expand(R("models/fingerprint/{{experiment}}_{{task}}_fold{fold}.pt"), fold=FOLDS),
    output:
        predictions=R("predictions/{experiment}_{task}.parquet"),
        fingerprints=R("fingerprints/{experiment}_{task}.parquet"),
    params:
        folds=FOLDS,
        settings=lambda wc: EXPERIMENTS[wc.experiment]["fingerprint"],
    threads: THREADS
    log:
        LOG("predict", "{experiment}_{task}"),
    benchmark:
        BENCH("predict", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/predict.py"
