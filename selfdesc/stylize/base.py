"""The stylizer interface, the registry of built-ins and :func:`load_stylizer` (see the package docs)."""
from __future__ import annotations

import abc
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from selfdesc.errors import ConfigError
from selfdesc.registry import lookup
from selfdesc.stylize.style_bank import StyleBank, as_style_bank

#: built-in name -> "module:Class" (imported on first use)
REGISTRY: dict[str, str] = {
    "lab_transfer": "selfdesc.stylize.classical:LabTransfer",
    "histogram_match": "selfdesc.stylize.classical:HistogramMatch",
    "day_to_night": "selfdesc.stylize.classical:DayToNight",
    "dusk": "selfdesc.stylize.classical:Dusk",
    "overcast": "selfdesc.stylize.classical:Overcast",
    "fog": "selfdesc.stylize.classical:Fog",
    "low_light": "selfdesc.stylize.classical:LowLight",
    "mixed": "selfdesc.stylize.classical:MixedStylizer",
}

#: short names accepted wherever a built-in name is
ALIASES: dict[str, str] = {
    "lab": "lab_transfer",
    "hist": "histogram_match",
    "night": "day_to_night",
    "random": "mixed",
}


class Stylizer(abc.ABC):
    """Base class of stylizers: ``stylizer(image, rng) -> image``.

    Subclasses set :attr:`name` and implement :meth:`__call__`. Subclassing is optional for
    plugins: any class with a ``name`` string and a ``__call__(image, rng)`` method works.
    """

    #: short identifier, used in logs and in the choice of a :class:`MixedStylizer`
    name: str = "stylizer"

    @abc.abstractmethod
    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Restyle one image.

        Args:
            image: ``H x W x 3`` float32 RGB in ``[0, 1]``.
            rng: the only source of randomness (same state -> same output).

        Returns:
            ``H x W x 3`` float32 RGB in ``[0, 1]``, pixel-aligned with ``image``.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def apply_stylizer(stylizer: Any, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Run ``stylizer`` and check its output: same ``H x W x 3`` shape, finite; cast to float32 and clip to [0, 1].

    Raises:
        ConfigError: the output has another shape or holds NaN/inf (the stylizer is broken).
    """
    out = np.asarray(stylizer(image, rng))
    name = getattr(stylizer, "name", type(stylizer).__name__)
    if out.shape != image.shape:
        raise ConfigError(
            f"stylizer '{name}' returned shape {out.shape} for an input of shape {image.shape}; "
            "stylizers must keep the image size (pixel-aligned output)"
        )
    if not np.isfinite(out).all():
        raise ConfigError(f"stylizer '{name}' returned NaN or infinite values")
    return np.clip(out.astype(np.float32, copy=False), 0.0, 1.0)


def available_stylizers() -> list[str]:
    """Built-in stylizer names (aliases: :data:`ALIASES`)."""
    return sorted(REGISTRY)


def load_stylizer(
    spec: str,
    style_bank: StyleBank | str | Path | Sequence[np.ndarray] | None = None,
    **options: Any,
) -> Any:
    """Build a stylizer from a built-in name or a ``path/to/module.py:ClassName`` plugin spec.

    Args:
        spec: a name of :func:`available_stylizers`, an alias (``lab``, ``hist``, ``night``,
            ``random``) or ``path/to/file.py:ClassName``.
        style_bank: style images, passed as ``style_bank=`` to constructors that accept it
            (a :class:`StyleBank`, a folder, or a list of arrays); ignored by the others.
        **options: keyword arguments for the constructor.

    Returns:
        The stylizer instance (a :class:`Stylizer` or any object following the interface).

    Raises:
        ConfigError: unknown name, unreadable plugin file, missing class, bad constructor
            arguments, or a class that does not follow the interface (one-line message).
    """
    spec = spec.strip()
    bank = as_style_bank(style_bank)
    name = ALIASES.get(spec, spec)
    if name in REGISTRY:
        cls = lookup(REGISTRY, name, "stylizer")
        where = f"stylizer '{name}'"
    elif ":" in spec and spec.rsplit(":", 1)[0].endswith(".py"):
        path, cls_name = spec.rsplit(":", 1)
        cls = _class_from_file(Path(path), cls_name)
        where = f"{path}: class '{cls_name}'"
    else:
        raise ConfigError(
            f"unknown stylizer '{spec}' (built-ins: {', '.join(available_stylizers())}; "
            f"aliases: {', '.join(sorted(ALIASES))}; or path/to/module.py:ClassName)"
        )
    if bank is not None and _accepts_keyword(cls, "style_bank"):
        options = {**options, "style_bank": bank}
    try:
        stylizer = cls(**options)
    except ConfigError:
        raise
    except TypeError as exc:
        raise ConfigError(f"{where}: bad constructor arguments ({exc})") from None
    check_interface(stylizer, where)
    return stylizer


def check_interface(stylizer: Any, where: str) -> None:
    """Raise :class:`ConfigError` unless ``stylizer`` has a ``name`` string and ``__call__(image, rng)``."""
    if not isinstance(getattr(stylizer, "name", None), str):
        raise ConfigError(f"{where}: a stylizer needs a 'name' string attribute")
    if not callable(stylizer):
        raise ConfigError(f"{where}: a stylizer must be callable as stylizer(image, rng)")
    try:
        inspect.signature(stylizer).bind(np.zeros((2, 2, 3), np.float32), np.random.default_rng(0))
    except TypeError:
        raise ConfigError(f"{where}: __call__ must take exactly (image, rng)") from None
    except ValueError:  # no signature available (builtin callables): trust it
        pass


def _accepts_keyword(cls: type, keyword: str) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _class_from_file(path: Path, cls_name: str) -> type:
    if not path.is_file():
        raise ConfigError(f"{path}: no such stylizer file")
    module_name = f"selfdesc_stylizer_plugin_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # lets dataclasses/pickle find the module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # any error in user code becomes one line
        del sys.modules[module_name]
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ConfigError(f"{path}: import failed ({type(exc).__name__}: {first})") from None
    cls = getattr(module, cls_name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items() if inspect.isclass(v) and v.__module__ == module_name)
        raise ConfigError(f"{path}: no class '{cls_name}' (classes defined there: {', '.join(found) or 'none'})")
    if not inspect.isclass(cls):
        raise ConfigError(f"{path}: '{cls_name}' is not a class")
    return cls
