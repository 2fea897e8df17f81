# Report: per-case explanation pages and the population summary of fingerprints (figures for --report).
# Needs rules/common.smk (R, LOG, BENCH, CASES_TABLE, EXPERIMENTS, FOLDS, volumes_of) and the fingerprint rules.

from radpersona import TASKS, VIEWS


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
    results=RESULTS,
    box=config["persona"]["box"],
    report_settings=config["report"],
)


rule explain:
    input:
        unpack(explain_inputs),
    output:
        report(
            R("explain/{experiment}_{task}/{case}.html"),
            caption="../report/explain.rst",
            category="Explanations",
            subcategory="{experiment} {task}",
            labels={"experiment": "{experiment}", "task": "{task}", "case": "{case}"},
        ),
    params:
        experiment=lambda wc: {k: EXPERIMENTS[wc.experiment][k] for k in ("reg", "grid")},
        **REPORT_PARAMS,
    log:
        LOG("explain", "{experiment}_{task}_{case}"),
    benchmark:
        BENCH("explain", "{experiment}_{task}_{case}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/explain.py"


rule summarise_fingerprints:
    input:
        unpack(summary_inputs),
    output:
        usage=report(R("report/{experiment}_{task}/usage.png"), caption="../report/usage.rst",
                     category="Fingerprints", subcategory="{experiment} {task}",
                     labels={"experiment": "{experiment}", "task": "{task}", "figure": "usage by family, view, image"}),
        patches=report(R("report/{experiment}_{task}/patches.png"), caption="../report/patches.rst",
                       category="Fingerprints", subcategory="{experiment} {task}",
                       labels={"experiment": "{experiment}", "task": "{task}", "figure": "patch usage heatmaps"}),
        top_beta=report(R("report/{experiment}_{task}/top_beta.png"), caption="../report/top_beta.rst",
                        category="Fingerprints", subcategory="{experiment} {task}",
                        labels={"experiment": "{experiment}", "task": "{task}", "figure": "largest |beta|"}),
        lesion=report(R("report/{experiment}_{task}/lesion_overlap.png"), caption="../report/lesion_overlap.rst",
                      category="Fingerprints", subcategory="{experiment} {task}",
                      labels={"experiment": "{experiment}", "task": "{task}", "figure": "highlighted patches on the true lesion"}),
        summary=R("report/{experiment}_{task}/summary.csv"),
        lesion_table=R("report/{experiment}_{task}/lesion_overlap.csv"),
        provenance=R("report/{experiment}_{task}/provenance.json"),
    params:
        experiment=lambda wc: {k: EXPERIMENTS[wc.experiment][k] for k in ("reg", "grid")},
        **REPORT_PARAMS,
    log:
        LOG("summarise_fingerprints", "{experiment}_{task}"),
    benchmark:
        BENCH("summarise_fingerprints", "{experiment}_{task}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/summarise_fingerprints.py"


def report_outputs():
    """Pages and summaries of every experiment and task (add to rule all)."""
    outputs = [R(f"report/{e}_{t}/summary.csv") for e in EXPERIMENTS for t in TASKS]
    outputs += [R(f"explain/{e}_{t}/{c}.html") for e in EXPERIMENTS for t in TASKS for c in explain_cases()]
    return outputs
