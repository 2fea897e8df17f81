# Fingerprint: usage predictor + logistic regression per experiment, task and fold; predictions; localisation.

# input functions are lambdas (the linter wants no `def` beside rules); results_folder: rules/common.smk
# the experiment's registration branch and patch grid
experiment_reg = lambda wc: S.experiments[wc.experiment].reg
experiment_grid = lambda wc: S.experiments[wc.experiment].grid
experiment_settings = lambda wc: S.experiments[wc.experiment].fingerprint.to_config()
# the wide feature table of the experiment's branch and grid
experiment_wide = lambda wc: L.wide(experiment_reg(wc), experiment_grid(wc))
# the volumes of `cases` in the experiment's branch, every view
experiment_volumes_of = lambda cases: lambda wc: [L.working(experiment_reg(wc), c, v) for c in cases for v in SOURCE_VIEWS]
# every case's files in the reg branch that map the true lesion onto the registered grid
registered_truth_inputs = lambda wc: (
    {
        "references": [L.reference(v) for v in SOURCE_VIEWS],
        "registered": [L.registered(c, v) for c in CASES for v in SOURCE_VIEWS],
        "affines": [L.affine(c, v) for c in CASES for v in SOURCE_VIEWS],
    }
    if experiment_reg(wc) == "reg"
    else {}
)
# the true lesion masks of every case and view (synthetic cohorts)
LESION_TRUTH = [L.truth(c, v, "lesion") for c in CASES for v in SOURCE_VIEWS]


rule train_fingerprint:
    input:
        cohort=L.cohort(),
        table=experiment_wide,
        volumes=experiment_volumes_of(TRAIN_CASES),  # a fold trains on training cases only
    output:
        L.fingerprint_model("{experiment}", "{task}", "{fold}"),
    params:
        results=results_folder,
        reg=experiment_reg,
        grid=experiment_grid,
        settings=experiment_settings,
        views=SOURCE_VIEWS,
    threads: THREADS
    resources:
        gpu=lambda wc: int(S.experiments[wc.experiment].fingerprint.device == "cuda"),
    log:
        L.log("train_fingerprint", "{experiment}_{task}_fold{fold}"),
    benchmark:
        L.benchmark("train_fingerprint", "{experiment}_{task}_fold{fold}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_fingerprint.py"


rule predict:
    input:
        cohort=L.cohort(),
        table=experiment_wide,
        volumes=experiment_volumes_of(CASES),  # held-out training folds and valid
        models=[L.fingerprint_model("{experiment}", "{task}", fold) for fold in FOLDS],
    output:
        predictions=L.predictions("{experiment}", "{task}"),
        fingerprints=L.fingerprints("{experiment}", "{task}"),
        population=L.population("{experiment}", "{task}"),
    params:
        results=results_folder,
        reg=experiment_reg,
        grid=experiment_grid,
        folds=FOLDS,
        settings=experiment_settings,
        views=SOURCE_VIEWS,
    threads: THREADS
    log:
        L.log("predict", "{experiment}_{task}"),
    benchmark:
        L.benchmark("predict", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/predict.py"


rule localisation:
    input:
        unpack(registered_truth_inputs),
        cohort=L.cohort(),
        fingerprints=[L.fingerprints("{experiment}", task) for task in SOURCE_TASKS],
        populations=[L.population("{experiment}", task) for task in SOURCE_TASKS],
        truth=LESION_TRUTH,
        raw=[L.raw(c, v) for c in CASES for v in SOURCE_VIEWS],  # the raw grid of each lesion mask
    output:
        L.localisation("{experiment}"),
    params:
        results=results_folder,
        preprocess=S.preprocess.to_config(),
        reg=experiment_reg,
        grid=experiment_grid,
        box=list(S.persona.box),
    log:
        L.log("localisation", "{experiment}"),
    benchmark:
        L.benchmark("localisation", "{experiment}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/localisation.py"
