"""Trainable methods that plug into :class:`selfdesc.training.trainer.Trainer`.

A method is an ``nn.Module`` built from one config dict (merged over its module's
``DEFAULT_CONF``) whose ``forward(batch)`` takes the image-folder batch ``{"image": (B, 3, H, W)
in [0, 1], "index": (B,)}`` and returns a dict with a scalar ``"loss"`` plus logged values.
Register a new one here as ``name -> "module:Class"``; its module must define ``DEFAULT_CONF``.
"""
from __future__ import annotations

import importlib
from typing import Any

from torch import nn

from selfdesc.errors import ConfigError

#: method name -> "module:Class"
METHODS: dict[str, str] = {
    "hndesc": "selfdesc.methods.hndesc:HNDesc",
    "tpr": "selfdesc.methods.tpr:TPR",
    "residual": "selfdesc.methods.residual:Residual",
    "matcher": "selfdesc.methods.matcher:MatcherTraining",
}


def _module_and_class(name: str) -> tuple[Any, str]:
    if name not in METHODS:
        raise ConfigError(f"unknown method '{name}' (available: {', '.join(sorted(METHODS))})")
    module, cls = METHODS[name].split(":")
    return importlib.import_module(module), cls


def method_defaults(name: str) -> dict[str, Any]:
    """The ``DEFAULT_CONF`` of method ``name`` (a copy)."""
    import copy

    module, _ = _module_and_class(name)
    return copy.deepcopy(module.DEFAULT_CONF)


def build_method(name: str, conf: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate method ``name`` with ``conf`` merged over its defaults."""
    module, cls = _module_and_class(name)
    return getattr(module, cls)(conf or {})


__all__ = ["METHODS", "build_method", "method_defaults"]
