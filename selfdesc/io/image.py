"""The one image loader used by every selfdesc entry point.

Coordinate convention (used throughout selfdesc): keypoints are ``(x, y)`` in pixels of
the **original** image, x to the right, y down, with integer values at pixel *centres*
(the centre of the top-left pixel is ``(0, 0)``; OpenCV / hloc convention). When an
image is resized by ``(sx, sy) = (W_orig / W_new, H_orig / H_new)``, a point ``p`` of the
resized image maps back to ``(p + 0.5) * s - 0.5`` (see :func:`rescale_keypoints`).

Images are returned as float32 arrays in ``[0, 1]``: ``H x W x 3`` RGB, or ``H x W`` when
``gray=True``. EXIF orientation is applied; gray, gray+alpha, RGBA (alpha dropped),
palette, CMYK, 16-bit and 32-bit images are converted. Any file that cannot be read
as an image raises :class:`~selfdesc.errors.ImageError` with a one-line message.

Memory: an image of more than :data:`MAX_PIXELS_FULL_SIZE` pixels is never decoded at full
size. Without a resize it is refused (one line telling the user to pass ``--resize-max``); with
one it is decoded at a reduced scale (JPEG DCT scaling, else integer box reduction) before the
final resize, so a 12000 x 9000 photo costs tens of megabytes, not gigabytes.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from selfdesc.errors import DatasetError, ImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")

# Decompression bombs are errors, not warnings, and truncated files are never padded.
Image.MAX_IMAGE_PIXELS = 30000 * 30000

#: larger images are only read with a resize (40 MP: 480 MB as float RGB, before any network)
MAX_PIXELS_FULL_SIZE = 40_000_000

_SWAPPED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that exchange width and height


@dataclass
class LoadedImage:
    """An image ready for feature extraction.

    Attributes:
        image: float32 array in [0, 1], ``H x W x 3`` (RGB) or ``H x W`` (gray), after resize.
        original_size: ``(W, H)`` of the file after EXIF orientation, before resize.
        scale: ``(sx, sy) = (W_orig / W, H_orig / H)``; ``(1, 1)`` when not resized.
        path: the file it came from (``None`` for in-memory arrays).
    """

    image: np.ndarray
    original_size: tuple[int, int]
    scale: tuple[float, float]
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """``(W, H)`` of :attr:`image`."""
        return int(self.image.shape[1]), int(self.image.shape[0])


def _to_float_array(img: Image.Image, path: Path) -> np.ndarray:
    """Convert any PIL mode to float32 RGB in [0, 1]."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16).astype(np.float32) / 65535.0
    elif mode == "I":
        raw = np.asarray(img, dtype=np.int64)
        top = 65535.0 if raw.max(initial=0) <= 65535 else float(2**31 - 1)
        arr = np.clip(raw.astype(np.float32) / top, 0.0, 1.0)
    elif mode == "F":
        raw = np.asarray(img, dtype=np.float32)
        if not np.isfinite(raw).all():
            raise ImageError(f"{path}: floating-point image contains NaN or infinite values")
        lo, hi = float(raw.min(initial=0.0)), float(raw.max(initial=1.0))
        arr = raw if (lo >= 0.0 and hi <= 1.0) else (raw - lo) / max(hi - lo, 1e-12)
    else:
        if mode in ("P", "PA"):
            img = img.convert("RGBA")
        if img.mode in ("1", "L", "LA", "La"):
            img = img.convert("L")
        elif img.mode != "RGB":  # RGBA, RGBa, CMYK, YCbCr, LAB, HSV ...
            img = img.convert("RGB")
        arr = np.asarray(img, dtype=np.uint8).astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)


def _displayed_size(img: Image.Image) -> tuple[int, int]:
    """``(W, H)`` of an opened (not yet decoded) image after its EXIF orientation."""
    w, h = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored, as exif_transpose does
        orientation = 1
    return (h, w) if orientation in _SWAPPED_ORIENTATIONS else (w, h)


def _decode(img: Image.Image, path: Path, max_side: int | None) -> np.ndarray:
    """Decode ``img``; when it is over :data:`MAX_PIXELS_FULL_SIZE`, at a scale whose longest
    side stays at least ``max_side`` (an error when ``max_side`` is None)."""
    w, h = _displayed_size(img)
    if w * h > MAX_PIXELS_FULL_SIZE:
        if max_side is None:
            raise ImageError(
                f"{path}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is too large to read at full size "
                f"(limit {MAX_PIXELS_FULL_SIZE / 1e6:.0f} MP); pass --resize-max 1600 (or another longest side)"
            )
        factor = max_side / max(w, h)
        img.draft(None, (math.ceil(img.size[0] * factor), math.ceil(img.size[1] * factor)))  # JPEG only
    img.load()
    img = ImageOps.exif_transpose(img)
    if max_side is not None and img.size[0] * img.size[1] > MAX_PIXELS_FULL_SIZE:
        reduce = max(img.size) // max_side
        if reduce > 1:
            img = img.reduce(reduce)
    return _to_float_array(img, path)


