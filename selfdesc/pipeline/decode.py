"""JPEG decoding on the GPU (optional): ``--decode auto|cpu|gpu``.

* ``cpu``: the decoding workers decode and resize every image (:func:`~selfdesc.io.image.load_image`).
* ``gpu``: the workers read the bytes of plain JPEG files (RGB or gray, baseline, no EXIF
  rotation, at most :data:`~selfdesc.io.image.MAX_PIXELS_FULL_SIZE` pixels, not a resize
  that shrinks the image while enlarging one side) and a batch of them is decoded on the device by
  ``torchvision.io.decode_jpeg(..., device="cuda")`` (nvJPEG); every other file (PNG,
  progressive or rotated JPEG, ...) is decoded by the workers as with ``cpu``. Needs
  torchvision with CUDA and ``--device cuda``; asking for it otherwise is a one-line error.
* ``auto``: ``gpu`` when both are there, else ``cpu``.
* The default is ``cpu``: in the one H200 measurement so far (RESULTS §19c) a run with GPU decoding
  crashed on a device-side assert, traced to nvJPEG writing into memory that queued kernels still
  read; the fix (a decoding stream of its own) has not been run on a GPU yet, so GPU decoding stays
  opt-in until it has.

Resizing on the device has OpenCV's semantics of the CPU path (:func:`resize_like_cpu`):
area averaging when the image shrinks, bilinear with half-pixel centres when it grows, on
float32 values in [0, 1]; it matches ``cv2.resize`` to 1e-5 on the same decoded pixels
(tested on the CPU). What differs is the JPEG decoder: nvJPEG and libjpeg (Pillow) may
upsample chroma and round the inverse DCT differently, by a few grey levels at most; the
difference of the two paths on photos is measured on the GPU by ``benchmarks/round7_speed.sh``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from selfdesc.errors import ConfigError
from selfdesc.io.image import MAX_PIXELS_FULL_SIZE, target_size

DECODES = ("auto", "cpu", "gpu")


def gpu_decoder_missing() -> str | None:
    """Why JPEG decoding on the GPU is not available here (``None`` when it is)."""
    try:
        from torchvision.io import decode_jpeg  # noqa: F401
    except ImportError:
        return "torchvision is not installed"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    return None


def resolve_decode(decode: str, device: torch.device | str) -> str:
    """``auto`` / ``cpu`` / ``gpu`` on ``device`` -> ``cpu`` or ``gpu``.

    Raises:
        ConfigError: an unknown value, or ``gpu`` where it cannot run.
    """
    if decode not in DECODES:
        raise ConfigError(f"decode must be one of {', '.join(DECODES)}, got '{decode}'")
    if decode == "cpu":
        return "cpu"
    on_cuda = torch.device(device).type == "cuda"
    missing = gpu_decoder_missing() if on_cuda else "the device is not CUDA"
    if missing is None:
        return "gpu"
    if decode == "gpu":
        raise ConfigError(f"--decode gpu needs torchvision with CUDA and --device cuda: {missing} (use --decode cpu)")
    return "cpu"


def gpu_jpeg_size(path: Path, resize_max: int | None, size: tuple[int, int] | None) -> tuple[int, int] | None:
    """``(W, H)`` of ``path`` when the GPU path can decode it exactly as the CPU path would, else ``None``."""
    try:
        with Image.open(path) as img:
            if img.format != "JPEG" or img.mode not in ("RGB", "L") or img.info.get("progressive") or img.info.get("progression"):
                return None
            if img.getexif().get(0x0112, 1) != 1:
                return None
            w, h = img.size
    except Exception:  # noqa: BLE001 - the CPU path reports unreadable files
        return None
    new_w, new_h = target_size(w, h, resize_max, size)
    # OpenCV's area resize (the image shrinks) with one side growing is a special case left to the CPU
    area_growing = new_w * new_h < w * h and (new_w > w or new_h > h)
    return None if w * h > MAX_PIXELS_FULL_SIZE or area_growing else (w, h)


@functools.lru_cache(maxsize=64)
def _area_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """``(n_out, n_in)`` weights of area averaging: output pixel ``j`` covers ``[j s, (j + 1) s)``, ``s = n_in / n_out``."""
    s = n_in / n_out
    lo = torch.arange(n_out, device=device, dtype=torch.float64)[:, None] * s
    src = torch.arange(n_in, device=device, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(lo + s, src + 1) - torch.maximum(lo, src)).clamp(min=0)
    return (overlap / s).float()


@functools.lru_cache(maxsize=64)
def _linear_matrix(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """``(n_out, n_in)`` weights of bilinear interpolation with half-pixel centres, borders clamped (OpenCV's)."""
    f = (torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    i0 = f.floor().clamp(0, n_in - 1)
    frac = torch.where((f < 0) | (i0 >= n_in - 1), torch.zeros_like(f), f - i0)
    i1 = (i0 + 1).clamp(max=n_in - 1)
    m = torch.zeros(n_out, n_in, device=device, dtype=torch.float64)
    rows = torch.arange(n_out, device=device)
    m[rows, i0.long()] += 1 - frac
    m[rows, i1.long()] += frac
    return m.float()


def resize_like_cpu(image: torch.Tensor, new_w: int, new_h: int) -> torch.Tensor:
    """``(C, H, W)`` float image -> ``(C, new_h, new_w)`` as :func:`~selfdesc.io.image.resize_image`
    resizes on the CPU: area averaging when the image shrinks (fewer pixels; each side must
    shrink or stay), bilinear with half-pixel centres otherwise (each side, as OpenCV does)."""
    _, h, w = image.shape
    if (new_w, new_h) == (w, h):
        return image
    matrix = _area_matrix if new_w * new_h < w * h else _linear_matrix
    rows = matrix(h, new_h, image.device)
    cols = matrix(w, new_w, image.device)
    return rows @ image @ cols.t()


@functools.lru_cache(maxsize=None)
def _decode_stream(device: torch.device) -> "torch.cuda.Stream":
    """The stream that is current while nvJPEG allocates its outputs on ``device`` (one per device)."""
    return torch.cuda.Stream(device)


def _nvjpeg(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """``torchvision.io.decode_jpeg`` of a batch of JPEG bytes: ``(3, H, W)`` uint8 images on
    ``device``, ``None`` for a file it could not decode."""
    from torchvision.io import ImageReadMode, decode_jpeg

    try:
        return list(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
    except Exception:  # noqa: BLE001 - one bad file fails the batch (or an old torchvision takes no list): one at a time
        decoded: list[torch.Tensor | None] = []
        for one in data:
            try:
                decoded.append(decode_jpeg(one, mode=ImageReadMode.RGB, device=device))
            except Exception:  # noqa: BLE001 - the caller decodes it on the CPU (and names it if that fails too)
                decoded.append(None)
        return decoded


def decode_jpegs(items: Sequence[dict[str, Any]], device: torch.device | str) -> list[torch.Tensor | None]:
    """Decode the ``"jpeg"`` bytes of ``items`` on ``device`` and resize each to its ``"shape"``
    ``(C, H, W)``: float RGB in [0, 1]; ``None`` for a file nvJPEG could not decode.

    On CUDA, torchvision's decoder allocates its outputs from the pool of the *current* stream
    but writes them from a stream of its own that does not wait for the current one. A block of
    the current stream's pool may be handed out while kernels queued on that stream (the
    previous batch's network and selection) still read it, and the decoder overwrites it under
    them: NaN scores, a device-side assert in ``topk``, an out-of-bounds index, far from the
    decoder (what round 7 on the H200 most likely hit). So the decoder runs with a stream of its own current (its pool holds
    only decoder outputs); the current stream waits for it, and each output is recorded as used
    by the current stream, so that its block is not handed to the decoder again before the
    kernels that read it have run.
    """
    device = torch.device(device)
    data = [item["jpeg"] for item in items]
    if device.type == "cuda":
        caller = torch.cuda.current_stream(device)
        with torch.cuda.stream(_decode_stream(device)):
            decoded = _nvjpeg(data, device)
        caller.wait_stream(_decode_stream(device))
        for image in decoded:
            if image is not None:
                image.record_stream(caller)
    else:
        decoded = _nvjpeg(data, device)
    out: list[torch.Tensor | None] = []
    for item, image in zip(items, decoded):
        _, h, w = item["shape"]
        out.append(None if image is None else resize_like_cpu(image.float() / 255.0, w, h))
    return out


__all__ = ["DECODES", "decode_jpegs", "gpu_decoder_missing", "gpu_jpeg_size", "resize_like_cpu", "resolve_decode"]
