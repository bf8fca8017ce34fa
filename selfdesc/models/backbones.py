"""One table of the dense networks ("backbones") that methods train and extractors run.

A model file records its network as ``conf["backbone"] = {"name": NAME, **options}`` (the
options are the network's own ``conf``); :func:`build_backbone` rebuilds the network from that
alone, so extracting features with a model file needs nothing from the method that trained it.
Each method says which of these it trains (HNDesc: r2d2, caps, superpoint, lite; TPR: vgg,
aslfeat, swin) and how its own settings map to the network's options.

Every backbone class declares its options in ``default_conf`` and has a ``stride``: input
pixels per cell of its descriptor map.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.registry import lookup

#: backbone name -> "module:Class"
BACKBONES: dict[str, str] = {
    "r2d2": "selfdesc.models.l2net:QuadL2Net",
    "caps": "selfdesc.models.caps:ResUNet",
    "superpoint": "selfdesc.models.superpoint:SuperPointNet",
    "lite": "selfdesc.models.litenet:LiteNet",
    "vgg": "selfdesc.models.vgg:VGGBackbone",
    "aslfeat": "selfdesc.models.deform:ASLFeatBackbone",
    "swin": "selfdesc.models.swin:SwinBackbone",
}


def backbone_class(name: str) -> type[nn.Module]:
    """The class registered under ``name`` (a :class:`~selfdesc.errors.ConfigError` for an unknown name)."""
    return lookup(BACKBONES, name, "backbone")


def build_backbone(conf: Mapping[str, Any]) -> nn.Module:
    """The network of ``{"name": NAME, **options}`` (options merged over the class's ``default_conf``)."""
    options = dict(conf)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"backbone: no name in {dict(conf)}")
    return backbone_class(name)(options)


__all__ = ["BACKBONES", "backbone_class", "build_backbone"]
