"""Stylization for training: restyle an image (night, fog, another style's colours) without moving a pixel.

HNDesc pairs each training image with a stylized copy of itself (methods.md §2.3, §2.6); the
crops' homography labels are only correct if stylization changes appearance, never geometry.
The paper's neural photorealistic stylizer (PhotoWCT) is not bundled; the built-ins are
classical, and a neural model can be plugged in by file path.

The interface
-------------
A stylizer is any object with

* ``name``: a short string (used in logs and by :class:`MixedStylizer`), and
* ``__call__(image, rng) -> image`` where ``image`` is an ``H x W x 3`` float32 RGB array in
  ``[0, 1]`` and ``rng`` is a :class:`numpy.random.Generator`. It returns an array of the
  **same shape**, float32 in ``[0, 1]``, **pixel-aligned** with the input (no crop, shift,
  resize, flip or warp: a point at ``(x, y)`` in the input is at ``(x, y)`` in the output).
  All randomness must come from ``rng``, so the same generator state gives the same output.

Subclassing :class:`Stylizer` is optional. A plugin is a class in a Python file, named as
``path/to/module.py:ClassName``; it is built with keyword options, and receives
``style_bank=`` (a :class:`StyleBank`) when its constructor accepts that keyword::

    # my_photowct.py
    import numpy as np
    from selfdesc.stylize import Stylizer, StyleBank

    class PhotoWCT(Stylizer):
        name = "photowct"

        def __init__(self, style_bank: StyleBank, weights: str = "photo_wct.pth"):
            self.style_bank = style_bank
            self.model = ...  # load the network once here

        def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            style = self.style_bank.draw(rng)  # H' x W' x 3 float32 in [0, 1]
            out = ...  # run at any internal size, then resize back to image.shape[:2]
            return np.clip(out, 0, 1).astype(np.float32)

    stylizer = load_stylizer("my_photowct.py:PhotoWCT", style_bank="styles/")
    # command line: selfdesc stylize --images IMG --out OUT --styles my_photowct.py:PhotoWCT --style-bank styles/

:func:`load_stylizer` raises :class:`~selfdesc.errors.ConfigError` (one line) for a missing
file, an import error, a missing class, bad options, or an object without ``name`` or with a
``__call__`` that does not take ``(image, rng)``. Outputs are checked where they are used
(:func:`apply_stylizer`): another shape or NaN is a ``ConfigError``; values are clipped to
``[0, 1]`` and cast to float32.

Built-ins (:func:`available_stylizers`; aliases in brackets)
------------------------------------------------------------
* ``lab_transfer`` [``lab``]: Reinhard mean/std colour transfer in CIE LAB to a random style image.
* ``histogram_match`` [``hist``]: per-channel CDF matching to a random style image (LAB by default, or RGB).
* ``day_to_night`` [``night``], ``dusk``, ``overcast``, ``fog``, ``low_light``: parametric
  renderings, strengths drawn per call from ranges documented in :mod:`selfdesc.stylize.classical`.
* ``mixed`` [``random``]: one of the above per call (weights configurable).

The first two need a style bank (a folder of style images or a list of arrays).

Training data
-------------
:func:`stylize_folder` writes ``N`` copies per image to a mirror tree
(``<out>/<relative folder>/<stem>_stKK.jpg``), resumably; :func:`find_stylized_copies` lists
the copies of one image. :class:`OnlineStylizer` restyles crops on the fly with probability ``p``.
"""
from __future__ import annotations

import importlib
from typing import Any

# Public names -> defining module; imported on first access so that ``selfdesc.stylize.base``
# (used to build the CLI) does not pull in OpenCV.
_EXPORTS = {
    "selfdesc.stylize.base": (
        "ALIASES", "REGISTRY", "Stylizer", "apply_stylizer", "available_stylizers", "check_interface", "load_stylizer",
    ),
    "selfdesc.stylize.classical": (
        "DayToNight", "Dusk", "Fog", "HistogramMatch", "LabTransfer", "LowLight", "MixedStylizer", "Overcast",
    ),
    "selfdesc.stylize.offline": (
        "OnlineStylizer", "StylizeSummary", "find_stylized_copies", "stylize_folder", "stylized_copy_path",
    ),
    "selfdesc.stylize.style_bank": ("StyleBank",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'selfdesc.stylize' has no attribute '{name}'")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
