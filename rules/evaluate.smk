# Evaluate: metrics per model, task, fold and split; the paper's tables with DeLong/McNemar; ROC and calibration plots.

from radpersona.evaluation import describe_baseline, describe_experiment

BASELINES_EVALUATED = BASELINES  # from rules/baselines.smk, included before this file
MODELS = list(EXPERIMENTS) + BASELINES_EVALUATED
EVALUATION = config["evaluation"]
TABLES = EVALUATION["tables"]

if EVALUATION["compare_to"] not in EXPERIMENTS:
    raise ValueError(f"config key 'evaluation.compare_to': {EVALUATION['compare_to']!r} is not an experiment; known: {sorted(EXPERIMENTS)}")
for _table, _rows in TABLES.items():
    _unknown = [r for r in _rows if r not in MODELS]
    if _unknown and BASELINES_EVALUATED:
        raise ValueError(
            f"config key 'evaluation.tables.{_table}': {_unknown} are neither experiments nor baselines in baselines.run "
            f"(known: {MODELS})"
        )

PREDICTIONS = [R(f"predictions/{m}_{task}.parquet") for m in MODELS for task in TASKS]
# the paper's descriptive columns (N, 2nd RF, UP, Persona, T, Reg) of every experiment and baseline
DESCRIPTORS = {name: describe_experiment(exp, config["radiomics"]["families"]) for name, exp in EXPERIMENTS.items()}
DESCRIPTORS.update(
    {
        name: describe_baseline(
            name,
            None if name in ("mrnet", "elnet") else EXPERIMENTS.get(config["baselines"]["classical"]["features_from"]),
            config["radiomics"]["families"],
        )
        for name in BASELINES_EVALUATED
    }
)


rule metrics:
    input:
        PREDICTIONS,
    output:
        csv=R("tables/metrics.csv"),
        md=R("tables/metrics.md"),
    params:
        evaluation={k: EVALUATION[k] for k in ("bootstrap", "seed")},
    log:
        LOG("metrics"),
    benchmark:
        BENCH("metrics")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/metrics.py"


rule tables:
    input:
        metrics=R("tables/metrics.csv"),
        predictions=PREDICTIONS,
    output:
        tables=[report(R(f"tables/{name}.csv"), caption="../report/table.rst", category="Tables") for name in TABLES if set(TABLES[name]) <= set(MODELS)],
        tables_md=[R(f"tables/{name}.md") for name in TABLES if set(TABLES[name]) <= set(MODELS)],
        comparisons=report(
            R("tables/comparisons.csv"),
            caption="../report/comparisons.rst",
            category="Tables",
        ),
        comparisons_md=R("tables/comparisons.md"),
    params:
        models=MODELS,
        tables={name: rows for name, rows in TABLES.items() if set(rows) <= set(MODELS)},
        descriptors=DESCRIPTORS,
        compare_to=EVALUATION["compare_to"],
        mcnemar_exact_below=EVALUATION["mcnemar_exact_below"],
    log:
        LOG("tables"),
    benchmark:
        BENCH("tables")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/tables.py"


rule plots:
    input:
        PREDICTIONS,
    output:
        roc=report(
            expand(R("plots/roc_{task}.png"), task=TASKS),
            caption="../report/roc.rst",
            category="Figures",
            subcategory="ROC curves",
        ),
        calibration=report(
            R("plots/calibration.png"),
            caption="../report/calibration.rst",
            category="Figures",
            subcategory="Calibration",
        ),
    params:
        models=MODELS,
        split=EVALUATION["plots"]["split"],
        n_bins=EVALUATION["plots"]["calibration_bins"],
    log:
        LOG("plots"),
    benchmark:
        BENCH("plots")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plots.py"
