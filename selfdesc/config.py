"""Configuration: defaults in code, YAML files on top, dotted command-line overrides last.

    conf = load_config(DEFAULTS, "configs/hndesc_r2d2.yaml", ["optim.lr=3e-4", "data.batch_size=8"])

* A YAML file may only set keys that exist in the defaults (typos are errors, not silently
  ignored); nested dicts merge key by key, any other value replaces the default.
* An override ``a.b.c=VALUE`` parses ``VALUE`` as YAML (``1e-3`` -> float, ``true`` -> bool,
  ``[1, 2]`` -> list, ``null`` -> None, anything else a string).
* Keys listed in ``open_keys`` (e.g. a free-form ``extra`` dict) accept new sub-keys.

The same rule holds for every object with options (methods, networks, extractors, matchers): it
declares them as a ``default_conf`` class attribute and merges what it is given with
:func:`merge` (strict keys); a config section that fills a dataclass goes through
:func:`to_dataclass`.
"""
from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

import yaml

from selfdesc.errors import ConfigError

T = TypeVar("T")


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def merge(
    base: Mapping[str, Any],
    update: Mapping[str, Any],
    where: str = "",
    open_keys: Iterable[str] = (),
    owner: str | None = None,
) -> dict[str, Any]:
    """Recursively merge ``update`` into a deep copy of ``base``; unknown keys raise ConfigError.

    This is how every configurable object takes its options: ``self.conf =
    merge(self.default_conf, conf, owner="...")``. ``where`` prefixes the key paths in messages
    (``"model"`` -> ``model.dim``); ``owner`` names the object whose options they are (the message
    then reads ``"<owner>: unknown option '<key>' (known: ...)"``).
    """
    open_keys = set(open_keys)
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in out and where not in open_keys:
            known = ", ".join(sorted(map(str, out))) or "none"
            if owner is not None:
                raise ConfigError(f"{owner}: unknown option '{path}' (known: {known})")
            raise ConfigError(f"unknown config key '{path}' (known here: {known})")
        if isinstance(out.get(key), dict) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, path, open_keys, owner)
        else:
            out[key] = copy.deepcopy(value)
    return out


def to_dataclass(cls: type[T], values: Mapping[str, Any], where: str | None = None) -> T:
    """The dataclass ``cls`` built from a config section (lists become tuples, as YAML has no tuples).

    Raises:
        ConfigError: a key that is not a field of ``cls`` (named with ``where``, default the class name).
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown option(s) {', '.join(sorted(map(str, unknown)))} (known: {', '.join(sorted(known))})")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def parse_override(text: str) -> dict[str, Any]:
    """``"a.b=3"`` -> ``{"a": {"b": 3}}``."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key.path=value")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.load(raw, Loader=_Loader) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    for part in reversed(parts):
        value = {part: value}
    return value  # type: ignore[return-value]


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or non-mapping file is a ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: invalid YAML ({first})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(
    defaults: Mapping[str, Any],
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    open_keys: Iterable[str] = (),
    content: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Defaults <- YAML file <- dotted overrides (see the module docstring).

    ``content``: the file's mapping when the caller has read it already (:func:`read_yaml`);
    ``path`` then only names it in messages.
    """
    conf = copy.deepcopy(dict(defaults))
    if path is not None:
        try:
            conf = merge(conf, read_yaml(path) if content is None else content, open_keys=open_keys)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for text in overrides:
        conf = merge(conf, parse_override(text), open_keys=open_keys)
    return conf


def dump_config(conf: Mapping[str, Any]) -> str:
    """YAML text of a config (sorted keys kept in insertion order)."""
    return yaml.safe_dump(dict(conf), sort_keys=False)
