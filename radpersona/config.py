"""Configuration: load YAML layers, validate against ``schemas/config.schema.yaml``, derive settings.

The schema rejects unknown keys everywhere (``additionalProperties: false``); the checks here add
what a schema cannot say (cross-field constraints). Errors name the key, e.g.
``config key 'persona.train.steps': -1 is less than the minimum of 1``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO_ROOT / "schemas" / "config.schema.yaml"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively by ``override`` (as Snakemake layers ``--configfile``)."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(*paths: str | Path) -> dict[str, Any]:
    """Load and merge YAML files in order (later files override earlier), then validate."""
    config: dict[str, Any] = {}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            layer = yaml.safe_load(fh) or {}
        if not isinstance(layer, Mapping):
            raise ConfigError(f"config file {str(path)!r}: top level must be a mapping, not {type(layer).__name__}")
        config = deep_merge(config, layer)
    validate_config(config)
    return config


def _schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _key_of(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        # name the unknown key itself, not its parent
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            return ".".join(filter(None, [path, extra[0]]))
    if error.validator == "required":
        match = re.match(r"^'([^']+)' is a required property", error.message)
        if match:
            return ".".join(filter(None, [path, match.group(1)]))
    return path or "<top level>"


def validate_config(config: Mapping[str, Any]) -> None:
    """Validate ``config`` against the schema and the cross-field rules.

    Raises:
        ConfigError: naming the offending key and value.
    """
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        lines = []
        for err in errors[:10]:
            message = err.message
            if err.validator == "additionalProperties":
                message = f"unknown key ({message})"
            lines.append(f"config key '{_key_of(err)}': {message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    _check_cross_fields(config)


def _check_cross_fields(config: Mapping[str, Any]) -> None:
    def fail(key: str, message: str) -> None:
        raise ConfigError(f"config key '{key}': {message}")

    source = config["source"]
    if source["kind"] in ("mrnet", "kneemri") and not source.get("root"):
        fail("source.root", f"a dataset folder is required for source.kind {source['kind']!r}")
    if source["kind"] == "manifest" and not source.get("manifest"):
        fail("source.manifest", "a CSV path is required for source.kind 'manifest'")
    lo, hi = config["synthetic"]["slices"]
    if lo > hi:
        fail("synthetic.slices", f"minimum {lo} is larger than maximum {hi}")
    p_lo, p_hi = config["preprocess"]["percentiles"]
    if p_lo >= p_hi:
        fail("preprocess.percentiles", f"lower {p_lo} must be below upper {p_hi}")
    reg = config["registration"]
    if reg["levels_to_perform"] > reg["levels"]:
        fail(
            "registration.levels_to_perform", f"{reg['levels_to_perform']} exceeds registration.levels {reg['levels']}"
        )
    persona = config["persona"]
    if persona["beta_end"] <= persona["beta_start"]:
        fail("persona.beta_end", f"{persona['beta_end']} must exceed persona.beta_start {persona['beta_start']}")
    lo_i, hi_i = persona["intensity_range"]
    if lo_i >= hi_i:
        fail("persona.intensity_range", f"lower {lo_i} must be below upper {hi_i}")
    unet = persona["unet"]
    if len(unet["attention_levels"]) != len(unet["channels"]):
        fail(
            "persona.unet.attention_levels",
            f"needs one entry per channel level ({len(unet['channels'])}), got {len(unet['attention_levels'])}",
        )
    for ch in unet["channels"]:
        if ch % unet["norm_num_groups"]:
            fail(
                "persona.unet.channels",
                f"{ch} is not divisible by persona.unet.norm_num_groups {unet['norm_num_groups']}",
            )
    shape = config["preprocess"]["shape"]
    down = 2 ** (len(unet["channels"]) - 1)
    for axis, size in enumerate(shape):
        if size % down:
            fail(
                "preprocess.shape",
                f"{shape}: axis {axis} size {size} must be divisible by {down} for a U-Net with {len(unet['channels'])} levels",
            )
    recon = persona["reconstruction"]
    for axis, (size, patch) in enumerate(zip(shape, recon["vit_ae"]["patch"])):
        if size % patch:
            fail(
                "persona.reconstruction.vit_ae.patch",
                f"{recon['vit_ae']['patch']}: patch size {patch} does not divide "
                f"preprocess.shape {shape} on axis {axis}",
            )
    gan_down = 2 ** (len(recon["gan"]["generator_channels"]) - 1)
    for axis, size in enumerate(shape):
        if size % gan_down:
            fail(
                "persona.reconstruction.gan.generator_channels",
                f"{len(recon['gan']['generator_channels'])} levels need "
                f"preprocess.shape divisible by {gan_down}; axis {axis} is {size}",
            )
    for name, exp in config["experiments"].items():
        if exp.get("reg", reg["variants"][0]) not in reg["variants"]:
            fail(f"experiments.{name}.reg", f"{exp['reg']!r} is not in registration.variants {reg['variants']}")
        if exp.get("grid", config["radiomics"]["grids"][0]) not in config["radiomics"]["grids"]:
            fail(f"experiments.{name}.grid", f"{exp['grid']} is not in radiomics.grids {config['radiomics']['grids']}")


def experiment_settings(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Resolve an experiment: its ``reg`` branch, ``grid`` and merged ``fingerprint`` settings."""
    try:
        exp = config["experiments"][name]
    except KeyError:
        raise ConfigError(
            f"config key 'experiments.{name}': no such experiment; known: {sorted(config['experiments'])}"
        ) from None
    return {
        "reg": exp.get("reg", config["registration"]["variants"][0]),
        "grid": int(exp.get("grid", config["radiomics"]["grids"][0])),
        "fingerprint": deep_merge(config["fingerprint"], exp.get("fingerprint", {})),
    }


def settings_hash(settings: Any) -> str:
    """A short stable hash of JSON-serialisable settings (recorded with outputs)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
