"""Feature extractors: a registry of names -> :class:`~selfdesc.features.base.Extractor` classes.

Use :func:`load_extractor` to build one by name; classes are imported lazily so that
``import selfdesc`` stays light.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features.base import Extractor
from selfdesc.registry import lookup

#: name -> "module:Class"
REGISTRY: dict[str, str] = {
    "sift": "selfdesc.features.opencv:SIFT",
    "rootsift": "selfdesc.features.opencv:RootSIFT",
    "orb": "selfdesc.features.opencv:ORB",
    "disk": "selfdesc.features.kornia_peers:DISK",
    "aliked": "selfdesc.features.kornia_peers:ALIKED",
    "xfeat": "selfdesc.features.kornia_peers:XFeat",
    "r2d2": "selfdesc.features.r2d2:R2D2",
    "tpr": "selfdesc.features.tpr:TPRFeatures",
    "residual": "selfdesc.features.residual:ResidualFeatures",
    "residual-sift": "selfdesc.features.residual:ResidualSIFT",
    "residual-rootsift-upright": "selfdesc.features.residual:ResidualRootSIFTUpright",
    "hndesc": "selfdesc.features.hndesc:HNDescFeatures",
    "hndesc-r2d2": "selfdesc.features.hndesc:HNDescFeatures",
    "hndesc-lite": "selfdesc.features.lite:HNDescLite",
    "default": "selfdesc.features.lite:HNDescLite",
}


#: method of a model file (see :func:`selfdesc.weights.read_model_file`) -> the feature that reads it;
#: a ``"method:backbone"`` key (the file's ``conf.backbone.name``) takes precedence over ``"method"``
MODEL_FEATURES: dict[str, str] = {
    "hndesc": "hndesc",
    "hndesc:lite": "hndesc-lite",
    "tpr": "tpr",
    "residual": "residual",
}


def model_feature(model: dict[str, Any]) -> str | None:
    """The feature that reads a model file's content (:func:`selfdesc.weights.read_model_file`), or ``None``."""
    conf = model.get("conf")
    backbone = conf.get("backbone") if isinstance(conf, dict) else None
    name = backbone.get("name") if isinstance(backbone, dict) else None
    return MODEL_FEATURES.get(f"{model['method']}:{name}", MODEL_FEATURES.get(model["method"]))


def is_model_path(name: str) -> bool:
    """True when ``name`` is not a registered feature but an existing file (a model file or checkpoint)."""
    return name not in REGISTRY and Path(name).is_file()


def available_features() -> list[str]:
    """Registered feature names."""
    return sorted(REGISTRY)


def extractor_class(name: str) -> type[Extractor]:
    """The class registered under ``name``."""
    return lookup(REGISTRY, name, "feature")


def resolve_features(name_or_path: str | Path) -> tuple[str, dict[str, Any]]:
    """A registered feature name, or a model file of ours -> ``(feature name, extra options)``.

    A model file (``selfdesc export-weights``, or a training checkpoint) gives the feature of
    its method (:data:`MODEL_FEATURES`) with ``checkpoint=path``.

    Raises:
        ConfigError: neither a registered name nor an existing file.
        WeightsError: a file that is not a model of a method with a feature extractor.
    """
    text = str(name_or_path)
    if text in REGISTRY:
        return text, {}
    if not Path(text).is_file():
        raise ConfigError(f"unknown feature '{text}': not a registered name ({', '.join(available_features())}) nor a model file")
    from selfdesc.weights import read_model_file

    model = read_model_file(text)
    feature = model_feature(model)
    if feature is None:
        raise WeightsError(f"{text}: holds a '{model['method']}' model, which has no feature extractor")
    return feature, {"checkpoint": text}


def load_extractor(
    name: str | Path,
    weights_dir: str | Path | None = None,
    device: str = "cpu",
    **conf: Any,
) -> Extractor:
    """Build the extractor ``name`` in eval mode on ``device``.

    Args:
        name: a registered feature name (see :func:`available_features`), or the path of one of
            our model files / training checkpoints (its method picks the extractor, see
            :func:`resolve_features`).
        weights_dir: where peer weights live (see :mod:`selfdesc.weights`); used only by
            extractors that need a weight file.
        device: ``"cpu"`` or ``"cuda"``.
        **conf: options of the extractor (``max_keypoints``, ``resize_max``, ...); ``None``
            values are dropped so that defaults apply.
    """
    feature, extra = resolve_features(name)
    conf = {**extra, **{k: v for k, v in conf.items() if v is not None}}
    cls = extractor_class(feature)
    if getattr(cls, "needs_weights", False):
        conf["weights_dir"] = weights_dir
    return cls(conf).eval().to(device)


__all__ = ["Extractor", "MODEL_FEATURES", "model_feature", "REGISTRY", "is_model_path", "available_features", "extractor_class", "load_extractor", "resolve_features"]
