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
        views=SOURCE_VIEWS,
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
        population=R("fingerprints/{experiment}_{task}_population.parquet"),
    params:
        folds=FOLDS,
        settings=lambda wc: EXPERIMENTS[wc.experiment]["fingerprint"],
        views=SOURCE_VIEWS,
    threads: THREADS
    log:
        LOG("predict", "{experiment}_{task}"),
    benchmark:
        BENCH("predict", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/predict.py"


rule localisation:
    input:
        cohort=R("cohort.parquet"),
        fingerprints=expand(R("fingerprints/{{experiment}}_{task}.parquet"), task=TASKS),
        populations=expand(R("fingerprints/{{experiment}}_{task}_population.parquet"), task=TASKS),
        registration=lambda wc: (
            expand(R("registration/reference_{view}.nii.gz"), view=SOURCE_VIEWS)
            if EXPERIMENTS[wc.experiment]["reg"] == "reg"
            else []
        ),
    output:
        R("tables/localisation_{experiment}.csv"),
    params:
        preprocess=config["preprocess"],
        reg=lambda wc: EXPERIMENTS[wc.experiment]["reg"],
        grid=lambda wc: EXPERIMENTS[wc.experiment]["grid"],
        box=config["persona"]["box"],
    log:
        LOG("localisation", "{experiment}"),
    benchmark:
        BENCH("localisation", "{experiment}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/localisation.py"
