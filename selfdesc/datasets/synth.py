"""A seeded synthetic HPatches-style benchmark built from a folder of base images.

For every base image two sequences are written in the HPatches layout (``1.ppm .. N.ppm``,
``H_1_2 .. H_1_N``), so :func:`selfdesc.datasets.hpatches.load_hpatches` reads them unchanged:

* ``v_<stem>`` (viewpoint): image 1 is the base image with its longest side brought down to
  ``max_side`` (never upscaled); image ``k`` is image 1 warped by a progressive random homography
  (:func:`selfdesc.geometry.random_homography.sample_homography_sequence`: tilt up to 55 degrees,
  in-plane rotation up to 40 degrees, zoom 1/1.6 to 1.6, shift up to 10 %, growing linearly with
  ``k``; at least 35 % of image 1 stays in view and at least 40 % of image ``k`` is covered).
  Uncovered pixels are black. ``H_1_k`` is exactly the warp applied (pixel-centre convention).
* ``i_<stem>`` (illumination): identity ``H_1_k``; image ``k`` gets photometric changes of
  strength ``(k - 1) / (N - 1)`` (:mod:`selfdesc.datasets.photometric`: shading gradient, colour
  cast, exposure, blur, sensor noise, gamma, JPEG round trip).

Every image of a sequence has the size of its image 1. A ``SYNTHETIC.json`` manifest records the
seed, parameters, sources and generator version. The same seed gives byte-identical files; each
base image draws from its own stream (seed, file name), so ``num_images`` does not change the
sequences of the images it keeps.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import warnings
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

import selfdesc
from selfdesc.datasets.photometric import (
    PhotometricRanges,
    apply_photometric,
    sample_photometric_params,
    to_uint8,
)
from selfdesc.errors import ConfigError, DatasetError, ImageError
from selfdesc.geometry.random_homography import HomographyRanges, sample_homography_sequence
from selfdesc.io.image import list_images, load_image

MANIFEST = "SYNTHETIC.json"
GENERATOR_VERSION = 1
SUPERSAMPLE = 2


def warp_image(image: np.ndarray, H: np.ndarray, size: tuple[int, int], supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Render ``image`` seen through ``H`` (source pixels to target pixels, pixel centres).

    The target is rendered ``supersample`` times larger with bilinear interpolation and
    box-averaged back (anti-aliasing for zoom-out and tilt), so that
    ``out(x) ~ image(H^-1 x)`` exactly in the pixel-centre convention. Uncovered pixels are 0.

    Args:
        image: ``h x w [x C]`` float32.
        H: ``3 x 3``.
        size: ``(W, H)`` of the target.
        supersample: integer rendering factor (1: plain ``cv2.warpPerspective``).
    """
    s = int(supersample)
    # pixel-centre convention: a target pixel x is at s * x + (s - 1) / 2 in the s-times grid
    up = np.array([[s, 0.0, (s - 1) / 2], [0.0, s, (s - 1) / 2], [0.0, 0.0, 1.0]])
    big = cv2.warpPerspective(
        image,
        up @ np.asarray(H, np.float64),
        (size[0] * s, size[1] * s),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return big if s == 1 else cv2.resize(big, size, interpolation=cv2.INTER_AREA)


def is_synthetic(root: str | Path) -> bool:
    """Whether ``root`` is a benchmark written by :func:`build_synthetic` (has a valid manifest).

    Raises:
        DatasetError: the manifest exists but is not valid JSON.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({type(exc).__name__})") from None
    return isinstance(manifest, dict) and manifest.get("synthetic") is True


def _sequence_stem(path: Path, base_dir: Path) -> str:
    rel = path.relative_to(base_dir).with_suffix("")
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(rel.parts))


def _rng(seed: int, stem: str, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(stem.encode()), stream]))


def _write_image(path: Path, image: np.ndarray) -> None:
    Image.fromarray(to_uint8(image)).save(path, format="PPM")


def _write_homography(path: Path, H: np.ndarray) -> None:
    np.savetxt(path, H, fmt="%.17g")  # round-trips float64 exactly


def _write_sequence(folder: Path, images: list[np.ndarray], homographies: list[np.ndarray]) -> None:
    folder.mkdir()
    for k, image in enumerate(images, start=1):
        _write_image(folder / f"{k}.ppm", image)
    for k, H in enumerate(homographies, start=2):
        _write_homography(folder / f"H_1_{k}", H)


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise DatasetError(f"{out_dir}: exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise DatasetError(f"{out_dir}: exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    if not (out_dir / MANIFEST).is_file():
        raise DatasetError(f"{out_dir}: not a synthetic benchmark (no {MANIFEST}); refusing to replace it")


def build_synthetic(
    base_dir: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    num_images: int | None = None,
    per_sequence: int = 6,
    max_side: int = 800,
    overwrite: bool = False,
    homography_ranges: HomographyRanges = HomographyRanges(),
    photometric_ranges: PhotometricRanges = PhotometricRanges(),
) -> Path:
    """Build the synthetic benchmark (layout and contents in the module docstring).

    Args:
        base_dir: folder of base images (searched recursively, sorted).
        out_dir: output folder; built beside it in a temporary folder, then renamed into place.
        seed: non-negative integer; the same seed gives byte-identical files.
        num_images: use only the first ``num_images`` base files (sorted).
        per_sequence: images per sequence (HPatches: 6).
        max_side: longest side of image 1 (smaller base images are kept as they are).
        overwrite: replace an existing non-empty ``out_dir`` (only one written by this function).
        homography_ranges, photometric_ranges: strength of the ``v_`` and ``i_`` changes.

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: bad numeric arguments.
        DatasetError: missing or image-less ``base_dir``, no usable base image, or an existing
            non-empty ``out_dir`` without ``overwrite``.
    """
    if seed < 0 or per_sequence < 2 or max_side < 16 or (num_images is not None and num_images < 1):
        raise ConfigError(
            f"bad synthetic benchmark settings (seed={seed} must be >= 0, per_sequence={per_sequence} >= 2, "
            f"max_side={max_side} >= 16, num_images={num_images} >= 1)"
        )
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    files = list_images(base_dir)
    if num_images is not None:
        files = files[:num_images]
    _check_out_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        staged = tmp / "benchmark"
        staged.mkdir()
        sources, skipped = _build_into(staged, base_dir, files, seed, per_sequence, max_side, homography_ranges, photometric_ranges)
        if not sources:
            raise DatasetError(f"{base_dir}: no usable base image ({len(skipped)} unreadable)")
        manifest = {
            "synthetic": True,
            "generator": "selfdesc.datasets.synth",
            "generator_version": GENERATOR_VERSION,
            "selfdesc_version": selfdesc.__version__,
            "seed": seed,
            "base_dir": str(base_dir.resolve()),
            "num_images": num_images,
            "per_sequence": per_sequence,
            "max_side": max_side,
            "supersample": SUPERSAMPLE,
            "border": "black",
            "homography_ranges": asdict(homography_ranges),
            "photometric_ranges": asdict(photometric_ranges),
            "num_sequences": 2 * len(sources),
            "num_pairs": 2 * len(sources) * (per_sequence - 1),
            "sources": sources,
            "skipped": skipped,
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)  # empty, or a previous benchmark with overwrite=True (checked above)
        staged.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def ensure_synthetic(base_dir: str | Path, out_dir: str | Path, seed: int = 0, verbose: bool = False, **options: Any) -> Path:
    """``out_dir``, holding the synthetic benchmark of ``base_dir``: built there first (with
    ``seed`` and the ``options`` of :func:`build_synthetic`) unless it already holds one.

    Raises:
        DatasetError: ``out_dir`` holds a benchmark built with another seed (or the errors of
            :func:`build_synthetic`).
    """
    out_dir = Path(out_dir)
    if is_synthetic(out_dir):
        built = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")).get("seed")
        if built != seed:
            raise DatasetError(f"{out_dir}: already holds a synthetic benchmark built with seed {built}, not {seed}")
        if verbose:
            print(f"using the synthetic benchmark already built in {out_dir}")
        return out_dir
    if verbose:
        print(f"{base_dir} holds base images: building the synthetic benchmark (seed {seed}) into {out_dir}")
    return build_synthetic(base_dir, out_dir, seed=seed, **options)


def _build_into(
    staged: Path,
    base_dir: Path,
    files: list[Path],
    seed: int,
    per_sequence: int,
    max_side: int,
    homography_ranges: HomographyRanges,
    photometric_ranges: PhotometricRanges,
) -> tuple[list[dict], list[dict]]:
    """Write the sequences of ``files`` into ``staged``; returns the manifest's sources and skips."""
    sources: list[dict] = []
    skipped: list[dict] = []
    steps = [(k - 1) / (per_sequence - 1) for k in range(2, per_sequence + 1)]
    for path in tqdm(files, desc="synthetic benchmark", unit="image"):
        rel = path.relative_to(base_dir).as_posix()
        stem = _sequence_stem(path, base_dir)
        if (staged / f"v_{stem}").exists():
            warnings.warn(f"{path}: skipped (sequence name v_{stem} already used by another base image)")
            skipped.append({"file": rel, "reason": f"duplicate sequence name {stem}"})
            continue
        try:
            loaded = load_image(path, resize_max=max_side)
        except ImageError as exc:
            warnings.warn(f"skipped base image: {exc}")
            skipped.append({"file": rel, "reason": str(exc)})
            continue
        image1 = to_uint8(loaded.image).astype(np.float32) / 255.0  # exactly what 1.ppm holds
        w, h = loaded.size

        rng = _rng(seed, stem, 0)
        Hs = sample_homography_sequence(rng, w, h, count=per_sequence, ranges=homography_ranges)
        _write_sequence(staged / f"v_{stem}", [image1] + [warp_image(image1, H, (w, h)) for H in Hs], Hs)

        rng = _rng(seed, stem, 1)
        lit = [apply_photometric(image1, sample_photometric_params(rng, t, photometric_ranges), rng) for t in steps]
        _write_sequence(staged / f"i_{stem}", [image1] + lit, [np.eye(3)] * len(steps))

        sources.append(
            {
                "file": rel,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "size": [w, h],
                "sequences": [f"v_{stem}", f"i_{stem}"],
            }
        )
    return sources, skipped
