"""Trainable methods that plug into :class:`selfdesc.training.trainer.Trainer`.

A method is an ``nn.Module`` built from one config dict (merged over its class's
``default_conf`` with :func:`selfdesc.config.merge`) whose ``forward(batch)`` takes the
image-folder batch ``{"image": (B, 3, H, W) in [0, 1], "index": (B,)}`` and returns a dict with
a scalar ``"loss"`` plus logged values.
Register a new one here as ``name -> "module:Class"``; its class must define ``default_conf``.
"""
from __future__ import annotations

from typing import Any

from torch import nn

from selfdesc.registry import lookup

#: method name -> "module:Class"
METHODS: dict[str, str] = {
    "hndesc": "selfdesc.methods.hndesc:HNDesc",
    "tpr": "selfdesc.methods.tpr:TPR",
    "residual": "selfdesc.methods.residual:Residual",
    "matcher": "selfdesc.methods.matcher:MatcherTraining",
}


def method_class(name: str) -> type[nn.Module]:
    """The class registered under ``name``."""
    return lookup(METHODS, name, "method")


def method_defaults(name: str) -> dict[str, Any]:
    """The ``default_conf`` of method ``name`` (a copy)."""
    import copy

    return copy.deepcopy(method_class(name).default_conf)


def build_method(name: str, conf: dict[str, Any] | None = None) -> nn.Module:
    """Instantiate method ``name`` with ``conf`` merged over its defaults."""
    return method_class(name)(conf or {})


__all__ = ["METHODS", "build_method", "method_class", "method_defaults"]
