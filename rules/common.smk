# Shared helpers: config validation (unknown keys rejected), the case list, paths and wildcards.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from radpersona import TASKS, VIEWS
from radpersona.config import experiment_settings, validate_config
from radpersona.ingest import list_cases

if not config:
    raise ValueError(f"no configuration loaded: run from the repository ({workflow.basedir}) or pass --configfile")
validate_config(config)

RESULTS = config["results"]
CASES_TABLE = list_cases(config)
CASES = CASES_TABLE["case"].tolist()
TRAIN_CASES = CASES_TABLE.loc[CASES_TABLE["split"] == "train", "case"].tolist()
REG_VARIANTS = config["registration"]["variants"]
GRIDS = config["radiomics"]["grids"]
EXPERIMENTS = {name: experiment_settings(config, name) for name in config["experiments"]}
FOLDS = [str(k) for k in range(config["fingerprint"]["folds"])] + ["all"]
THREADS = config["resources"]["torch_threads"]


wildcard_constraints:
    case="|".join(CASES),
    view="|".join(VIEWS),
    reg="reg|noreg",
    grid="[123]",
    task="|".join(TASKS),
    fold=r"\d+|all",
    experiment="|".join(config["experiments"]),


def R(path):
    """A path under the results folder."""
    return f"{RESULTS}/{path}"


def LOG(rule, name="all"):
    return f"{RESULTS}/logs/{rule}/{name}.log"


def BENCH(rule, name="all"):
    return f"{RESULTS}/benchmarks/{rule}/{name}.tsv"


def volumes_of(reg):
    """Folder of the volumes a {reg} branch reads: registered, or preprocessed for noreg."""
    return R("volumes/reg") if reg == "reg" else R("volumes/pre")


def case_volumes(folder, cases=None):
    return [f"{folder}/{c}_{v}.nii.gz" for c in (cases or CASES) for v in VIEWS]


def experiment_table(wc):
    exp = EXPERIMENTS[wc.experiment]
    return R(f"features/{exp['reg']}/g{exp['grid']}/table.parquet")


def experiment_volumes(wc):
    return case_volumes(volumes_of(EXPERIMENTS[wc.experiment]["reg"]))


# ---- report: explanation pages and population summaries
def explain_cases():
    """Cases with a page: report.cases, or the first report.auto_cases cases of the valid split."""
    chosen = config["report"]["cases"]
    if chosen:
        unknown = sorted(set(chosen) - set(CASES))
        if unknown:
            raise ValueError(f"config key 'report.cases': {unknown} not in the cohort")
        return list(chosen)
    valid = CASES_TABLE.loc[CASES_TABLE["split"] == "valid", "case"].tolist()
    return valid[: config["report"]["auto_cases"]]


def explain_inputs(wc):
    """Everything a page reads: tables, every fold model, the case's volumes (and truth for synthetic)."""
    reg = EXPERIMENTS[wc.experiment]["reg"]
    inputs = {
        "cohort": R("cohort.parquet"),
        "predictions": R(f"predictions/{wc.experiment}_{wc.task}.parquet"),
        "fingerprints": R(f"fingerprints/{wc.experiment}_{wc.task}.parquet"),
        "models": expand(R("models/fingerprint/{experiment}_{task}_fold{fold}.pt"), experiment=wc.experiment,
                         task=wc.task, fold=FOLDS),
        "volumes": [f"{volumes_of(reg)}/{wc.case}_{v}.nii.gz" for v in VIEWS]
        + [R(f"volumes/{kind}_{reg}/{wc.case}_{v}.nii.gz") for kind in ("persona", "residual") for v in VIEWS],
    }
    if config["source"]["kind"] == "synthetic":
        inputs["truth"] = R("synthetic/truth")
        inputs["raw"] = [R(f"volumes/{kind}/{wc.case}_{v}.nii.gz") for kind in ("raw", "pre") for v in VIEWS]
        if reg == "reg":
            inputs["affines"] = [R(f"volumes/reg/{wc.case}_{v}.aff.txt") for v in VIEWS]
    return inputs


def summary_inputs(wc):
    reg = EXPERIMENTS[wc.experiment]["reg"]
    inputs = {
        "cohort": R("cohort.parquet"),
        "predictions": R(f"predictions/{wc.experiment}_{wc.task}.parquet"),
        "fingerprints": R(f"fingerprints/{wc.experiment}_{wc.task}.parquet"),
        "model": R(f"models/fingerprint/{wc.experiment}_{wc.task}_foldall.pt"),
        "volumes": case_volumes(volumes_of(reg)),
    }
    if config["source"]["kind"] == "synthetic":
        inputs["truth"] = R("synthetic/truth")
        inputs["raw"] = case_volumes(R("volumes/raw")) + case_volumes(R("volumes/pre"))
        if reg == "reg":
            inputs["affines"] = [R(f"volumes/reg/{c}_{v}.aff.txt") for c in CASES for v in VIEWS]
    return inputs


REPORT_PARAMS = dict(
    box=config["persona"]["box"],
    report_settings=config["report"],
)


def report_outputs():
    """Pages and summaries of every experiment and task (add to rule all)."""
    outputs = [R(f"report/{e}_{t}/summary.csv") for e in EXPERIMENTS for t in TASKS]
    outputs += [R(f"explain/{e}_{t}/{c}.html") for e in EXPERIMENTS for t in TASKS for c in explain_cases()]
    return outputs


def final_outputs():
    outputs = [R("tables/metrics.csv")]
    if "reg" in REG_VARIANTS:
        outputs.append(R("registration/qc.parquet"))
    for name in EXPERIMENTS:
        outputs += [R(f"fingerprints/{name}_{task}.parquet") for task in TASKS]
        if config["source"]["kind"] == "synthetic":
            outputs.append(R(f"tables/localisation_{name}.csv"))
    outputs += [R(f"tables/{name}.csv") for name in config["evaluation"]["tables"]]
    outputs += [R("tables/comparisons.csv"), R("plots/calibration.png")]
    outputs += [R(f"plots/roc_{task}.png") for task in TASKS]
    return outputs + report_outputs()


onsuccess:
    print(
        f"\nradpersona: done. Results in {RESULTS}/:\n"
        f"  tables/metrics.csv and metrics.md  Acc, Sen, Spe, AUC per experiment, task, fold and split\n"
        f"  tables/*.md, comparisons.md       the paper's tables; DeLong and McNemar against each baseline\n"
        f"  plots/                            ROC curves per task, calibration\n"
        f"  explain/, report/                 per-patient explanation pages, population fingerprint figures\n"
        f"  predictions/, fingerprints/       per-case predictions and radiomic fingerprints (Parquet)\n"
        f"  features/{{reg}}/g{{grid}}/table.parquet  the wide radiomic feature tables\n"
        f"  registration/qc.parquet           registration quality (NCC/MSE before and after)\n"
        f"  logs/, benchmarks/                per-rule logs and timings\n"
    )
