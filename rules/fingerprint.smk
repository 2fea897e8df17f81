# Fingerprint: usage predictor + logistic regression per experiment, task and fold; predictions; localisation.


def fingerprint_table(wc):
    """The wide feature table of the experiment's registration branch and patch grid."""
    exp = S.experiments[wc.experiment]
    return L.wide(exp.reg, exp.grid)


def fingerprint_volumes(cases):
    """Input function: the volumes of ``cases`` in the experiment's registration branch, every view."""
    return lambda wc: [L.working(S.experiments[wc.experiment].reg, c, v) for c in cases for v in SOURCE_VIEWS]


def lesion_truth():
    """The true lesion masks of every case and view (synthetic cohorts)."""
    # Transitional: while rule synthesize declares the truth folder as one directory() output, the folder
    # stands for its files (Snakemake cannot depend on a file inside a directory output).
    if rules.has("synthesize") and L.synthetic_truth_dir() in [str(f) for f in rules.synthesize.output]:
        return [L.synthetic_truth_dir()]
    return [L.truth(c, v, "lesion") for c in CASES for v in SOURCE_VIEWS]


def localisation_inputs(wc):
    """Everything localisation reads: fingerprints and populations per task, and per case and view the true
    lesion mask and raw volume (its grid), plus the registered volume and affine for the reg branch."""
    inputs = {
        "cohort": L.cohort(),
        "fingerprints": [L.fingerprints(wc.experiment, task) for task in TASKS],
        "populations": [L.population(wc.experiment, task) for task in TASKS],
        "truth": lesion_truth(),
        "raw": [L.raw(c, v) for c in CASES for v in SOURCE_VIEWS],
    }
    if S.experiments[wc.experiment].reg == "reg":
        inputs["references"] = [L.reference(v) for v in SOURCE_VIEWS]
        inputs["registered"] = [L.registered(c, v) for c in CASES for v in SOURCE_VIEWS]
        inputs["affines"] = [L.affine(c, v) for c in CASES for v in SOURCE_VIEWS]
    return inputs


rule train_fingerprint:
    input:
        cohort=L.cohort(),
        table=fingerprint_table,
        volumes=fingerprint_volumes(TRAIN_CASES),  # a fold trains on training cases only
    output:
        L.fingerprint_model("{experiment}", "{task}", "{fold}"),
    params:
        results=S.results,
        reg=lambda wc: S.experiments[wc.experiment].reg,
        grid=lambda wc: S.experiments[wc.experiment].grid,
        settings=lambda wc: S.experiments[wc.experiment].fingerprint.to_config(),
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
        table=fingerprint_table,
        volumes=fingerprint_volumes(CASES),  # held-out training folds and valid
        models=[L.fingerprint_model("{experiment}", "{task}", fold) for fold in FOLDS],
    output:
        predictions=L.predictions("{experiment}", "{task}"),
        fingerprints=L.fingerprints("{experiment}", "{task}"),
        population=L.population("{experiment}", "{task}"),
    params:
        results=S.results,
        reg=lambda wc: S.experiments[wc.experiment].reg,
        grid=lambda wc: S.experiments[wc.experiment].grid,
        folds=FOLDS,
        settings=lambda wc: S.experiments[wc.experiment].fingerprint.to_config(),
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
        unpack(localisation_inputs),
    output:
        L.localisation("{experiment}"),
    params:
        results=S.results,
        preprocess=S.preprocess.to_config(),
        reg=lambda wc: S.experiments[wc.experiment].reg,
        grid=lambda wc: S.experiments[wc.experiment].grid,
        box=list(S.persona.box),
    log:
        L.log("localisation", "{experiment}"),
    benchmark:
        L.benchmark("localisation", "{experiment}")
    conda:
        "../envs/registration.yaml"
    script:
        "../workflow_scripts/localisation.py"
