"""Where the time of ``selfdesc extract`` goes, before and after batching, and how fast it runs.

    python benchmarks/extraction_profile.py --features xfeat,disk,default --images DIR \\
        --size 640x480 --size 1600x1200 [--num-images N] [--copies K] [--device cpu|cuda] \\
        [--batch-size B] [--workers W] [--max-keypoints N] [--decode cpu,gpu] [--no-before] \\
        [--no-profile] [--bf16] [--sweep 1,4,16] --work TMPDIR --out profile.json [--md profile.md]

For each feature and size (every image decoded and resized to exactly ``W x H``), pipeline runs
over the same images:

* ``before`` (unless ``--no-before``): one image per forward and writes in the main thread
  (``batch_size=1``, ``write_queue=0``, CPU decoding), with the same workers;
* ``after``: ``--batch-size`` images per forward, writer thread, CPU decoding in the workers;
* ``after_gpu_decode`` (with ``--decode ...,gpu``): the same with JPEGs decoded on the GPU;

each without profiling (images/s, steady state: first batch excluded, finishing the file
included) and, unless ``--no-profile``, once more with ``profile`` (the device synchronised
between steps: seconds per step — decode (worker CPU time), waiting for decoded images,
host-to-device (and GPU decoding), network, keypoint selection, device-to-host, writing (writer
thread), waiting for the writer, finishing the file). Then, on a batch of ``--batch-size``
random images already on the device: the network alone and the extractor's batch step (network
+ keypoint selection) in images/s. With GPU decoding, the difference between GPU- and
CPU-decoded pixels of the first 8 images. ``--bf16`` adds an ``after`` run under bfloat16
autocast and its agreement with fp32 on the first images (share of fp32 keypoints with a bf16
keypoint within 1 px, median descriptor cosine of those pairs). ``--sweep`` adds ``after``
images/s per batch size. ``--copies K`` lists the first ``--num-images`` images K times
(symlinks under ``--work``), for runs long enough to time a fast GPU. ``--features`` entries
are names or ``label=MODEL_FILE``; a feature that cannot be built is recorded with its error
and skipped.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from selfdesc.api import load
from selfdesc.device import sync_device
from selfdesc.errors import SelfdescError
from selfdesc.features.base import Extractor
from selfdesc.io.image import LoadedImage, load_image
from selfdesc.pipeline.decode import decode_jpegs, gpu_jpeg_size
from selfdesc.pipeline.extract import ExtractConfig, default_batch_size, default_num_workers, extract_features, image_names

STEPS = ("decode", "wait_decode", "h2d", "network", "select", "d2h", "write", "wait_write", "finalize", "total")


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def image_folder(src: Path, names: list[str], copies: int, work: Path) -> tuple[Path, list[str]]:
    """``(root, names)``: ``src`` itself, or ``copies`` symlinked copies of ``names`` under ``work``."""
    if copies <= 1:
        return src, names
    root = work / "images"
    shutil.rmtree(root, ignore_errors=True)
    out = []
    for k in range(copies):
        for name in names:
            link = root / f"c{k:03d}" / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((src / name).resolve())
            out.append(link.relative_to(root).as_posix())
    return root, out


def pipeline_run(extractor: Extractor, label: str, root: Path, names: list[str], out: Path, config: ExtractConfig) -> dict[str, Any]:
    """One extraction into a fresh ``out`` (deleted afterwards)."""
    out.unlink(missing_ok=True)
    s = extract_features(extractor, label, root, out, config, names=names)
    out.unlink(missing_ok=True)
    result: dict[str, Any] = {"images_per_second": s.images_per_second, "seconds": s.seconds, "num_images": s.num_extracted}
    if config.profile:
        result["stages"] = {k: s.stages.get(k, 0.0) for k in STEPS}
    return result


def device_rate(fn: Any, batch: torch.Tensor, min_seconds: float) -> float:
    """Images/s of ``fn(batch)`` on the device (two warm-up calls, then at least ``min_seconds``)."""
    with torch.no_grad():
        for _ in range(2):
            fn(batch)
        sync_device(batch.device)
        t0, n = time.perf_counter(), 0
        while n == 0 or time.perf_counter() - t0 < min_seconds:
            fn(batch)
            sync_device(batch.device)
            n += 1
    return n * batch.shape[0] / (time.perf_counter() - t0)


def bf16_agreement(extractor: Extractor, images: list[LoadedImage]) -> dict[str, float]:
    """fp32 against bf16 on ``images``: share of fp32 keypoints with a bf16 one within 1 px and
    the median cosine between their descriptors (pooled over the images)."""
    near, total, cosines = 0, 0, []
    ref, low = extractor.extract_batch(images), extractor.extract_batch(images, precision="bf16")
    for a, b in zip(ref, low):
        total += len(a["keypoints"])
        if len(a["keypoints"]) == 0 or len(b["keypoints"]) == 0:
            continue
        d, j = torch.cdist(a["keypoints"], b["keypoints"]).min(dim=1)
        ok = d <= 1.0
        near += int(ok.sum())
        cosines.append((a["descriptors"][ok] * b["descriptors"][j[ok]]).sum(1))
    cos = torch.cat(cosines) if cosines else torch.zeros(0)
    return {
        "keypoints_within_1px": near / max(1, total),
        "median_descriptor_cosine": float(cos.median()) if len(cos) else float("nan"),
        "num_images": len(images),
    }


def guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``, or ``{"error": one line}`` when it raises (e.g. out of device memory, or an
    operation without a bfloat16 kernel), so that one failing measurement keeps the others."""
    try:
        return fn(*args, **kwargs)
    except (RuntimeError, SelfdescError) as exc:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return {"error": (str(exc).splitlines() or [type(exc).__name__])[0][:300]}


