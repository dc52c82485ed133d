"""Experiment configs are frozen dataclasses; here they become dicts and back, with overrides.

`apply_overrides(cfg, ["iterations=2001", "runs.0.schedule.lr=0.3"])` edits any field by its dotted
path (list entries by index), parses values as JSON where possible and rebuilds the config, checking each
value's type; `experiments.plan` then validates the whole config once.
"""
from __future__ import annotations

import dataclasses
import json
import re
import types
import typing


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent; the message says which and why."""


def to_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples -> lists, a plain JSON tree


def check_keys(runs) -> None:
    """A config's runs: at least one, each with a key (its name in claims) that is an identifier, all distinct."""
    if not runs:
        raise ConfigError("runs must not be empty")
    keys = [run.key for run in runs]
    bad = [k for k in keys if not (isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k))]
    if bad:
        raise ConfigError(f"run keys must be identifiers (letters, digits, '_'), got {bad[0]!r}")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ConfigError(f"run keys must be distinct, got {repeated[0]!r} twice")


def _build(tp, value, path="config", strict=False):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _build(args[0], value, path, strict)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object ({tp.__name__}), got {value!r}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise ConfigError(f"{path}: unknown field(s) {sorted(unknown)} for {tp.__name__}")
        required = names if strict else {f.name for f in dataclasses.fields(tp)
                                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        if required - set(value):
            raise ConfigError(f"{path}: missing field(s) {sorted(required - set(value))} for {tp.__name__}")
        return tp(**{k: _build(hints[k], v, f"{path}.{k}", strict) for k, v in value.items()})
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v, f"{path}.{i}", strict) for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{path}: expected {len(args)} entries, got {value!r}")
        return tuple(_build(a, v, f"{path}.{i}", strict) for i, (a, v) in enumerate(zip(args, value)))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return int(value)
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    return value


def from_dict(cls, data: dict, path: str = "config", strict: bool = False):
    """The dataclass `cls` rebuilt from its dict form, each value's type checked (ConfigError naming the field,
    under `path`; strict: every field present, defaults included, as in a file we wrote); not validated as a
    whole (`experiments.plan` does that, once)."""
    return _build(cls, data, path, strict)


def _relative(err: ConfigError) -> ConfigError:
    """An override's error names the field as --set does ('iterations', not 'config.iterations')."""
    return ConfigError(str(err).removeprefix("config."))


def apply_overrides(cfg, overrides: list[str]):
    if not overrides:
        return cfg
    tree = to_dict(cfg)
    for item in overrides:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"override {item!r} is not of the form field=value")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node, keys = tree, path.split(".")
        for key in keys[:-1]:
            node = _child(node, key, path)
        last = keys[-1]
        if isinstance(node, list):
            _child(node, last, path)
            node[int(last)] = value
        elif isinstance(node, dict) and last in node:
            node[last] = value
        else:
            raise ConfigError(f"{type(cfg).__name__} has no field {path!r}")
    try:
        return from_dict(type(cfg), tree)
    except ConfigError as err:
        raise _relative(err) from None


def has_field(cfg, path: str) -> bool:
    """Whether `path` (dotted, as in --set) names a field of cfg."""
    node = to_dict(cfg)
    try:
        for key in path.split("."):
            node = _child(node, key, path)
    except ConfigError:
        return False
    return True


def _child(node, key, path):
    if isinstance(node, list):
        if key.isdigit() and int(key) < len(node):
            return node[int(key)]
        raise ConfigError(f"no field {path!r}: {key!r} is not an index of a list of {len(node)} "
                          f"(0 to {len(node) - 1})")
    if isinstance(node, dict) and key in node:
        return node[key]
    known = ", ".join(sorted(node)) if isinstance(node, dict) else ""
    raise ConfigError(f"no field {path!r}: {key!r} is not a field here" + (f" (fields: {known})" if known else ""))
