# Shared: the settings (parsed once, every cross-field rule), the results layout, the case list, wildcards.
# Layers: config -> radpersona.settings.Settings (S) -> radpersona.layout.Layout (L) -> rules -> radpersona.stages
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from radpersona.ingest import list_cases, source_tasks, source_views
from radpersona.layout import Layout
from radpersona.settings import Settings
from radpersona.vocabulary import GRIDS, IMAGE_KINDS, REG_VARIANTS

if not config:
    raise ValueError(f"no configuration loaded: run from the repository ({workflow.basedir}) or pass --configfile")
S = Settings.parse(config)
L = Layout(S.results)

CASES_TABLE = list_cases(S.source, S.synthetic)  # case, split and the source files of each case
CASES = CASES_TABLE["case"].tolist()
TRAIN_CASES = CASES_TABLE.loc[CASES_TABLE["split"] == "train", "case"].tolist()
# the views the source has (KneeMRI: sagittal only); every per-view rule expands over these
SOURCE_VIEWS = source_views(S.source)
S.check_views(SOURCE_VIEWS)
# the tasks the source labels (KneeMRI: acl only); every per-task rule expands over these
SOURCE_TASKS = source_tasks(S.source)
S.check_cohort(CASES, TRAIN_CASES)
FOLDS = [str(k) for k in range(S.fingerprint.folds)] + ["all"]
THREADS = S.resources.torch_threads


wildcard_constraints:
    case="|".join(CASES),
    view="|".join(SOURCE_VIEWS),
    reg="|".join(REG_VARIANTS),
    grid="|".join(str(g) for g in GRIDS),
    task="|".join(SOURCE_TASKS),
    fold=r"\d+|all",
    experiment="|".join(S.experiments),


def results_folder(wildcards):
    """``params: results=results_folder`` for a stage that opens its files through Layout(results).

    A function, not the string: `snakemake --lint` flags a string param that is a prefix of the rule's
    files (it expects such a prefix to be derived from them); here rule and stage build their paths
    with the same Layout instead.
    """
    return S.results


# ---- report: explanation pages and population summaries (rules/report.smk)
SYNTHETIC_TRUTH = S.source.kind == "synthetic"  # synthetic cohorts: true lesions outlined and counted


def explain_cases():
    """Cases with a page: report.cases (checked against the cohort by Settings), or the first report.auto_cases
    cases of the valid split."""
    if S.report.cases:
        return list(S.report.cases)
    valid = CASES_TABLE.loc[CASES_TABLE["split"] == "valid", "case"].tolist()
    return valid[: S.report.auto_cases]


def truth_inputs(reg, cases):
    """What the true lesion of ``cases`` is read from: the lesion masks, the raw and preprocessed volumes (the
    geometry the mask is brought through) and, for reg, each view's affine."""
    if not SYNTHETIC_TRUTH:
        return {}
    inputs = {
        "truth": [L.truth(c, v, "lesion") for c in cases for v in SOURCE_VIEWS],
        "raw": [L.raw(c, v) for c in cases for v in SOURCE_VIEWS] + [L.pre(c, v) for c in cases for v in SOURCE_VIEWS],
    }
    if reg == "reg":
        inputs["affines"] = [L.affine(c, v) for c in cases for v in SOURCE_VIEWS]
    return inputs


def explain_inputs(wc):
    """Everything a page reads: tables, every fold model, the case's volumes (and its truth for synthetic)."""
    reg = S.experiments[wc.experiment].reg
    return {
        "cohort": L.cohort(),
        "predictions": L.predictions(wc.experiment, wc.task),
        "fingerprints": L.fingerprints(wc.experiment, wc.task),
        "models": [L.fingerprint_model(wc.experiment, wc.task, fold) for fold in FOLDS],
        "volumes": [L.image(image, reg, wc.case, v) for image in IMAGE_KINDS for v in SOURCE_VIEWS],
        **truth_inputs(reg, [wc.case]),
    }


def summary_inputs(wc):
    """Everything a summary reads: tables, the model trained on all of train, every case's working volumes
    (and truth for synthetic)."""
    reg = S.experiments[wc.experiment].reg
    return {
        "cohort": L.cohort(),
        "predictions": L.predictions(wc.experiment, wc.task),
        "fingerprints": L.fingerprints(wc.experiment, wc.task),
        "model": L.fingerprint_model(wc.experiment, wc.task, "all"),
        "volumes": [L.working(reg, c, v) for c in CASES for v in SOURCE_VIEWS],
        **truth_inputs(reg, CASES),
    }


def report_outputs():
    """Pages and summaries of every experiment and task (add to rule all)."""
    outputs = [L.summary(e, t, "summary.csv") for e in S.experiments for t in SOURCE_TASKS]
    outputs += [L.explanation(e, t, c) for e in S.experiments for t in SOURCE_TASKS for c in explain_cases()]
    return outputs


# what both rules read of the settings: the experiment's branch and grid, the persona box, the report section
# (a dict literal: `report` at the start of a line is a Snakemake keyword)
REPORT_PARAMS = {
    "results": results_folder,
    "reg": lambda wc: S.experiments[wc.experiment].reg,
    "grid": lambda wc: S.experiments[wc.experiment].grid,
    "box": list(S.persona.box),
    "crop": S.preprocess.crop,
    "report": S.report.to_config(),
}


def final_outputs():
    """The targets of the default run (its tables are TABLES, those the evaluation rules write)."""
    outputs = [L.table("metrics")]
    if "reg" in S.registration.variants:
        outputs.append(L.qc())
    for name in S.experiments:
        outputs += [L.fingerprints(name, task) for task in SOURCE_TASKS]
        if SYNTHETIC_TRUTH:
            outputs.append(L.localisation(name))
    if SYNTHETIC_TRUTH:
        outputs += [L.signal_audit(), L.signal_audit("md")]
    outputs += [L.table(name) for name in TABLES]
    outputs += [L.table("comparisons"), L.plot("calibration")]
    outputs += [L.plot(f"roc_{task}") for task in SOURCE_TASKS]
    if S.persona.reconstruction is not None and S.persona.reconstruction.in_rule_all:
        outputs.append(L.table("reconstruction"))
    # the model bundles of the experiment compared with the baselines (copies of files the run has made)
    outputs += [L.bundle_dir(S.evaluation.compare_to, task) for task in SOURCE_TASKS]
    return outputs + report_outputs()


onsuccess:
    print(
        f"\nradpersona: done. Results in {S.results}/:\n"
        f"  tables/metrics.csv and metrics.md  Acc, Sen, Spe, AUC per experiment, task, fold and split\n"
        f"  tables/*.md, comparisons.md       the paper's tables; DeLong and McNemar against each baseline\n"
        f"  tables/signal_audit.md            (synthetic) lesion signal per stage, oracle and floor AUCs\n"
        f"  plots/                            ROC curves per task, calibration\n"
        f"  explain/, report/                 per-patient explanation pages, population fingerprint figures\n"
        f"  predictions/, fingerprints/       per-case predictions and radiomic fingerprints (Parquet)\n"
        f"  features/{{reg}}/g{{grid}}/table.parquet  the wide radiomic feature tables\n"
        f"  registration/qc.parquet           registration quality (NCC/MSE before and after)\n"
        f"  logs/, benchmarks/                per-rule logs and timings\n"
    )
