# Healthy persona: train the conditional 3D DDPM on healthy training cases, inpaint every case.


rule train_ddpm:
    input:
        cohort=R("cohort.parquet"),
        volumes=lambda wc: case_volumes(volumes_of(wc.reg), TRAIN_CASES),
    output:
        R("models/ddpm_{reg}.pt"),
    params:
        settings={k: v for k, v in config["persona"].items() if k != "sample"},
    threads: THREADS
    resources:
        gpu=lambda wc: int(config["persona"]["device"] == "cuda"),
    log:
        LOG("train_ddpm", "{reg}"),
    benchmark:
        BENCH("train_ddpm", "{reg}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_ddpm.py"


rule persona:
    input:
        cohort=R("cohort.parquet"),
        model=R("models/ddpm_{reg}.pt"),
        volumes=lambda wc: case_volumes(volumes_of(wc.reg)),
    output:
        persona=case_volumes(R("volumes/persona_{reg}")),
        residual=case_volumes(R("volumes/residual_{reg}")),
    params:
        settings={k: config["persona"][k] for k in ("box", "sample", "device")},
    threads: THREADS
    resources:
        gpu=lambda wc: int(config["persona"]["device"] == "cuda"),
    log:
        LOG("persona", "{reg}"),
    benchmark:
        BENCH("persona", "{reg}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/persona.py"
