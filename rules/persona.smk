# Healthy persona: train the conditional 3D DDPM on healthy training cases, inpaint every case;
# reconstruction studies (paper tables 2-3): DDPM vs a 3D GAN and a ViT3D autoencoder per configuration.
# (only torch-free modules are imported here: parsing the DAG does not load torch)
from radpersona.persona import BASELINE_PERSONA_KEYS
from radpersona.persona.reconstruction.configs import (
    DDPM,
    config_volumes,
    evaluation_inputs,
    model_checkpoint,
    resolve_configs,
)
from radpersona.vocabulary import PERSONA_MODELS

PERSONA_MODEL = S.persona.model.to_config()  # what defines a trained DDPM: persona without sample, reconstruction
PERSONA_GPU = int(S.persona.device == "cuda")
# the DDPMs whose personas a branch uses: all healthy training cases, and one per CV fold when cross-fitted;
# persona.checkpoint (a model trained elsewhere) instead of both: no train_ddpm job runs
if S.persona.checkpoint is not None:
    PERSONA_DDPMS = [S.persona.checkpoint]
else:
    PERSONA_DDPMS = [L.ddpm("{reg}")] + ([L.ddpm("{reg}", f) for f in FOLDS[:-1]] if S.persona.cross_fit else [])
# the model that makes the reported (valid) cases' personas of a branch: what a bundle carries to new exams
reported_persona_model = lambda reg: L.ddpm(reg) if S.persona.checkpoint is None else S.persona.checkpoint

# ---- reconstruction studies: configurations resolved once (box, location, views, reg)
RECON = S.persona.reconstruction
RECON_DEFAULT_REG = S.registration.variants[0]
RECON_CONFIGS = resolve_configs(RECON, S.persona.box, RECON_DEFAULT_REG, SOURCE_VIEWS) if RECON else {}
RECON_CASES = CASES_TABLE.loc[CASES_TABLE["split"] == "valid", "case"].tolist()  # held-out and lesion cases
SYNTHETIC = S.source.kind == "synthetic"

# input and parameter functions, as lambdas (the linter wants no `def` beside rules)
# checkpoint of one model of a configuration (the pipeline's DDPM where it is the same model)
recon_model = lambda name, model: model_checkpoint(L, RECON_CONFIGS[name], model, S.persona.box)
# the persona settings a model's training reads: a DDPM setting does not retrain a GAN or ViT-AE
recon_persona = lambda model: (
    PERSONA_MODEL if model == DDPM else {k: PERSONA_MODEL[k] for k in BASELINE_PERSONA_KEYS}
)
# every file the evaluation of a configuration reads (valid cases; truth, raw, pre, registration if synthetic)
recon_evaluation_inputs = lambda wc: evaluation_inputs(L, RECON_CONFIGS[wc.rconfig], RECON_CASES, synthetic=SYNTHETIC)


wildcard_constraints:
    rconfig="|".join(RECON_CONFIGS),
    rmodel="|".join(PERSONA_MODELS),


