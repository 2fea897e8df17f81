"""Settings: the schema rejects unknown keys, wrong types and out-of-range values by name; the settings
objects hold every cross-field rule and round-trip to the plain configuration."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from radpersona.errors import ConfigError
from radpersona.settings import Settings, deep_merge, read_config, settings_hash


@pytest.fixture()
def base(repo):
    return read_config(repo / "config.yaml")


def validate_config(config):
    return Settings.parse(config)


def test_default_config_and_presets_are_valid_and_round_trip(repo):
    for layers in [[], *[[p] for p in sorted((repo / "presets").glob("*.yaml"))]]:
        config = read_config(repo / "config.yaml", *layers)
        settings = Settings.parse(config)
        for section in ("source", "synthetic", "preprocess", "registration", "persona", "radiomics", "fingerprint"):
            assert getattr(settings, section).to_config() == config[section], (layers, section)
        for section in ("baselines", "evaluation", "report", "resources"):
            assert getattr(settings, section).to_config() == config[section], (layers, section)


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ({"persona": {"trian": {"steps": 3}}}, "persona.trian", "unknown key"),
        ({"fingerprint": {"lambda_u": 0.1, "extra_knob": 1}}, "fingerprint.extra_knob", "unknown key"),
        ({"nonsense": 1}, "nonsense", "unknown key"),
        ({"persona": {"train": {"steps": "many"}}}, "persona.train.steps", "not of type 'integer'"),
        ({"persona": {"train": {"steps": 0}}}, "persona.train.steps", "less than the minimum of 1"),
        ({"fingerprint": {"usage_threshold": 1.5}}, "fingerprint.usage_threshold", "greater than the maximum of 1"),
        ({"source": {"kind": "dicomweb"}}, "source.kind", "is not one of"),
        ({"radiomics": {"grids": [4]}}, "radiomics.grids.0", "is not one of"),
        (
            {"experiments": {"x": {"grid": 2, "fingerprint": {"epoch": 3}}}},
            "experiments.x.fingerprint.epoch",
            "unknown key",
        ),
    ],
)
def test_bad_values_name_the_key(base, override, key, words):
    with pytest.raises(ConfigError) as info:
        validate_config(deep_merge(base, override))
    message = str(info.value)
    assert f"'{key}'" in message
    assert words in message


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"registration": {"levels": 2, "levels_to_perform": 3}}, "registration.levels_to_perform"),
        ({"persona": {"beta_start": 0.1, "beta_end": 0.01}}, "persona.beta_end"),
        ({"preprocess": {"shape": [18, 64, 64]}}, "preprocess.shape"),
        ({"experiments": {"proposed": {"grid": 3}}}, "experiments.proposed.grid"),
        ({"source": {"kind": "mrnet", "root": None}}, "source.root"),
        # baselines and the paper's tables (rules/baselines.smk and rules/evaluate.smk checked these before)
        ({"experiments": {"lr_l2": {"reg": "reg", "grid": 2, "fingerprint": {}}}}, "baselines.run"),
        ({"baselines": {"classical": {"features_from": "nope"}}}, "baselines.classical.features_from"),
        ({"evaluation": {"compare_to": "nope"}}, "evaluation.compare_to"),
        ({"evaluation": {"tables": {"t": ["proposed", "nope"]}}}, "evaluation.tables.t"),
        ({"baselines": {"run": ["lr_l2"]}, "evaluation": {"tables": {"t": ["proposed", "rf"]}}}, "evaluation.tables.t"),
    ],
)
def test_cross_field_rules_name_the_key(base, override, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        validate_config(deep_merge(base, override))


def test_layering_overrides_nested_keys_only(repo, tmp_path):
    layer = tmp_path / "layer.yaml"
    layer.write_text(yaml.safe_dump({"persona": {"train": {"steps": 7}}}), encoding="utf-8")
    config = Settings.parse(read_config(repo / "config.yaml", layer))
    assert config.persona.train.steps == 7
    assert config.persona.train.batch_size == Settings.parse(read_config(repo / "config.yaml")).persona.train.batch_size


def test_experiment_settings_merge_fingerprint_overrides(base):
    config = deep_merge(base, {"experiments": {"nofs": {"fingerprint": {"usage_predictor": False}}}})
    resolved = Settings.parse(config).experiments["nofs"]
    assert resolved.fingerprint.usage_predictor is False
    assert list(resolved.fingerprint.lambda_u) == base["fingerprint"]["lambda_u"]
    assert resolved.reg == "reg" and resolved.grid == base["radiomics"]["grids"][0]


def test_settings_hash_is_stable_and_sensitive():
    assert settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": [1, 2], "a": 1})
    assert settings_hash({"a": 1}) != settings_hash({"a": 2})


def test_every_config_key_is_commented(repo):
    """config.yaml documents every key (a comment on the key's line or a section header)."""
    for number, line in enumerate((repo / "config.yaml").read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.startswith("- "):
            continue
        key, _, value = stripped.partition(":")
        if value.strip() and "#" not in value:
            pytest.fail(f"config.yaml line {number}: key {key!r} has no comment")


# ----------------------------------------------------------------------------- the schema's bounds, walked


def _leaves(node, key=""):
    """(dotted key, leaf schema) of every scalar or array leaf with bounds, enums or a type to vary."""
    from radpersona.settings.base import _resolve

    node = _resolve(node)
    if node.get("type") == "object" or "properties" in node:
        for name, child in node.get("properties", {}).items():
            yield from _leaves(child, f"{key}.{name}".lstrip("."))
        return
    yield key, node


def _boundary_values(leaf: dict) -> list:
    """Values at the edges of a leaf's schema: minimum/maximum (or just inside exclusive bounds), every enum
    value, booleans, null where allowed, and arrays filled with an item's edge values."""
    from radpersona.settings.base import _resolve

    leaf = _resolve(leaf)
    types = leaf.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    values: list = []
    if "enum" in leaf:
        values += list(leaf["enum"])
    if "const" in leaf:
        values.append(leaf["const"])
    for option in leaf.get("oneOf", []):
        values += _boundary_values(option)
    if "boolean" in types:
        values += [True, False]
    if "null" in types:
        values.append(None)
    numeric = "integer" in types or "number" in types
    if numeric:
        step = 1 if "integer" in types else 1e-6
        if "minimum" in leaf:
            values.append(leaf["minimum"])
        if "exclusiveMinimum" in leaf:
            values.append(leaf["exclusiveMinimum"] + step)
        if "maximum" in leaf:
            values.append(leaf["maximum"])
        if "exclusiveMaximum" in leaf:
            values.append(leaf["exclusiveMaximum"] - step)
    if "array" in types and "items" in leaf:
        items = _boundary_values(leaf["items"])
        n = leaf.get("minItems", 1)
        values += [[item] * n for item in items if item is not None]
    return values


def _set(config: dict, key: str, value) -> dict:
    out = deep_merge(config, {})
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def boundary_configs(base: dict):
    """(key, value, config) for every boundary value of every schema leaf under the sections of ``base``."""
    from radpersona.settings.base import schema

    for key, leaf in _leaves(schema()):
        if key.split(".")[0] in ("experiments", "results") or ".configs" in key or key.startswith("evaluation.tables"):
            continue  # name-keyed mappings: covered by their own tests
        if key.endswith(".device"):
            continue  # a property of the node a job runs on (resolve_device refuses it when the job starts)
        for value in _boundary_values(leaf):
            yield key, value, _set(base, key, value)


def test_the_schema_walk_reaches_every_bounded_key(base):
    keys = {key for key, _, _ in boundary_configs(base)}
    for expected in (
        "fingerprint.batch_size",
        "persona.train.steps",
        "preprocess.shape",
        "persona.unet.channels",
        "registration.levels_to_perform",
        "synthetic.prevalence.abn",
        "persona.sample.steps",
    ):
        assert expected in keys


def _exercise(s, key: str) -> None:
    """Everything a stage builds from the settings alone, built and run: the networks (on the meta device, at
    the configured shapes and batch sizes, in training mode), the schedulers, one preprocessed volume, one
    case's patch features and the classical searches. A setting that a stage would refuse fails here."""
    import torch

    from radpersona.baselines.classical import build_search
    from radpersona.baselines.elnet import ELNet
    from radpersona.baselines.mrnet import MRNetView
    from radpersona.features import case_features, resolve_bin_width
    from radpersona.fingerprint.model import build_fingerprint_net
    from radpersona.persona.baselines import build_discriminator, build_generator, build_vit_ae
    from radpersona.persona.masks import box_slices
    from radpersona.persona.model import build_scheduler, build_unet
    from radpersona.radiomics import feature_names
    from radpersona.vocabulary import VIEWS

    views, shape = len(VIEWS), tuple(s.preprocess.shape)
    persona = s.persona
    section = "all" if key == "preprocess.shape" else key.split(".")[0]
    with torch.device("meta"):
        batch = persona.train.batch_size
        if section in ("all", "persona"):
            unet = build_unet(views, persona.unet).train()
            unet(torch.empty(batch, 2 * views + 1, *shape), timesteps=torch.zeros(batch, dtype=torch.long))
        recon = persona.reconstruction
        if recon is not None and section in ("all", "persona"):
            gan, vit = recon.gan, recon.vit_ae
            fake = build_generator(views, gan).train()(torch.empty(gan.batch_size, views + 1, *shape))
            build_discriminator(views, gan).train()(torch.cat([fake, torch.empty(gan.batch_size, 1, *shape)], 1))
            build_vit_ae(views, shape, vit).train()(torch.empty(vit.batch_size, views + 1, *shape))
        n_features = 4
        for experiment in s.experiments.values() if section in ("all", "fingerprint") else ():
            fp = experiment.fingerprint
            net = build_fingerprint_net(
                n_views=views,
                n_features=n_features,
                usage_predictor=fp.usage_predictor,
                widths=fp.resnet_widths,
                dropout=fp.dropout,
            ).train()
            b = fp.batch_size  # a training batch (radpersona.fingerprint.splits.batches never leaves fewer)
            net(torch.empty(b, views, *shape) if fp.usage_predictor else None, torch.empty(b, n_features))
        if section in ("all", "baselines"):
            slices = torch.empty(shape[0], 1, *shape[1:])
            MRNetView(width=s.baselines.mrnet.width).train()(slices)
            elnet = s.baselines.elnet
            ELNet(K=elnet.K, norm=elnet.norm, blur_filter=elnet.blur_filter, dropout=elnet.dropout).train()(slices)
    scheduler = build_scheduler(persona, "ddpm")
    scheduler.add_noise(torch.zeros(1, views, 2, 2, 2), torch.randn(1, views, 2, 2, 2), torch.tensor([0]))
    build_scheduler(persona, persona.sample.sampler.value).set_timesteps(persona.sample.steps)
    rng = np.random.default_rng(0)
    small = tuple(min(n, 64) for n in shape)  # the box keeps its fractions; the patches stay cheap
    volume = rng.random(small)
    box = box_slices(small, persona.box)
    for grid in s.radiomics.grids if section in ("all", "radiomics", "preprocess") or key == "persona.box" else ():
        table = case_features(
            "0000",
            {view: {image: volume for image in s.radiomics.images} for view in VIEWS},
            {view: (1.0, 1.0, 1.0) for view in VIEWS},
            box=box,
            grid=grid,
            families=s.radiomics.families,
            bin_width=resolve_bin_width(s.radiomics.bin_width, s.preprocess.normalisation),
            voxel_array_shift=s.radiomics.voxel_array_shift,
        )
        names = set(table["family"] + "_" + table["feature"])
        assert set(feature_names(s.radiomics.families)) <= names, sorted(
            set(feature_names(s.radiomics.families)) - names
        )
        assert (table["status"] == "ok").any(), "no patch computed"
    y = np.array([0, 1] * 20)
    for kind in ("lr_l1", "lr_l2", "svm", "rf"):
        build_search(kind, s.baselines.classical, y, seed=s.baselines.seed)


def test_every_setting_the_parse_accepts_is_one_the_stages_can_run(base):
    """The schema walk: each bound, enum value and null of every key, one at a time on the default config.
    Either :meth:`Settings.parse` refuses it (naming the key), or everything the stages build from it builds
    and runs. So no configuration is refused only at run time, after the expensive stages."""
    refused, late = 0, []
    for key, value, config in boundary_configs(base):
        try:
            settings = Settings.parse(config)
        except ConfigError as err:
            assert key in str(err) or "config key '" in str(err), (key, value, str(err))  # names a key
            refused += 1
            continue
        try:
            _exercise(settings, key)
        except Exception as err:  # noqa: BLE001 - any failure here is a late refusal
            late.append(f"{key}={value!r}: {type(err).__name__}: {err}")
    assert not late, "accepted by the parse, refused by a stage:\n" + "\n".join(late)
    assert refused >= 20  # the walk reaches the refusals too


def test_a_batch_of_one_is_refused_by_check_config(repo, tmp_path):
    layer = tmp_path / "one.yaml"
    layer.write_text("fingerprint:\n  batch_size: 1\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "radpersona.cli", "check-config", str(repo / "config.yaml"), str(layer)],
        capture_output=True,
        text=True,
        cwd=repo,
    )
    assert proc.returncode != 0
    assert "fingerprint.batch_size" in proc.stderr + proc.stdout
