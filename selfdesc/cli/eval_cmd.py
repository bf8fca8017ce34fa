"""``selfdesc eval homography|superpoint``: benchmark features on homography datasets.

Outputs in ``--out DIR``:
  results.json    {feature: {split: {mma, homography_accuracy, num_features, num_matches, num_pairs}}}
  run.json        dataset, settings, extraction timing, versions
  pairs.json      per feature, per pair: #matches, MMA@1/3/5, homography corner error
  results.md      Markdown table (labelled synthetic when it is)
  mma.png         MMA vs threshold, with published reference curves when available
  caches/<feature>.npy   our runs in the D2-Net cache format (HPatches-layout datasets)
"""
from __future__ import annotations

import argparse
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from selfdesc.cli.common import add_feature_options, check_device, parse_features


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="run benchmarks")
    esub = p.add_subparsers(dest="eval_command", metavar="<benchmark>")
    esub.required = True

    h = esub.add_parser("homography", help="MMA (D2-Net protocol) and homography accuracy on homography pairs")
    _dataset_options(h)
    add_feature_options(h)
    h.add_argument("--resize-max", type=int, default=None, help="resize images so the longest side is at most N (default: full resolution)")
    h.add_argument("--corners", choices=["reference", "target"], default="reference", help="image whose corners measure homography error")
    h.add_argument("--no-plot", action="store_true", help="skip the MMA plot")
    h.add_argument("--references", default=None, help="folder of published D2-Net caches to draw (default: ../shared/data/reference-results/hpatches-d2net-caches)")
    h.set_defaults(handler=run_homography)

    s = esub.add_parser("superpoint", help="SuperPoint protocol: homography Cor-1/3/5, matching score, repeatability")
    _dataset_options(s)
    add_feature_options(s)
    s.add_argument("--presets", default="240x320,480x640", help="comma-separated presets (240x320: 300 points, 480x640: 1000 points)")
    s.set_defaults(handler=run_superpoint)


def _dataset_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=["hpatches", "pairs", "synth"])
    p.add_argument("--root", required=True, help="dataset folder (hpatches, synth) or pair-list file (pairs)")
    p.add_argument("--split-list", default="d2net", choices=["d2net", "all"], help="HPatches sequences: the 108 of D2-Net or all")
    p.add_argument("--seed", type=int, default=0, help="seed when --dataset synth builds from base images")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _load_dataset(args: argparse.Namespace):
    from selfdesc.datasets.registry import load_homography_dataset

    out = Path(args.out)
    return load_homography_dataset(
        args.dataset, args.root, split_list=args.split_list, synth_build_dir=out / "synth-benchmark", seed=args.seed
    )


def _environment() -> dict[str, Any]:
    import cv2
    import kornia
    import torch

    from selfdesc import __version__

    env = {
        "selfdesc": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "kornia": kornia.__version__,
        "opencv": cv2.__version__,
        "machine": platform.machine(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["selfdesc", *sys.argv[1:]]),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def run_homography(args: argparse.Namespace) -> int:
    from selfdesc.eval.d2net_cache import write_d2net_cache
    from selfdesc.eval.report import markdown_table, plot_mma, reference_caches, write_results_json
    from selfdesc.eval.runner import HomographyBenchmarkConfig, run_homography_benchmark
    from selfdesc.io.atomic import write_text_atomic

    features = parse_features(args.features)
    device = check_device(args.device)
    dataset = _load_dataset(args)
    out = Path(args.out)
    config = HomographyBenchmarkConfig(
        max_keypoints=args.max_keypoints,
        resize_max=args.resize_max,
        device=device,
        corners=args.corners,
        weights_dir=args.weights_dir,
    )
    print(f"evaluating {', '.join(features)} on {dataset.label}")
    run = run_homography_benchmark(features, dataset.pairs, config, progress=not args.quiet)
    results, timings = run.results, run.timings

    write_results_json(out / "results.json", results)
    run_info = {
        "dataset": {"kind": dataset.kind, "root": str(dataset.root), "synthetic": dataset.synthetic, "num_pairs": len(dataset.pairs)},
        "protocol": "D2-Net MMA (1..10 px) + homography accuracy (1/3/5/10 px)",
        "config": config.as_dict(),
        "timing": {name: t.as_dict() for name, t in timings.items()},
        "environment": _environment(),
    }
    write_results_json(out / "run.json", run_info)
    write_results_json(out / "pairs.json", run.per_pair)
    label = ("synthetic — " if dataset.synthetic else "") + f"{dataset.kind}: {dataset.root.name}, {len(dataset.pairs)} pairs"
    with_timing = {name: {**res, "timing": timings[name].as_dict()} for name, res in results.items()}
    table = markdown_table(with_timing, label=label)
    write_text_atomic(out / "results.md", table)
    if all(p.split in ("i", "v") for p in dataset.pairs):
        for name, acc in run.accumulators.items():
            write_d2net_cache(out / "caches" / f"{name}.npy", acc)
    if not args.no_plot:
        refs = reference_caches(args.references)
        title = f"MMA — {label}" + (" (reference curves: published, full HPatches)" if refs else "")
        plot_mma(results, out / "mma.png", references=refs, title=title)
    print(table)
    print(f"wrote {out / 'results.json'}")
    return 0


def run_superpoint(args: argparse.Namespace) -> int:
    from selfdesc.eval.report import write_results_json
    from selfdesc.eval.superpoint_protocol import (
        SuperPointProtocolConfig,
        evaluate_superpoint_protocol,
        superpoint_markdown,
    )
    from selfdesc.features import load_extractor
    from selfdesc.io.atomic import write_text_atomic

    features = parse_features(args.features)
    device = check_device(args.device)
    dataset = _load_dataset(args)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    configs = {p: SuperPointProtocolConfig.preset(p) for p in presets}
    out = Path(args.out)
    print(f"SuperPoint protocol ({', '.join(presets)}) for {', '.join(features)} on {dataset.label}")
    results: dict[str, dict[str, Any]] = {}
    for name in features:
        extractor = load_extractor(name, weights_dir=args.weights_dir, device=device, max_keypoints=args.max_keypoints)
        results[name] = {}
        for preset, cfg in configs.items():
            res = evaluate_superpoint_protocol(extractor, dataset.pairs, cfg, progress=not args.quiet)
            res.pop("pairs", None)
            results[name][preset] = res
    write_results_json(out / "superpoint.json", {"dataset": {"kind": dataset.kind, "root": str(dataset.root), "synthetic": dataset.synthetic}, "results": results})
    table = superpoint_markdown(results)
    if dataset.synthetic:
        table = "*Synthetic HPatches-style benchmark.*\n\n" + table
    write_text_atomic(out / "superpoint.md", table)
    print(table)
    return 0


__all__ = ["register"]
