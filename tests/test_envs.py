"""Conda environments (envs/*.yaml): they parse, pin exactly what `make` installs with pip, every rule
names one, and every rule's script finds its imports in its environment.

The import check follows each rule's script statically: the ``stage_*`` function the script calls, the
imports inside that function, and the module-level imports of every radpersona module reached from
there (with their parent packages). It cannot see a helper's lazy import, so it under-reports; what it
reports is a real failure of ``snakemake --use-conda``.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENVS = REPO / "envs"
ENV_FILES = sorted(ENVS.glob("*.yaml"))

# pip distribution name (as in requirements*.txt, lower-cased) -> conda-forge package name
CONDA_NAME = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
# requirements.txt entries that are tools, not step dependencies: no env needs them
NOT_IN_ENVS = {"snakemake", "snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep", "pytest"}
# The one pin that cannot be equal: conda-forge's newest niftyreg is 1.5.69.6, while `make` builds the
# PyPI package niftyreg==1.5.70rc1 (requirements-niftyreg.txt). Both sides are pinned here, so a change
# to either file fails this test until it is looked at.
KNOWN_DIFFERENCES = {"niftyreg": {"conda": "1.5.69.6", "pip": "1.5.70rc1"}}
# top-level import name -> package that provides it (conda name, or pip name for pip-only packages)
IMPORT_PROVIDER = {
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "pyarrow": "pyarrow",
    "SimpleITK": "simpleitk",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "matplotlib": "matplotlib-base",
    "yaml": "pyyaml",
    "jsonschema": "jsonschema",
    "torch": "pytorch",
    "monai": "monai",
    "einops": "einops",
    "radiomics": "pyradiomics-bhklab",
    "niftyreg": "niftyreg",
}
# imports a module guards with try/except ImportError (optional at run time)
OPTIONAL_IMPORTS = {"niftyreg"}


def _requirements() -> dict[str, str]:
    """{name (lower-case): version} of every exact pin that `make` installs with pip."""
    pins: dict[str, str] = {}
    for name in ("requirements.txt", "requirements-niftyreg.txt"):
        for line in (REPO / name).read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
            assert match, f"{name}: {line!r} is not an exact pin (name==version)"
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _env_packages(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({conda name: version}, {pip name: version}) of one env file; fails on anything not exact."""
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(env, dict) and set(env) == {"channels", "dependencies"}, f"{path.name}: keys {list(env)}"
    conda: dict[str, str] = {}
    pip: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            assert set(dep) == {"pip"}, f"{path.name}: unexpected section {dep}"
            for entry in dep["pip"]:
                match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", entry)
                assert match, f"{path.name}: pip entry {entry!r} is not an exact pin (name==version)"
                pip[match.group(1).lower()] = match.group(2)
        elif dep == "pip":
            conda["pip"] = ""
        else:
            match = re.fullmatch(r"([A-Za-z0-9_.\-]+)=([A-Za-z0-9_.+\-]+)", str(dep))
            assert match, f"{path.name}: conda entry {dep!r} is not an exact pin (name=version)"
            conda[match.group(1).lower()] = match.group(2)
    return conda, pip


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_parses_with_conda_forge_only_and_exact_pins(path: Path) -> None:
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert env["channels"] == ["conda-forge", "nodefaults"], f"{path.name}: channels {env['channels']}"
    conda, pip = _env_packages(path)
    assert conda.get("python") == "3.11", f"{path.name}: python {conda.get('python')!r}, want 3.11 (pyproject)"
    assert not set(pip) & set(conda), f"{path.name}: {set(pip) & set(conda)} both from conda and pip"
    if pip:
        assert "pip" in conda, f"{path.name}: has a pip section but does not install pip"
    # MONAI from pip without conda's pytorch would make pip fetch an unpinned torch from PyPI
    if "monai" in pip or "einops" in pip:
        assert "pytorch" in conda, f"{path.name}: monai/einops through pip need pytorch from conda-forge first"