rule train_ddpm:
    input:
        cohort=L.cohort(),
        volumes=lambda wc: [L.working(wc.reg, c, v) for c in TRAIN_CASES for v in SOURCE_VIEWS],
    output:
        L.ddpm("{reg}"),
    params:
        results=results_folder,
        settings=PERSONA_MODEL,
        views=SOURCE_VIEWS,
        fold="all",  # every healthy training case
    threads: THREADS
    resources:
        gpu=PERSONA_GPU,
    log:
        L.log("train_ddpm", "{reg}"),
    benchmark:
        L.benchmark("train_ddpm", "{reg}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_ddpm.py"


# cross-fitted personas: the DDPM of CV fold k never sees fold k's cases (it makes their personas)
use rule train_ddpm as train_ddpm_fold with:
    output:
        L.ddpm("{reg}", "{fold}"),
    params:
        results=results_folder,
        settings=PERSONA_MODEL,
        views=SOURCE_VIEWS,
        fold=lambda wc: wc.fold,
    log:
        L.log("train_ddpm", "{reg}_fold{fold}"),
    benchmark:
        L.benchmark("train_ddpm", "{reg}_fold{fold}")


rule persona:
    input:
        cohort=L.cohort(),
        models=PERSONA_DDPMS,
        volumes=lambda wc: [L.working(wc.reg, c, v) for c in CASES for v in SOURCE_VIEWS],
    output:
        persona=[L.persona("{reg}", c, v) for c in CASES for v in SOURCE_VIEWS],
        residual=[L.residual("{reg}", c, v) for c in CASES for v in SOURCE_VIEWS],
        membership=L.persona_membership("{reg}"),
        membership_table=L.table("persona_membership_{reg}"),
        membership_md=L.table("persona_membership_{reg}", "md"),
    params:
        results=results_folder,
        cross_fit=S.persona.cross_fit,
        checkpoint=S.persona.checkpoint,
        data_range=S.persona.intensity_range[1] - S.persona.intensity_range[0],
        box=list(S.persona.box),
        sample=S.persona.sample.to_config(),
        device=S.persona.device,
        views=SOURCE_VIEWS,
    threads: THREADS
    resources:
        gpu=PERSONA_GPU,
    log:
        L.log("persona", "{reg}"),
    benchmark:
        L.benchmark("persona", "{reg}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/persona.py"


rule train_reconstruction_model:
    input:
        cohort=L.cohort(),
        volumes=lambda wc: config_volumes(L, RECON_CONFIGS[wc.rconfig], TRAIN_CASES),
    output:
        L.reconstruction_model("{rconfig}", "{rmodel}"),
    params:
        results=results_folder,
        overrides=lambda wc: RECON.configs[wc.rconfig].to_config(),
        persona=lambda wc: recon_persona(wc.rmodel),
        section=lambda wc: None if wc.rmodel == DDPM else getattr(RECON, wc.rmodel).to_config(),
        default_reg=RECON_DEFAULT_REG,
        source_views=SOURCE_VIEWS,
    threads: THREADS
    resources:
        gpu=PERSONA_GPU,
    log:
        L.log("train_reconstruction_model", "{rconfig}_{rmodel}"),
    benchmark:
        L.benchmark("train_reconstruction_model", "{rconfig}_{rmodel}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/train_reconstruction_model.py"


rule evaluate_reconstruction_config:
    input:
        unpack(recon_evaluation_inputs),
        cohort=L.cohort(),
        models=lambda wc: [recon_model(wc.rconfig, m) for m in RECON.models],
    output:
        table=L.reconstruction_config_table("{rconfig}"),
        figure=L.reconstruction_figure("{rconfig}"),
    params:
        results=results_folder,
        overrides=lambda wc: RECON.configs[wc.rconfig].to_config(),
        models=list(RECON.models) if RECON else [],
        persona={k: PERSONA_MODEL[k] for k in BASELINE_PERSONA_KEYS},
        sample=S.persona.sample.to_config(),
        location_seed=RECON.location_seed if RECON else None,
        preprocess=S.preprocess.to_config(),
        synthetic=SYNTHETIC,
        default_reg=RECON_DEFAULT_REG,
        source_views=SOURCE_VIEWS,
    threads: THREADS
    resources:
        gpu=PERSONA_GPU,
    log:
        L.log("evaluate_reconstruction_config", "{rconfig}"),
    benchmark:
        L.benchmark("evaluate_reconstruction_config", "{rconfig}")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_reconstruction_config.py"


rule evaluate_reconstruction:
    input:
        [L.reconstruction_config_table(name) for name in RECON_CONFIGS],
    output:
        table=L.table("reconstruction"),
        summary=L.table("reconstruction_summary"),
        md=L.table("reconstruction_summary", "md"),
    log:
        L.log("evaluate_reconstruction"),
    benchmark:
        L.benchmark("evaluate_reconstruction")
    conda:
        "../envs/torch.yaml"
    script:
        "../workflow_scripts/evaluate_reconstruction.py"
