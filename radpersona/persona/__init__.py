"""Healthy personas: a conditional 3D DDPM, trained on healthy knees, that inpaints the ROI box.

Modules: ``masks`` (the box), ``model`` (U-Net, schedule, device, intensity scale), ``train``
(``train_ddpm`` with exact resume), ``sample`` (``sample_personas``, ``load_model``,
``derive_case_seed``).
"""

from radpersona.persona.masks import box_mask, box_slices, box_size, random_box_origin
from radpersona.persona.model import CudaUnavailableError, build_scheduler, build_unet, resolve_device
from radpersona.persona.sample import derive_case_seed, load_model, sample_personas
from radpersona.persona.train import TrainingStopped, resume_path, train_ddpm

__all__ = [
    "box_mask",
    "box_slices",
    "box_size",
    "random_box_origin",
    "build_unet",
    "build_scheduler",
    "resolve_device",
    "CudaUnavailableError",
    "train_ddpm",
    "resume_path",
    "TrainingStopped",
    "load_model",
    "sample_personas",
    "derive_case_seed",
]