@pytest.mark.parametrize("path", ENV_FILES, ids=[p.name for p in ENV_FILES])
def test_env_versions_equal_the_pip_constraints(path: Path) -> None:
    pins = _requirements()
    conda, pip = _env_packages(path)
    for name, version in {**conda, **pip}.items():
        if name in ("python", "pip"):
            continue
        pip_name = next((p for p, c in CONDA_NAME.items() if c == name), name)
        assert pip_name in pins, f"{path.name}: {name} is not pinned in requirements*.txt (what `make` installs)"
        if pip_name in KNOWN_DIFFERENCES:
            known = KNOWN_DIFFERENCES[pip_name]
            assert (version, pins[pip_name]) == (known["conda"], known["pip"]), (
                f"{path.name}: {name}={version} vs pip {pins[pip_name]}: the recorded difference is "
                f"{known}; update KNOWN_DIFFERENCES only after checking conda-forge"
            )
            continue
        assert version == pins[pip_name], (
            f"{path.name}: {name}={version} but requirements pin {pip_name}=={pins[pip_name]}"
        )


def test_every_pinned_step_dependency_is_in_some_env() -> None:
    provided = set()
    for path in ENV_FILES:
        conda, pip = _env_packages(path)
        provided |= set(conda) | set(pip)
    missing = {p for p in _requirements() if CONDA_NAME.get(p, p) not in provided} - NOT_IN_ENVS
    assert not missing, f"pinned in requirements*.txt but in no envs/*.yaml: {sorted(missing)}"


# ------------------------------------------------------------------------------ rules and imports
@lru_cache(maxsize=1)
def _rules() -> list[tuple[str, str | None, str | None, bool]]:
    """(name, conda env path, script path, declares a gpu resource) of every rule that runs a job,
    from the parsed workflow."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings, StorageSettings

    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(),
            storage_settings=StorageSettings(),
            snakefile=REPO / "Snakefile",
            workdir=REPO,
        )._workflow
        found = []
        for rule in workflow.rules:
            if rule.norun:
                continue
            env = str((Path(rule.basedir) / rule.conda_env).resolve()) if rule.conda_env else None
            script = str((Path(rule.basedir) / rule.script).resolve()) if rule.script else None
            found.append((rule.name, env, script, "gpu" in rule.resources))
    return found


def test_every_rule_names_an_existing_env() -> None:
    rules = _rules()
    assert len(rules) >= 10, rules
    missing = [name for name, env, _, _ in rules if env is None]
    assert not missing, f"rules without a conda: directive: {missing}"
    for name, env, _, _ in rules:
        assert Path(env).parent == ENVS.resolve() and Path(env).exists(), (
            f"rule {name}: env {env} is not one of envs/*.yaml"
        )


def _module_file(module: str) -> Path | None:
    parts = module.split(".")
    base = REPO.joinpath(*parts)
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    return None


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    """Absolute module names that one ``from ... import ...`` statement loads."""
    if node.level:
        package = module.split(".") if _module_file(module).name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        target = ".".join(package + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    names = [target]
    # `from pkg import sub` may load the submodule pkg.sub
    for alias in node.names:
        if _module_file(f"{target}.{alias.name}") is not None:
            names.append(f"{target}.{alias.name}")
    return names


def _imports_of(module: str, body: list[ast.stmt], *, guarded: bool = False) -> set[str]:
    """Modules imported by these statements (not inside nested functions or classes); try/except
    ImportError blocks are skipped as optional."""
    found: set[str] = set()
    for node in body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found |= set(_resolve(module, node))
        elif isinstance(node, ast.Try):
            optional = any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers
            )
            if not optional:
                found |= _imports_of(module, node.body)
            found |= _imports_of(module, node.orelse) | _imports_of(module, node.finalbody)
        elif isinstance(node, (ast.If, ast.With)):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            found |= _imports_of(module, node.body)
            if isinstance(node, ast.If):
                found |= _imports_of(module, node.orelse)
    return found


def _closure(modules: set[str]) -> set[str]:
    """Top-level third-party import names reached through radpersona's module-level imports."""
    third_party: set[str] = set()
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        top = module.split(".")[0]
        if top != "radpersona":
            if top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
            continue
        # importing a.b.c runs a/__init__, a/b/__init__ first
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        path = _module_file(module)
        if path is None:
            continue
        todo += sorted(_imports_of(module, ast.parse(path.read_text(encoding="utf-8")).body))
    return third_party


