"""``selfdesc eval homography|superpoint``: benchmark features on homography datasets.

Outputs in ``--out DIR``:
  results.json    {feature: {split: {mma, homography_accuracy, num_features, num_matches, num_pairs}}}
  run.json        dataset, settings, extraction timing, versions
  pairs.json      per feature, per pair: #matches, MMA@1/3/5, homography corner error
  results.md      Markdown table (labelled synthetic when it is)
  mma.png         MMA vs threshold, with published reference curves when available
  caches/<feature>.npy   our runs in the D2-Net cache format (HPatches-layout datasets)

``selfdesc eval pose`` (relative-pose AUC) and ``selfdesc eval sfm`` (SfM vs GT cameras) write
their own results.json (see docs/sfm_pose.md).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from selfdesc.cli.common import add_command, add_feature_options, add_matcher_option, add_resize_option, check_output_dir, parse_features, parse_matchers
from selfdesc.device import check_device


#: the --dataset pairs format, shown in ``selfdesc eval homography --help``
PAIR_LIST_HELP = """pair lists (--dataset pairs --root LIST.txt): one pair per line,
  image0 image1 h00 h01 h02 h10 h11 h12 h20 h21 h22
where H (row-major) maps image-0 pixels to image-1 pixels; image paths are relative to the list's
folder (or absolute); '#' starts a comment."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "eval", "benchmark features: homography (MMA), superpoint, pose (AUC), sfm",
        "selfdesc eval homography --dataset hpatches --root ../shared/data/eval/hpatches-graf --features sift,default --out outputs/graf",
        __doc__,
    )
    esub = p.add_subparsers(dest="eval_command", metavar="<benchmark>")
    esub.required = True

    h = add_command(
        esub, "homography", "MMA (D2-Net protocol) and homography accuracy on homography pairs",
        "selfdesc eval homography --dataset hpatches --root ../shared/data/eval/hpatches-graf --features sift,default --out outputs/graf",
        PAIR_LIST_HELP,
    )
    _dataset_options(h)
    add_feature_options(h)
    add_matcher_option(h)
    add_resize_option(h, "resize images")
    h.add_argument("--corners", choices=["reference", "target"], default="reference", help="image whose corners measure homography error")
    h.add_argument("--no-plot", action="store_true", help="skip the MMA plot")
    h.add_argument("--references", default=None, help="folder of published D2-Net caches to draw (default: ../shared/data/reference-results/hpatches-d2net-caches)")
    h.set_defaults(handler=run_homography)

    s = add_command(
        esub, "superpoint", "SuperPoint protocol: homography Cor-1/3/5, matching score, repeatability",
        "selfdesc eval superpoint --dataset hpatches --root ../shared/data/eval/hpatches-graf --features sift --out outputs/sp",
    )
    _dataset_options(s)
    add_feature_options(s)
    s.add_argument("--presets", default="240x320,480x640", help="comma-separated presets (240x320: 300 points, 480x640: 1000 points)")
    s.set_defaults(handler=run_superpoint)
    _register_pose_and_sfm(esub)


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


def _matched_settings(args: argparse.Namespace, features: list[str]) -> dict[str, Any]:
    """The options of :class:`~selfdesc.eval.extraction.MatchedBenchmarkSettings` given on the command line."""
    matchers = parse_matchers(args.matcher, features)
    device = check_device(args.device)
    return {"max_keypoints": args.max_keypoints, "resize_max": args.resize_max, "device": device, "weights_dir": args.weights_dir, "matchers": matchers}


def run_homography(args: argparse.Namespace) -> int:
    from selfdesc.eval.report import reference_caches
    from selfdesc.eval.runner import HomographyBenchmarkConfig, run_homography_benchmark
    from selfdesc.eval.writers import write_homography_report

    features = parse_features(args.features)
    settings = _matched_settings(args, features)
    out = check_output_dir(args.out)
    dataset = _load_dataset(args)
    config = HomographyBenchmarkConfig(**settings, corners=args.corners)
    print(f"evaluating {', '.join(features)} on {dataset.label}")
    run = run_homography_benchmark(features, dataset.pairs, config, progress=not args.quiet)
    label = ("synthetic — " if dataset.synthetic else "") + f"{dataset.kind}: {dataset.root.name}, {len(dataset.pairs)} pairs"
    refs = [] if args.no_plot else reference_caches(args.references)
    title = None if args.no_plot else f"MMA — {label}" + (" (reference curves: published, full HPatches)" if refs else "")
    table = write_homography_report(
        out, run, label, title, settings=config, dataset=dataset.record, caches=all(p.split in ("i", "v") for p in dataset.pairs), references=refs
    )
    print(table)
    print(f"wrote {out / 'results.json'}")
    return 0


