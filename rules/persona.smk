# Healthy persona: train the conditional 3D DDPM on healthy training cases, inpaint every case;
# reconstruction studies (paper tables 2-3): DDPM vs a 3D GAN and a ViT3D autoencoder per configuration.
# (no radpersona.persona import here: it loads torch, which parsing the DAG does not need)
wildcard_constraints:
    rconfig="|".join(RECON["configs"]),
    rmodel="ddpm|gan|vit_ae",


rule train_ddpm:
    input:
        cohort=R("cohort.parquet"),
        volumes=lambda wc: case_volumes(volumes_of(wc.reg), TRAIN_CASES),
    output:
        R("models/ddpm_{reg}.pt"),
    params:
        settings={k: v for k, v in config["persona"].items() if k not in ("sample", "reconstruction")},
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


rule train_reconstruction_model:
    input:
        cohort=R("cohort.parquet"),
        volumes=lambda wc: case_volumes(volumes_of(RECON_REG[wc.rconfig]), TRAIN_CASES),
    output:
        R("models/reconstruction/{rconfig}_{rmodel}.pt"),
    params:
        persona=lambda wc: recon_persona(wc.rconfig, [wc.rmodel], sample=False),
        default_reg=RECON_DEFAULT_REG,
        source_views=SOURCE_VIEWS,
    threads: THREADS
    resources:
        gpu=lambda wc: int(config["persona"]["device"] == "cuda"),
    log:
        LOG("train_reconstruction_model", "{rconfig}_{rmodel}"),
    benchmark:
        BENCH("train_reconstruction_model", "{rconfig}_{rmodel}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_reconstruction_model.py"


rule evaluate_reconstruction_config:
    input:
        cohort=R("cohort.parquet"),
        models=lambda wc: [recon_model(wc.rconfig, m) for m in RECON["models"]],
        volumes=lambda wc: case_volumes(volumes_of(RECON_REG[wc.rconfig]), RECON_CASES),
        truth=synthetic_truth(RECON_CASES) if SYNTHETIC else [],
        raw=case_volumes(R("volumes/raw"), RECON_CASES) if SYNTHETIC else [],
        pre=case_volumes(R("volumes/pre"), RECON_CASES) if SYNTHETIC else [],
        registration=recon_registration_inputs,
    output:
        table=R("tables/reconstruction/{rconfig}.csv"),
        figure=R("plots/reconstruction_{rconfig}.png"),
    params:
        persona=lambda wc: recon_persona(wc.rconfig, RECON["models"]),
        preprocess=config["preprocess"],
        default_reg=RECON_DEFAULT_REG,
        source_views=SOURCE_VIEWS,
        models=RECON["models"],
        reference_dir=R("registration"),
        qc_dir=R("registration/qc"),
        truth_dir=lambda wildcards: L.synthetic_truth_dir() if SYNTHETIC else None,  # a function, as results_folder
    threads: THREADS
    resources:
        gpu=lambda wc: int(config["persona"]["device"] == "cuda"),
    log:
        LOG("evaluate_reconstruction_config", "{rconfig}"),
    benchmark:
        BENCH("evaluate_reconstruction_config", "{rconfig}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_reconstruction_config.py"


rule evaluate_reconstruction:
    input:
        expand(R("tables/reconstruction/{rconfig}.csv"), rconfig=list(RECON["configs"])),
    output:
        table=R("tables/reconstruction.csv"),
        summary=R("tables/reconstruction_summary.csv"),
        md=R("tables/reconstruction_summary.md"),
    log:
        LOG("evaluate_reconstruction"),
    benchmark:
        BENCH("evaluate_reconstruction")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_reconstruction.py"
