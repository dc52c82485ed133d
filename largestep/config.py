"""Experiment configs are frozen dataclasses; here they become dicts and back, with overrides.

`apply_overrides(cfg, ["iterations=2001", "runs.0.schedule.lr=0.3"])` edits any field by its dotted
path (list entries by index), parses values as JSON where possible, rebuilds the config and validates it.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent; the message says which and why."""


def to_dict(cfg) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))  # tuples -> lists, a plain JSON tree


def _build(tp, value):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _build(args[0], value)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"expected an object for {tp.__name__}, got {value!r}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = set(value) - names
        if unknown:
            raise ConfigError(f"unknown field(s) {sorted(unknown)} for {tp.__name__}")
        required = {f.name for f in dataclasses.fields(tp)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        if required - set(value):
            raise ConfigError(f"missing field(s) {sorted(required - set(value))} for {tp.__name__}")
        return tp(**{k: _build(hints[k], v) for k, v in value.items()})
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"expected {len(args)} entries, got {value!r}")
        return tuple(_build(a, v) for a, v in zip(args, value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"expected an integer, got {value!r}")
        return int(value)
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"expected a string, got {value!r}")
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}")
    return value


def from_dict(cls, data: dict):
    cfg = _build(cls, data)
    cfg.validate()
    return cfg


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
    return from_dict(type(cfg), tree)


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
    if isinstance(node, list) and key.isdigit() and int(key) < len(node):
        return node[int(key)]
    if isinstance(node, dict) and key in node:
        return node[key]
    raise ConfigError(f"no field {path!r} (stuck at {key!r})")
