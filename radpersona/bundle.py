"""A model bundle: everything ``radpersona diagnose`` needs to explain a new exam, and nothing else.

Files (:class:`radpersona.layout.BundleLayout`): the registration reference of each view, the persona
DDPM trained on all healthy training cases, the fingerprint model trained on all of train (network,
standardisation, usage threshold, feature names), the training means that replace a missing feature
value, ``config.json`` (the settings the stages read, the views, the experiment's branch and grid, the
decision threshold and where it came from), ``versions.json`` (radpersona, the packages that compute
its numbers, reg_aladin) and ``manifest.json`` (SHA-256 of every other file), written last.

:func:`verify_bundle` reads nothing but the manifest before it has checked every file against it and
every recorded version against the running ones; a bundle that does not match is refused with an
error naming the file (and, for a version, the package and both versions). Models inside are read
weights-only (``torch.load(..., weights_only=True)``) by their own loaders.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from radpersona import __version__
from radpersona.errors import InputDataError
from radpersona.layout import BundleLayout

FORMAT = "radpersona.bundle/1"
"""Format tag of ``manifest.json``."""

VERSIONED_PACKAGES: tuple[str, ...] = (
    "torch",
    "monai",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "SimpleITK",
    "scikit-learn",
    "scikit-image",
    "einops",
)
"""Distributions whose version a bundle records and requires (those that compute the stages' numbers)."""

SNAKEMAKE_MARKER = ".snakemake_timestamp"
"""The file Snakemake adds to a ``directory()`` output: not part of the bundle, not checked."""

REG_ALADIN = "reg_aladin"
"""The key of NiftyReg's version in ``versions.json``."""


def sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def current_versions(*, reg_aladin: bool = True) -> dict[str, str]:
    """Versions of radpersona, :data:`VERSIONED_PACKAGES` (``not installed`` if absent) and, with
    ``reg_aladin``, NiftyReg's reg_aladin."""
    versions = {"radpersona": str(__version__)}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "not installed"
    if reg_aladin:
        from radpersona.registration import niftyreg_version

        versions[REG_ALADIN] = niftyreg_version("reg_aladin")
    return versions


def _read_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise InputDataError(f"bundle {what} not found", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputDataError(f"bundle {what} is not valid JSON ({exc})", path=path) from None


def write_manifest(bundle: BundleLayout) -> dict[str, str]:
    """Write ``manifest.json``: the SHA-256 of every other file in the bundle folder; return the checksums."""
    from radpersona.atomic import write_text_atomic

    root = Path(bundle.root)
    manifest = Path(bundle.manifest())
    files = sorted(p for p in root.iterdir() if p.is_file() and p != manifest and p.name != SNAKEMAKE_MARKER)
    checksums = {p.name: sha256(p) for p in files}
    write_text_atomic(manifest, json.dumps({"format": FORMAT, "sha256": checksums}, indent=2, sort_keys=True))
    return checksums


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle whose files match its manifest and whose versions match the running ones.

    Attributes:
        files: the bundle's files.
        config: ``config.json`` (``views``, ``experiment``, ``task``, ``reg``, ``grid``, ``threshold``,
            ``threshold_from`` and the settings sections the stages read).
        versions: ``versions.json``.
    """

    files: BundleLayout
    config: dict[str, Any]
    versions: dict[str, str]


def verify_bundle(
    root: str | Path, *, running: Mapping[str, str] | None = None, check_versions: bool = True
) -> VerifiedBundle:
    """Check a bundle before anything in it is used.

    Every file the manifest lists must exist with its SHA-256, the folder must hold no file the
    manifest does not list, and every version in ``versions.json`` must equal the running one
    (``running``, default :func:`current_versions`).

    Raises:
        InputDataError: naming the file (and the package with both versions) that does not match.
    """
    files = BundleLayout(str(root))
    folder = Path(files.root)
    if not folder.is_dir():
        raise InputDataError("bundle folder not found", path=folder)
    manifest_path = Path(files.manifest())
    manifest = _read_json(manifest_path, "manifest")
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("sha256"), dict)
    ):
        raise InputDataError(f"not a bundle manifest (format {FORMAT!r} expected)", path=manifest_path)
    listed: dict[str, str] = manifest["sha256"]
    present = {p.name for p in folder.iterdir() if p.is_file() and p != manifest_path and p.name != SNAKEMAKE_MARKER}
    extra = sorted(present - set(listed))
    if extra:
        raise InputDataError("file is not in the bundle's manifest", path=folder / extra[0])
    required = [files.config(), files.versions(), files.ddpm(), files.fingerprint_model(), files.imputation()]
    for path in [Path(p) for p in required] + [folder / name for name in sorted(listed)]:
        if path.name not in listed:
            raise InputDataError("bundle file is not in the manifest", path=path)
        if not path.is_file():
            raise InputDataError("bundle file is missing", path=path)
        digest = sha256(path)
        if digest != listed[path.name]:
            raise InputDataError(
                f"bundle file's SHA-256 {digest[:16]}... differs from the manifest's {listed[path.name][:16]}... "
                "(changed after the bundle was made)",
                path=path,
            )
    config = _read_json(Path(files.config()), "config")
    versions = _read_json(Path(files.versions()), "versions")
    for view in config["views"] if config.get("reg") == "reg" else []:
        if Path(files.reference(view)).name not in listed:
            raise InputDataError(f"bundle has no registration reference of view {view!r}", path=files.reference(view))
    if check_versions:
        now = dict(running) if running is not None else current_versions(reg_aladin=REG_ALADIN in versions)
        for name, version in sorted(versions.items()):
            if now.get(name) != version:
                raise InputDataError(
                    f"the bundle was made with {name} {version}, this installation has {now.get(name, 'none')}; "
                    "install the bundle's versions or rebuild the bundle",
                    path=files.versions(),
                )
    return VerifiedBundle(files=files, config=config, versions=versions)