def _lazy_imports_of_function(module: str, name: str) -> set[str]:
    """Modules imported inside the function ``name`` of ``module`` (its lazy imports)."""
    path = _module_file(module)
    lazy: set[str] = set()
    if path is None:
        return lazy
    for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(fn, ast.FunctionDef) and fn.name == name:
            for stmt in ast.walk(fn):
                if isinstance(stmt, ast.Import):
                    lazy |= {a.name for a in stmt.names}
                elif isinstance(stmt, ast.ImportFrom):
                    lazy |= set(_resolve(module, stmt))
    return lazy


def _script_imports(script: Path) -> set[str]:
    """Third-party imports one workflow script needs: its own, its modules', and its stage function's.

    A script imports a stages module (``from radpersona.stages import persona as persona_stages``) and
    calls one of its functions (``persona_stages.train_ddpm``): that function's lazy imports count too.
    """
    tree = ast.parse(script.read_text(encoding="utf-8"))
    direct = _imports_of("workflow_scripts", tree.body)
    needed = _closure({m for m in direct if m.startswith("radpersona") or "." not in m})
    modules: dict[str, str] = {}  # local name -> radpersona module
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("radpersona"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if _module_file(target) is not None:
                    modules[alias.asname or alias.name] = target
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            needed |= _closure(_lazy_imports_of_function(modules[node.value.id], node.attr))
    return needed - {"snakemake"}


def test_import_closure_sees_module_and_lazy_imports() -> None:
    """The checker itself: train_ddpm's script needs torch and monai (lazy import in its stage)."""
    assert {"torch", "monai", "numpy", "pandas"} <= _script_imports(REPO / "workflow_scripts" / "train_ddpm.py")
    assert "torch" not in _script_imports(REPO / "workflow_scripts" / "preprocess.py")


def test_every_rule_env_provides_what_its_script_imports() -> None:
    problems = []
    for name, env, script, _ in _rules():
        if env is None or script is None:
            continue
        conda, pip = _env_packages(Path(env))
        provided = set(conda) | set(pip)
        for top in sorted(_script_imports(Path(script)) - OPTIONAL_IMPORTS):
            provider = IMPORT_PROVIDER.get(top)
            if provider is None:
                problems.append(f"rule {name}: import {top!r} has no known package (add it to IMPORT_PROVIDER)")
            elif provider not in provided:
                problems.append(
                    f"rule {name} ({Path(script).name}) imports {top} but {Path(env).name} lacks {provider}"
                )
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------- GPU rules
def test_gpu_rule_stages_fail_clearly_when_cuda_is_requested_but_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GPU rule whose config asks for cuda on a node without one stops with a message naming the key,
    instead of training on the CPU (what a SLURM job without --gpus would otherwise do)."""
    import numpy as np
    import pandas as pd
    import torch

    from radpersona import VIEWS
    from radpersona.errors import RadpersonaError
    from radpersona.fingerprint import fit_fingerprint
    from radpersona.settings import FingerprintSettings
    from radpersona.stages.persona import train_ddpm as stage_train_ddpm
    from radpersona.volume import write_volume

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rng = np.random.default_rng(0)
    cases = ["0000", "0001"]
    for case in cases:
        for view in VIEWS:
            write_volume(
                tmp_path / "volumes" / "pre" / f"{case}_{view}.nii.gz", rng.random((8, 16, 16), dtype=np.float32)
            )
    pd.DataFrame({"case": cases, "split": "train", "abn": 0}).to_parquet(tmp_path / "cohort.parquet")
    settings = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["persona"]
    settings = {k: v for k, v in settings.items() if k != "sample"} | {"device": "cuda"}
    with pytest.raises(RadpersonaError, match=r"persona\.device is 'cuda'.*CUDA is not available"):
        stage_train_ddpm(
            results=tmp_path, reg="noreg", checkpoint=tmp_path / "ddpm.pt", settings=settings, views=VIEWS, threads=1
        )
    assert not (tmp_path / "ddpm.pt").exists()
    fingerprint = yaml.safe_load((REPO / "config.yaml").read_text(encoding="utf-8"))["fingerprint"] | {"device": "cuda"}
    with pytest.raises(RadpersonaError, match=r"fingerprint\.device is 'cuda'.*CUDA is not available"):
        fit_fingerprint(
            None,
            np.zeros((4, 1)),
            np.array([0, 1, 0, 1]),
            feature_names=["sagittal.original.p000.firstorder.Mean"],
            settings=FingerprintSettings.from_config(fingerprint),
        )


# -------------------------------------------------------------------------------------- profiles
def test_profiles_name_only_rules_of_the_workflow() -> None:
    """A renamed rule must not silently lose its SLURM resources or its batch."""
    names = {name for name, _, _, _ in _rules()}
    gpu_rules = {name for name, _, _, gpu in _rules() if gpu}
    assert {"train_ddpm", "persona", "train_fingerprint"} <= gpu_rules
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))
    assert slurm["executor"] == "slurm" and slurm["rerun-incomplete"] is True
    assert "slurm-status-command" not in slurm and "slurm-no-account" not in slurm, (
        "test-cluster settings belong in tests/test_slurm.py"
    )
    stale = (set(slurm["set-resources"]) | set(slurm["groups"])) - names
    assert not stale, f"profiles/slurm names rules the workflow does not have: {sorted(stale)}"
    assert set(slurm["groups"].values()) == set(slurm["group-components"]), "every batch group needs a size"
    for rule in sorted(gpu_rules):
        assert rule in slurm["set-resources"], f"GPU rule {rule} has no resources in profiles/slurm"
        assert "gpu" not in slurm["set-resources"][rule], f"{rule}: gpu comes from the config device, not the profile"
        assert slurm["set-resources"][rule]["cpus_per_gpu"] >= 1
    local = yaml.safe_load((REPO / "profiles" / "local" / "config.yaml").read_text(encoding="utf-8"))
    assert local["cores"] == "all" and any(str(r).startswith("gpu=") for r in local["resources"])


@pytest.mark.slow
def test_paper_preset_dry_run_through_the_slurm_profile_batches_per_case_rules(
    tmp_path: Path, snakemake_exe: str
) -> None:
    """`snakemake --dry-run --profile profiles/slurm --configfile presets/paper.yaml` on an MRNet label
    layout (120 exams here; the acceptance run used MRNet's 1,250): per-case rules go in batches of
    the profile's group-components, GPU rules ask for a GPU, and no job asks for a GPU on a CPU rule."""
    import math
    import subprocess

    root = tmp_path / "MRNet-v1.0"
    root.mkdir()
    splits = {"train": range(0, 100), "valid": range(100, 120)}
    for split, ids in splits.items():
        for _k, name in enumerate(("abnormal", "acl", "meniscus")):
            # every 3rd exam abnormal with a tear, so that each label file has both classes
            (root / f"{split}-{name}.csv").write_text(
                "".join(f"{i:04d},{int(i % 3 == 0)}\n" for i in ids), encoding="utf-8"
            )
    layer = tmp_path / "where.yaml"
    layer.write_text(
        yaml.safe_dump({"results": str(tmp_path / "results"), "source": {"root": str(root)}}), encoding="utf-8"
    )
    proc = subprocess.run(
        [
            snakemake_exe,
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(REPO),
            "--dry-run",
            "--profile",
            str(REPO / "profiles" / "slurm"),
            "--sdm",
            "env-modules",  # no conda needed for a dry run
            "--configfile",
            str(REPO / "presets" / "paper.yaml"),
            str(layer),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=900,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    stats = {}
    for line in out.split("Job stats:", 1)[1].splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        stats[match.group(1)] = int(match.group(2))
    n_cases = sum(len(ids) for ids in splits.values())
    assert stats["preprocess"] == stats["register"] == n_cases
    assert stats["extract_features"] == 2 * n_cases  # the paper's grids 2 and 3
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))
    for rule, group in profile["groups"].items():
        if rule not in stats:
            continue
        size = profile["group-components"][group]
        assert len(re.findall(rf"Group job {group} ", out)) == math.ceil(stats[rule] / size), (rule, stats[rule], size)
    for rule in ("train_ddpm", "persona", "train_fingerprint"):
        block = re.findall(rf"\nrule {rule}:\n(?:    .*\n)*?    resources: (.*)", out)
        assert block and all("gpu=1" in b and "cpus_per_gpu=8" in b for b in block), (rule, block[:1])
    for rule in ("register", "extract_features", "preprocess"):
        assert not [b for b in re.findall(rf"rule {rule}:\n(?:\s+.*\n)*?\s+resources: (.*)", out) if "gpu=1" in b]