#: the result key of the pipeline run with each ``--decode``
RUN_OF_DECODE = {"cpu": "after", "gpu": "after_gpu_decode"}


def decode_agreement(root: Path, names: list[str], size: tuple[int, int], device: torch.device) -> dict[str, Any]:
    """GPU-decoded (nvJPEG, resized on the device) against CPU-decoded images (Pillow + OpenCV),
    in grey levels (0-255) over the pixels of ``names``: mean and maximum absolute difference,
    and the share of values that differ by more than 2 levels (JPEGs the GPU path takes only)."""
    diffs = []
    for name in names:
        if gpu_jpeg_size(root / name, None, size) is None:
            continue
        w, h = size
        data = torch.frombuffer(bytearray((root / name).read_bytes()), dtype=torch.uint8)
        gpu = decode_jpegs([{"jpeg": data, "shape": (3, h, w)}], device)[0]
        if gpu is None:
            continue
        cpu = torch.from_numpy(load_image(root / name, size=size).image.transpose(2, 0, 1).copy()).to(device)
        diffs.append(((gpu - cpu).abs() * 255).flatten())
    if not diffs:
        return {"error": "no JPEG the GPU path takes"}
    d = torch.cat(diffs)
    return {"num_images": len(diffs), "mean_abs_levels": float(d.mean()), "max_abs_levels": float(d.max()), "share_over_2_levels": float((d > 2).float().mean())}


def _rate(result: Any) -> float | None:
    return result.get("images_per_second") if isinstance(result, dict) else result