def _read_file(path: Path, max_side: int | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The image as float RGB and its displayed ``(W, H)`` in the file (see :func:`_decode`)."""
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = _displayed_size(img)
                arr = _decode(img, path, max_side)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (format not recognised)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: image too large (more than {Image.MAX_IMAGE_PIXELS} pixels)") from None
    except MemoryError:
        raise ImageError(f"{path}: not enough memory to decode it; pass --resize-max 1600 (or another longest side)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageError(f"{path}: unreadable or truncated image ({msg})") from None
    if arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ImageError(f"{path}: image is too small ({arr.shape[1]}x{arr.shape[0]} pixels)")
    return arr, size


def target_size(w: int, h: int, resize_max: int | None = None, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """``(W, H)`` after :func:`resize_image` of a ``w x h`` image (``size`` wins; ``resize_max``
    bounds the longest side, never upscaling; neither: unchanged)."""
    if size is not None:
        return int(size[0]), int(size[1])
    if resize_max is not None and max(w, h) > resize_max:
        f = resize_max / max(w, h)
        return max(1, int(round(w * f))), max(1, int(round(h * f)))
    return w, h


def resize_image(
    image: np.ndarray,
    resize_max: int | None = None,
    size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, tuple[float, float]]:
    """Resize an ``H x W [x C]`` float image.

    Args:
        image: the array to resize.
        resize_max: if set, scale so that the longest side is at most this (aspect kept;
            never upscales).
        size: if set, force this ``(W, H)`` (aspect not kept); overrides ``resize_max``.

    Returns:
        The resized array and ``(sx, sy) = (W_in / W_out, H_in / H_out)``.
    """
    h, w = image.shape[:2]
    new_w, new_h = target_size(w, h, resize_max, size)
    if (new_w, new_h) == (w, h):
        return image, (1.0, 1.0)
    import cv2  # imported here so that loading images without resizing needs no OpenCV

    interp = cv2.INTER_AREA if new_w * new_h < w * h else cv2.INTER_LINEAR
    out = cv2.resize(image, (new_w, new_h), interpolation=interp)
    return out, (w / new_w, h / new_h)


def load_image(
    path: str | Path,
    gray: bool = False,
    resize_max: int | None = None,
    size: tuple[int, int] | None = None,
) -> LoadedImage:
    """Load an image file for feature extraction.

    Args:
        path: image file (JPEG, PNG, PPM, TIFF, ...).
        gray: return ``H x W`` luminance instead of ``H x W x 3`` RGB.
        resize_max: optional longest-side limit (aspect kept, never upscales).
        size: optional forced ``(W, H)``.

    Returns:
        A :class:`LoadedImage`; ``scale`` maps keypoints back to the original pixels.

    Raises:
        ImageError: missing, unreadable, truncated or non-image file, or an image over
            :data:`MAX_PIXELS_FULL_SIZE` pixels without ``resize_max``/``size`` (one-line message).
    """
    path = Path(path)
    arr, original_size = _read_file(path, max_side=max(size) if size is not None else resize_max)
    arr, _ = resize_image(arr, resize_max=resize_max, size=size)
    scale = (original_size[0] / arr.shape[1], original_size[1] / arr.shape[0])
    if gray:
        arr = rgb_to_gray(arr)
    return LoadedImage(image=arr, original_size=original_size, scale=scale, path=path)


def rgb_to_gray(image: np.ndarray) -> np.ndarray:
    """ITU-R 601 luminance of an ``H x W x 3`` float RGB image (``H x W`` passes through)."""
    if image.ndim == 2:
        return image
    return (image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114).astype(np.float32)


def rescale_keypoints(keypoints: np.ndarray, scale: Sequence[float]) -> np.ndarray:
    """Map ``N x 2`` pixel-centre keypoints of a resized image back to the original image."""
    s = np.asarray(scale, dtype=np.float64).reshape(1, 2)
    if np.all(s == 1.0):
        return keypoints
    return ((keypoints + 0.5) * s - 0.5).astype(keypoints.dtype)


def list_images(root: str | Path, recursive: bool = True) -> list[Path]:
    """Sorted image files under ``root`` (by suffix, case-insensitive).

    Raises:
        DatasetError: ``root`` is missing, not a folder, or holds no image.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    it: Iterable[Path] = root.rglob("*") if recursive else root.iterdir()
    files = sorted(p for p in it if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"{root}: no image files found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files
