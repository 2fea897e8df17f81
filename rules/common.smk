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


def final_outputs():
    outputs = [R("tables/metrics.csv")]
    if "reg" in REG_VARIANTS:
        outputs.append(R("registration/qc.parquet"))
    for name in EXPERIMENTS:
        outputs += [R(f"fingerprints/{name}_{task}.parquet") for task in TASKS]
        if config["source"]["kind"] == "synthetic":
            outputs.append(R(f"tables/localisation_{name}.csv"))
    return outputs


onsuccess:
    print(
        f"\nradpersona: done. Results in {RESULTS}/:\n"
        f"  tables/metrics.csv and metrics.md  Acc, Sen, Spe, AUC per experiment, task, fold and split\n"
        f"  predictions/, fingerprints/       per-case predictions and radiomic fingerprints (Parquet)\n"
        f"  features/{{reg}}/g{{grid}}/table.parquet  the wide radiomic feature tables\n"
        f"  registration/qc.parquet           registration quality (NCC/MSE before and after)\n"
        f"  logs/, benchmarks/                per-rule logs and timings\n"
    )