def profile_feature(label: str, spec: str, root: Path, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    try:
        extractor = load(spec, device=str(device), weights_dir=args.weights_dir, max_keypoints=args.max_keypoints)
    except SelfdescError as exc:
        return {"error": str(exc)}
    batch = args.batch_size or default_batch_size(device)
    common = {"num_workers": args.workers, "checkpoint_every": 10**9, "progress": False}
    report: dict[str, Any] = {"batches": extractor.batches, "batch_size": batch}
    runs = [("before", {"batch_size": 1, "write_queue": 0, "decode": "cpu"})] if args.before else []
    runs += [(RUN_OF_DECODE[d], {"batch_size": batch, "decode": d}) for d in args.decode]
    for size in args.size:
        key, r = f"{size[0]}x{size[1]}", {}
        out = Path(args.work) / f"{label}_{key}.h5"
        for mode, cfg in runs:
            r[mode] = guarded(pipeline_run, extractor, label, root, names, out, ExtractConfig(size=size, **cfg, **common))
            if "error" not in r[mode] and args.profile:
                profiled = guarded(pipeline_run, extractor, label, root, names, out, ExtractConfig(size=size, profile=True, **cfg, **common))
                r[mode]["stages" if "stages" in profiled else "profile"] = profiled.get("stages", profiled)
        if "gpu" in args.decode:
            r["gpu_decode_vs_cpu"] = guarded(decode_agreement, root, names[:8], size, device)
        x = torch.rand(batch, 3, size[1], size[0], device=device)
        if type(extractor)._network is not Extractor._network:  # it has a dense network
            r["network_images_per_second"] = guarded(device_rate, extractor.network, x, args.min_seconds)
        r["batch_step_images_per_second"] = guarded(device_rate, extractor.forward_batch, x, args.min_seconds)
        if args.bf16:
            r["bf16"] = guarded(pipeline_run, extractor, label, root, names, out, ExtractConfig(size=size, batch_size=batch, precision="bf16", decode="cpu", **common))
            if "error" not in r["bf16"]:
                sample = [load_image(root / n, size=size) for n in names[: min(4, batch)]]
                r["bf16"]["agreement_with_fp32"] = guarded(bf16_agreement, extractor, sample)
                if "network_images_per_second" in r:
                    r["bf16"]["network_images_per_second"] = guarded(device_rate, lambda t: extractor.network(t, "bf16"), x, args.min_seconds)
        del x
        for b in args.sweep:
            r.setdefault("sweep", {})[str(b)] = _rate(guarded(pipeline_run, extractor, label, root, names, out, ExtractConfig(size=size, batch_size=b, decode="cpu", **common)))
        report[key] = r
        show = lambda v: f"{v:.2f}" if isinstance(v, float) else "—"  # noqa: E731
        rates = ", ".join(f"{mode} {show(_rate(r[mode]))}" for mode, _ in runs)
        print(f"{label:12s} {key:>9s} images/s: {rates}, network alone {show(_rate(r.get('network_images_per_second')))}", flush=True)
    del extractor
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return report


def markdown(report: dict[str, Any]) -> str:
    """Two tables: images/s (before, after with CPU / GPU decoding, network alone) and the seconds per step."""
    counts = report["num_images"]
    counts = ", ".join(f"{n} at {k}" for k, n in counts.items()) if isinstance(counts, dict) else str(counts)
    lines = [
        f"Device: {report['device_name']}; {counts} images per run, {report['workers']} decoding workers, "
        f"max keypoints {report['max_keypoints']}; torch {report['torch']}.",
        "",
        "| feature | size | batch | before images/s | after images/s | after, GPU decoding, images/s | network alone images/s | best after / network | batch step images/s | bf16 after images/s | bf16 kpts within 1 px | bf16 desc. cosine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v: "—" if not isinstance(v, (int, float)) else f"{v:.4g}"  # noqa: E731
    steps: list[str] = []
    sweeps: list[str] = []
    decodes: list[str] = []
    errors: list[str] = []
    for label, r in report["results"].items():
        if "error" in r:
            lines.append(f"| {label} | — | — | not run: {r['error']} | | | | | | | | |")
            continue
        for key, s in r.items():
            if not isinstance(s, dict):
                continue
            net, after, after_gpu = _rate(s.get("network_images_per_second")), _rate(s.get("after")), _rate(s.get("after_gpu_decode"))
            best = max((v for v in (after, after_gpu) if isinstance(v, (int, float))), default=None)
            bf = s.get("bf16") or {}
            agree = bf.get("agreement_with_fp32") or {}
            ratio = f"{100 * best / net:.0f} %" if net and best else "—"
            lines.append(
                f"| {label} | {key} | {r['batch_size']} | {fmt(_rate(s.get('before')))} | {fmt(after)} | {fmt(after_gpu)} | {fmt(net)} | {ratio} | "
                f"{fmt(_rate(s.get('batch_step_images_per_second')))} | {fmt(_rate(bf))} | "
                f"{fmt(agree.get('keypoints_within_1px'))} | {fmt(agree.get('median_descriptor_cosine'))} |"
            )
            for mode in ("before", "after", "after_gpu_decode"):
                if isinstance(s.get(mode), dict) and "stages" in s[mode]:
                    st, n = s[mode]["stages"], max(1, s[mode]["num_images"])
                    steps.append(f"| {label} | {key} | {mode} | " + " | ".join(f"{1000 * st[k] / n:.2f}" for k in STEPS) + " |")
            gd = s.get("gpu_decode_vs_cpu") or {}
            if "mean_abs_levels" in gd:
                decodes.append(
                    f"{label} {key}: {gd['num_images']} images, mean {gd['mean_abs_levels']:.3f}, max {gd['max_abs_levels']:.0f} grey levels, "
                    f"{100 * gd['share_over_2_levels']:.3f} % of values off by more than 2"
                )
            if "sweep" in s:
                sweeps.append(f"{label} {key}: " + ", ".join(f"batch {b}: {fmt(v)}" for b, v in s["sweep"].items()) + " images/s")
            errors += [f"{label} {key} {what}: {v['error']}" for what, v in s.items() if isinstance(v, dict) and "error" in v]
    lines += [
        "",
        "Milliseconds per image in each step (profiled runs: the device is synchronised between steps; decode is "
        "worker CPU time, spread over the workers; write is the writer thread's time):",
        "",
        "| feature | size | run | " + " | ".join(STEPS) + " |",
        "|---|---|---|" + "---|" * len(STEPS),
        *steps,
    ]
    if decodes:
        lines += ["", "GPU decoding (nvJPEG, resized on the device) against CPU decoding (Pillow + OpenCV), same images:", "", *[f"* {line}" for line in decodes]]
    if sweeps:
        lines += ["", "Batch-size sweep (after run, images/s):", "", *[f"* {line}" for line in sweeps]]
    if errors:
        lines += ["", "Measurements that failed:", "", *[f"* {line}" for line in errors]]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, help="comma-separated names or label=MODEL_FILE")
    ap.add_argument("--images", required=True)
    ap.add_argument("--size", required=True, action="append", type=_size, help="W x H, repeatable")
    ap.add_argument("--num-images", type=int, default=None, help="first N images of the folder (sorted)")
    ap.add_argument("--copies", type=int, default=1, help="list the images this many times (symlinks)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch-size", type=int, default=None, help="default: the pipeline's default on the device")
    ap.add_argument("--workers", type=int, default=None, help="default: the pipeline's default")
    ap.add_argument("--max-keypoints", type=int, default=None)
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--bf16", action="store_true", help="also run under bfloat16 autocast and compare with fp32")
    ap.add_argument("--decode", default="cpu", help="comma-separated decodings of the batched runs: cpu (key after), gpu (key after_gpu_decode)")
    ap.add_argument("--no-before", dest="before", action="store_false", help="skip the one-image-at-a-time run")
    ap.add_argument("--no-profile", dest="profile", action="store_false", help="skip the profiled runs (seconds per step)")
    ap.add_argument("--sweep", default="", help="comma-separated batch sizes for an images/s sweep of the after run")
    ap.add_argument("--min-seconds", type=float, default=2.0, help="timing length of the device-only rates")
    ap.add_argument("--work", required=True, help="folder for temporary files")
    ap.add_argument("--out", required=True, help="JSON report")
    ap.add_argument("--md", default=None, help="Markdown tables")
    args = ap.parse_args()
    args.sweep = [int(b) for b in args.sweep.split(",") if b.strip()]
    args.decode = [d.strip() for d in args.decode.split(",") if d.strip()]
    if not set(args.decode) <= set(RUN_OF_DECODE):
        ap.error(f"--decode: each of {', '.join(RUN_OF_DECODE)}")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    src = Path(args.images)
    root, names = image_folder(src, image_names(src)[: args.num_images], args.copies, work)
    on_cuda = args.device == "cuda"
    report: dict[str, Any] = {
        "device": args.device,
        "device_name": torch.cuda.get_device_name(0) if on_cuda else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} torch threads)",
        "images": args.images,
        "num_images": len(names),
        "workers": default_num_workers() if args.workers is None else args.workers,
        "max_keypoints": args.max_keypoints,
        "torch": torch.__version__,
        "results": {},
    }
    for entry in [f.strip() for f in args.features.split(",") if f.strip()]:
        label, _, spec = entry.partition("=")
        report["results"][label] = profile_feature(label, spec or label, root, names, args)
        if "error" in report["results"][label]:
            print(f"{label:12s} not run: {report['results'][label]['error']}", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")  # after each feature: a timeout keeps the rest
    if args.md:
        Path(args.md).write_text(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
