"""The demo: a synthetic homography benchmark from scikit-image's bundled photos.

Runs anywhere (no ../shared needed): copies a few sample images, builds the seeded
synthetic benchmark (viewpoint and illumination sequences), evaluates features side by
side, prints a table and writes ``results.json``, ``results.md``, ``mma.png`` and a match
visualisation ``matches.png``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from selfdesc.errors import ConfigError, WeightsError

#: photos shipped inside scikit-image's wheel (skimage/data), textured enough for matching
SAMPLE_IMAGES = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "brick.png")
#: longest side of the demo's images (72 images): the single-pass default (HNDesc-lite) takes well under
#: a second per image at this size on a 2-core CPU, so the whole demo stays under 3 minutes after set-up
DEMO_MAX_SIDE = 480


def sample_image_dir() -> Path:
    """skimage's bundled data folder."""
    try:
        import skimage
    except ImportError:
        raise ConfigError("the demo needs scikit-image (pip install 'selfdesc[demo]')") from None
    return Path(skimage.__file__).resolve().parent / "data"


def _default_features(weights_dir: str | None) -> list[str]:
    from selfdesc.features import extractor_class
    from selfdesc.features.lite import DEFAULT_MODEL
    from selfdesc.weights import default_weights_dir, package_model

    names = (["default"] if package_model(DEFAULT_MODEL).is_file() else []) + ["sift", "rootsift", "orb"]
    if weights_dir is not None or default_weights_dir() is not None:
        for peer in ("aliked", "xfeat"):  # the peers that run in seconds on a CPU
            try:
                cls = extractor_class(peer)
                cls({"weights_dir": weights_dir})
            except WeightsError:
                continue
            names.append(peer)
    return names


def run_demo(out: str | Path, features: Sequence[str] | None = None, weights_dir: str | None = None, device: str = "cpu") -> dict:
    """Run the demo into ``out``; returns the results dict.

    Default features: our default model (shipped in the package), SIFT, RootSIFT, ORB, plus
    ALIKED and XFeat when their weight files are found (DISK and R2D2 take seconds per image on
    a CPU; ask for them with ``features``). The match picture shows our default model.
    """
    from selfdesc.datasets.hpatches import load_hpatches
    from selfdesc.datasets.synth import ensure_synthetic
    from selfdesc.device import check_device
    from selfdesc.eval.runner import HomographyBenchmarkConfig, run_homography_benchmark
    from selfdesc.eval.writers import write_homography_report

    out = Path(out)
    device = check_device(device)
    names = list(features) if features else _default_features(weights_dir)
    base = out / "base-images"
    base.mkdir(parents=True, exist_ok=True)
    src = sample_image_dir()
    for name in SAMPLE_IMAGES:
        if (src / name).is_file() and not (base / name).exists():
            shutil.copyfile(src / name, base / name)
    pairs = load_hpatches(ensure_synthetic(base, out / "synth-benchmark", seed=0, max_side=DEMO_MAX_SIDE), split_list="all")
    print(f"demo: {len(pairs)} synthetic pairs from {len(SAMPLE_IMAGES)} scikit-image photos; features: {', '.join(names)}")
    config = HomographyBenchmarkConfig(device=device, weights_dir=weights_dir, max_keypoints=2048)
    run = run_homography_benchmark(names, pairs, config)
    label = f"synthetic — {len(pairs)} pairs from scikit-image sample photos, top-2048 keypoints"
    table = write_homography_report(out, run, label, "MMA — demo (synthetic)")
    _draw_example(names, pairs, config, out / "matches.png", run.results)
    print(table)
    print(f"wrote {out / 'results.md'}, {out / 'mma.png'} and {out / 'matches.png'}")
    return run.results


def _draw_example(names, pairs, config, path: Path, results: dict) -> None:
    """Draw a viewpoint pair for our default model (or, without it, the best feature by MMA@3)."""
    from selfdesc.eval.homography import estimate_homography
    from selfdesc.eval.mma import match_errors
    from selfdesc.io.image import load_image
    from selfdesc.matching import match_mnn
    from selfdesc.viz.matches import draw_matches, save_png

    best = "default" if "default" in names else max(names, key=lambda n: results[n]["overall"]["mma"]["3"])
    view = [p for p in pairs if p.split == "v"] or list(pairs)
    pair = view[min(2, len(view) - 1)]
    ext = config.load(best)
    im0, im1 = load_image(pair.image0), load_image(pair.image1)
    f0, f1 = ext.extract(im0), ext.extract(im1)
    kp0, kp1 = f0["keypoints"].numpy(), f1["keypoints"].numpy()
    matches, _ = match_mnn(f0["descriptors"], f1["descriptors"])
    inliers = match_errors(kp0, kp1, matches, pair.H) <= 3.0
    H_est = estimate_homography(kp0, kp1, matches)
    title = f"{best}: {int(inliers.sum())}/{len(matches)} correct (<=3 px), {pair.name}" + ("" if H_est is not None else ", no homography")
    save_png(draw_matches(im0.image, im1.image, kp0, kp1, matches, inliers, title=title), path)
