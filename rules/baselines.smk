# Baselines: classical radiomics (scikit-learn), MRNet and ELNet on the fingerprint's folds and threshold rule.

BASELINES = list(config["baselines"]["run"])
CNN_BASELINES = ("mrnet", "elnet")
CLASSICAL_FROM = config["baselines"]["classical"]["features_from"]

_clash = sorted(set(BASELINES) & set(EXPERIMENTS))
if _clash:
    raise ValueError(f"config key 'baselines.run': {_clash} are also experiment names; rename the experiments")
if any(b not in CNN_BASELINES for b in BASELINES) and CLASSICAL_FROM not in EXPERIMENTS:
    raise ValueError(
        f"config key 'baselines.classical.features_from': {CLASSICAL_FROM!r} is not an experiment; known: {sorted(EXPERIMENTS)}"
    )

# classical baselines read an experiment's wide table; CNN baselines read every case's volumes
BASELINE_VOLUMES = case_volumes(R(f"volumes/{config['baselines']['cnn']['volumes']}"))
BASELINE_TABLE = (
    R(f"features/{EXPERIMENTS[CLASSICAL_FROM]['reg']}/g{EXPERIMENTS[CLASSICAL_FROM]['grid']}/table.parquet")
    if CLASSICAL_FROM in EXPERIMENTS
    else None
)


rule train_baseline:
    input:
        unpack(
            lambda wc: {"cohort": R("cohort.parquet"), "volumes": BASELINE_VOLUMES}
            if wc.baseline in CNN_BASELINES
            else {"cohort": R("cohort.parquet"), "table": BASELINE_TABLE}
        ),
    output:
        R("predictions/{baseline}_{task}.parquet"),
    wildcard_constraints:
        baseline="|".join(BASELINES) if BASELINES else "(?!)",
    params:
        settings=config["baselines"],
        inner_validation=config["fingerprint"]["inner_validation"],
        # only the column selection: other fingerprint settings must not rerun the baselines
        feature_settings=lambda wc: (
            None
            if wc.baseline in CNN_BASELINES
            else {k: EXPERIMENTS[CLASSICAL_FROM]["fingerprint"].get(k) for k in ("representation", "families")}
        ),
    threads: THREADS
    resources:
        gpu=lambda wc: int(wc.baseline in CNN_BASELINES and config["baselines"]["cnn"]["device"] == "cuda"),
    log:
        LOG("train_baseline", "{baseline}_{task}"),
    benchmark:
        BENCH("train_baseline", "{baseline}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_baseline.py"
