"""Machinery of the settings objects: schema fragments, typed conversion, plain round trip.

Two layers check a configuration, each fact once:

* the JSON schema (``schemas/config.schema.yaml``) is the structural layer: keys, types, enums and
  numeric bounds (unknown keys are rejected everywhere);
* the frozen dataclasses of :mod:`radpersona.settings` add every rule that involves more than one
  key (``__post_init__`` of the section that holds all the keys involved, or of
  :class:`radpersona.settings.Settings` across sections).

:meth:`Section.from_config` runs both on a plain mapping, so a stage that receives its section as a
rule parameter rebuilds exactly the object the workflow validated at parse time; nothing downstream
checks ranges again. :meth:`Section.to_config` gives the plain mapping back (rule ``params:`` and
checkpoints store that form).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, Self

import jsonschema
import yaml

from radpersona.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "schemas" / "config.schema.yaml"


@functools.cache
def schema() -> dict[str, Any]:
    """The configuration schema (read once per process)."""
    with open(SCHEMA_PATH, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref`` (``#/$defs/name``) and merge ``allOf`` branches' properties."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _resolve(schema()["$defs"][name])
    if "allOf" in node:
        merged: dict[str, Any] = {}
        for part in node["allOf"]:
            part = _resolve(part)
            for key, value in part.items():
                if key == "properties":
                    merged.setdefault("properties", {}).update(value)
                elif key == "required":
                    merged.setdefault("required", []).extend(value)
                else:
                    merged[key] = value
        return merged
    return node


def fragment(key: str) -> dict[str, Any]:
    """The schema of the config key ``key`` (dotted, e.g. ``persona.unet``), with the shared ``$defs``."""
    node: Mapping[str, Any] = schema()
    for part in key.split("."):
        node = _resolve(node)
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), Mapping):
            node = node["additionalProperties"]
        else:
            raise KeyError(f"config key {key!r} is not in the schema")
    return {"$defs": schema()["$defs"], **node}


def _key_of(error: jsonschema.ValidationError, prefix: str) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        if extra:
            path = ".".join(filter(None, [path, extra[0]]))
    elif error.validator == "required":
        match = re.match(r"^'([^']+)' is a required property", error.message)
        if match:
            path = ".".join(filter(None, [path, match.group(1)]))
    return ".".join(filter(None, [prefix, path])) or "<top level>"


def validate_structure(mapping: Any, key: str = "", omits: tuple[str, ...] = ()) -> None:
    """Validate ``mapping`` against the schema (``key`` = its dotted config key, ``""`` = the whole config).

    ``omits`` names keys the schema requires at ``key`` that this (subset) mapping leaves out.

    Raises:
        ConfigError: listing up to ten problems, each naming its key, e.g.
            ``config key 'persona.train.steps': -1 is less than the minimum of 1``.
    """
    node = schema() if not key else fragment(key)
    validator = jsonschema.Draft202012Validator(node)
    errors = [
        e
        for e in validator.iter_errors(mapping)
        if not (e.validator == "required" and not list(e.absolute_path) and _key_of(e, "") in omits)
    ]
    errors.sort(key=lambda e: (len(list(e.absolute_path)), str(e.absolute_path)))
    if errors:
        lines = []
        for err in errors[:10]:
            message = f"unknown key ({err.message})" if err.validator == "additionalProperties" else err.message
            lines.append(f"config key '{_key_of(err, key)}': {message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))


def settings_hash(settings: Any) -> str:
    """A short stable hash of JSON-serialisable settings (recorded with outputs)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def fail(key: str, message: str) -> ConfigError:
    """The error of a cross-field rule, naming ``key`` (the caller raises it)."""
    return ConfigError(f"config key '{key}': {message}")


# ----------------------------------------------------------------------------- typed conversion


def _convert(hint: Any, value: Any, key: str) -> Any:
    """Turn a plain (schema-valid) value into the type ``hint`` names."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        for option in options:
            if option is str and isinstance(value, str):
                return value
        return _convert(options[0], value, key)
    if isinstance(hint, type) and issubclass(hint, Section):
        return hint._build(value, key)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return hint(value)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}[{n}]") for n, v in enumerate(value))
        return tuple(_convert(a, v, f"{key}[{n}]") for n, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin in (dict, Mapping, types.MappingProxyType):
        _, value_hint = typing.get_args(hint)
        return types.MappingProxyType({str(k): _convert(value_hint, v, f"{key}.{k}") for k, v in value.items()})
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _plain(value: Any) -> Any:
    """The plain (YAML/JSON) form of a settings value."""
    if isinstance(value, Section):
        return value.to_config()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Section:
    """Base of every frozen settings dataclass.

    Subclasses set :attr:`KEY` (their dotted config key) and put cross-field rules in
    ``__post_init__`` (raising :func:`fail`). Fields absent from a mapping take the dataclass
    default; a field without a default must be present (the schema says which keys are required).
    """

    KEY: ClassVar[str] = ""
    OMITS: ClassVar[tuple[str, ...]] = ()
    """Keys the schema requires at :attr:`KEY` that this class (a subset of the section) leaves out."""

    @classmethod
    def from_config(cls, mapping: Mapping[str, Any] | Self, key: str | None = None) -> Self:
        """Validate ``mapping`` (schema fragment, then cross-field rules) and build the settings object.

        An object of this class is returned as it is.
        """
        if isinstance(mapping, cls):
            return mapping
        key = cls.KEY if key is None else key
        validate_structure(mapping, key, cls.OMITS)
        return cls._build(typing.cast(Mapping[str, Any], mapping), key)

    @classmethod
    def _build(cls, mapping: Mapping[str, Any], key: str) -> Self:
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init:
                continue
            if f.name in mapping:
                kwargs[f.name] = _convert(hints[f.name], mapping[f.name], f"{key}.{f.name}".lstrip("."))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise fail(f"{key}.{f.name}".lstrip("."), "is required")
        return cls(**kwargs)

    def to_config(self) -> dict[str, Any]:
        """The plain mapping this object was built from (defaults filled in)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init}  # type: ignore[arg-type]

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` (validated again by ``__post_init__``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
