# Evaluate: metrics per model, task, fold and split; the paper's tables with DeLong/McNemar; ROC and calibration plots.
# Settings (radpersona.settings) already refused a compare_to that is not an experiment and table rows that are
# neither experiments nor baselines.

from radpersona.evaluation.tables import describe_baseline, describe_experiment, written_tables
from radpersona.vocabulary import CNN_BASELINES

MODELS = [*S.experiments, *S.baselines.run]  # experiments, then baselines (rules/baselines.smk)
TABLES = written_tables(S.evaluation.tables, MODELS)
PREDICTIONS = [L.predictions(m, task) for m in MODELS for task in SOURCE_TASKS]
# the paper's descriptive columns (N, 2nd RF, UP, Persona, T, Reg) of every experiment and baseline
DESCRIPTORS = {name: describe_experiment(exp.to_config(), S.radiomics.families) for name, exp in S.experiments.items()}
DESCRIPTORS.update(
    {
        name: describe_baseline(
            name,
            None if name in CNN_BASELINES else S.experiments[S.baselines.classical.features_from].to_config(),
            S.radiomics.families,
        )
        for name in S.baselines.run
    }
)


rule metrics:
    input:
        PREDICTIONS,
    output:
        csv=L.table("metrics"),
        md=L.table("metrics", "md"),
    params:
        results=results_folder,
        models=MODELS,
        bootstrap=S.evaluation.bootstrap,
        seed=S.evaluation.seed,
        tasks=SOURCE_TASKS,
        persona_protocol=str(S.persona.protocol),  # the tables say how the personas were made
    log:
        L.log("metrics"),
    benchmark:
        L.benchmark("metrics")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/metrics.py"


rule tables:
    input:
        metrics=L.table("metrics"),
        predictions=PREDICTIONS,
    output:
        tables=[report(L.table(name), caption="../report/table.rst", category="Tables") for name in TABLES],
        tables_md=[L.table(name, "md") for name in TABLES],
        comparisons=report(
            L.table("comparisons"),
            caption="../report/comparisons.rst",
            category="Tables",
        ),
        comparisons_md=L.table("comparisons", "md"),
    params:
        results=results_folder,
        models=MODELS,
        evaluation=S.evaluation.to_config(),
        descriptors=DESCRIPTORS,
        tasks=SOURCE_TASKS,
        persona_protocol=str(S.persona.protocol),
    log:
        L.log("tables"),
    benchmark:
        L.benchmark("tables")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/tables.py"


rule plots:
    input:
        PREDICTIONS,
    output:
        roc=report(
            [L.plot(f"roc_{task}") for task in SOURCE_TASKS],
            caption="../report/roc.rst",
            category="Figures",
            subcategory="ROC curves",
        ),
        calibration=report(
            L.plot("calibration"),
            caption="../report/calibration.rst",
            category="Figures",
            subcategory="Calibration",
        ),
    params:
        results=results_folder,
        models=MODELS,
        plots=S.evaluation.plots.to_config(),
        tasks=SOURCE_TASKS,
    log:
        L.log("plots"),
    benchmark:
        L.benchmark("plots")
    conda:
        "../envs/core.yaml"
    script:
        "../workflow_scripts/plots.py"