def run_superpoint(args: argparse.Namespace) -> int:
    from selfdesc.eval.extraction import ExtractorSettings
    from selfdesc.eval.superpoint_protocol import run_superpoint_benchmark
    from selfdesc.eval.writers import write_superpoint_report

    features = parse_features(args.features)
    device = check_device(args.device)
    out = check_output_dir(args.out)
    dataset = _load_dataset(args)
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    settings = ExtractorSettings(max_keypoints=args.max_keypoints, device=device, weights_dir=args.weights_dir)
    print(f"SuperPoint protocol ({', '.join(presets)}) for {', '.join(features)} on {dataset.label}")
    results = run_superpoint_benchmark(features, dataset.pairs, presets, settings, progress=not args.quiet)
    print(write_superpoint_report(out, results, dataset.record, dataset.synthetic))
    return 0


def _register_pose_and_sfm(esub: argparse._SubParsersAction) -> None:
    """``eval pose`` (relative-pose AUC) and ``eval sfm`` (SfM against GT cameras); see docs/sfm_pose.md."""
    p = add_command(
        esub, "pose", "relative-pose AUC@5/10/20 (essential matrix with GT intrinsics)",
        "selfdesc eval pose --format strecha --root ../shared/data/eval/strecha --features sift --out outputs/pose",
        "pair lists (--format pairs): the SuperGlue format, one pair per line:\n"
        "  name0 name1 rot0 rot1 K0 (9 values) K1 (9 values) T_0to1 (16 values, row-major)",
    )
    p.add_argument("--root", required=True, help="strecha: folder of scenes (each with images/ and cameras/); pairs: a SuperGlue pair list or its folder")
    p.add_argument("--format", required=True, choices=["strecha", "pairs"], help="dataset layout")
    add_feature_options(p)
    add_matcher_option(p)
    p.add_argument("--out", required=True, help="output folder (results.json, run.json, pairs.json)")
    add_resize_option(p)
    p.add_argument("--ransac-threshold", type=float, default=1.0, help="essential-matrix RANSAC threshold in pixels")
    p.add_argument("--min-overlap", type=float, default=None, help="strecha: co-visibility overlap threshold (default 0.5)")
    p.add_argument("--max-angle", type=float, default=None, help="strecha: largest angle between optical axes, degrees (default 60)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run_pose)

    f = add_command(
        esub, "sfm", "SfM on Strecha scenes: camera-centre error after similarity alignment to GT",
        "selfdesc eval sfm --root ../shared/data/eval/strecha --features sift --out outputs/sfm-eval",
    )
    f.add_argument("--root", required=True, help="folder of Strecha scenes (each with images/ and cameras/), or one scene")
    add_feature_options(f)
    f.add_argument("--out", required=True, help="output folder (results.json, <feature>/<scene>/...)")
    add_resize_option(f)
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.set_defaults(handler=run_sfm_eval)


def run_pose(args: argparse.Namespace) -> int:
    from selfdesc.datasets.registry import load_pose_dataset
    from selfdesc.eval.pose import PoseBenchmarkConfig, run_pose_benchmark
    from selfdesc.eval.writers import write_pose_report

    features = parse_features(args.features)
    settings = _matched_settings(args, features)
    check_output_dir(args.out)
    pairs, protocol = load_pose_dataset(args.format, args.root, args.min_overlap, args.max_angle)
    config = PoseBenchmarkConfig(**settings, ransac_threshold=args.ransac_threshold)
    out = Path(args.out)
    print(f"relative pose: {', '.join(features)} on {len(pairs)} pairs of {args.root}")
    results, timings, per_pair = run_pose_benchmark(features, pairs, config, progress=not args.quiet)
    dataset = {"format": args.format, "root": str(args.root), "num_pairs": len(pairs), **protocol}
    write_pose_report(out, results, timings, per_pair, config, dataset)
    for name, res in results.items():
        for scene, r in res.items():
            auc = r["auc"]
            print(f"{name:>10} {scene:>14}: AUC@5/10/20 {auc['5']:.3f} / {auc['10']:.3f} / {auc['20']:.3f}  ({r['num_pairs']} pairs)")
    print(f"wrote {out / 'results.json'}")
    return 0


def run_sfm_eval(args: argparse.Namespace) -> int:
    from selfdesc.datasets.strecha import load_scenes
    from selfdesc.eval.writers import write_sfm_report
    from selfdesc.sfm.pipeline import SfMConfig, evaluate_scenes

    features = parse_features(args.features)
    config = SfMConfig(
        max_keypoints=args.max_keypoints,
        resize_max=args.resize_max,
        device=check_device(args.device),
        weights_dir=args.weights_dir,
        camera_mode="single",
        progress=not args.quiet,
    )
    out = check_output_dir(args.out)
    results = evaluate_scenes(features, load_scenes(args.root), out, config)
    write_sfm_report(out, results, args.root, config)
    print(f"wrote {out / 'results.json'}")
    return 0


__all__ = ["register"]
