"""Does the batched pipeline give the features of one image at a time, on this device? (issue 13)

    python benchmarks/pipeline_check.py --images DIR [--features default,xfeat,disk,aliked]
        [--num-images 32] [--copies 8] [--size 640x480] [--device cuda] [--decode cpu,gpu]
        [--workers W] [--max-keypoints 4096] [--min-seconds 0.5] [--hazard] --work TMP --out check.json

For each feature and decoding, ``extract_features`` runs over the first ``--num-images`` photos,
each listed ``--copies`` times (batch 16 on CUDA): its images/s (as the pipeline reports it:
first batch excluded, finishing the file included), then every image of the file is compared
with the same photo extracted alone (one image per forward, the device synchronised after each,
decoded the same way: Pillow + OpenCV for ``cpu``, :func:`~selfdesc.pipeline.decode.decode_jpegs`
of that file alone for ``gpu``). Per run: images with a NaN, images whose keypoint count
differs, the share of the reference keypoints with a pipeline keypoint within 0.05 px (mean and
minimum over images), and the minimum descriptor cosine of those pairs. ``ok``: no NaN and at
least 90 % of every image's keypoints found (batches may change the device's float rounding, so
a few keypoints at a threshold or at the ``max_keypoints`` cut may differ; garbage input or
buffers do not look like that). Then the network alone on a batch of random images (images/s).

``--hazard`` first checks the cause of the round-7 crashes directly: tensors of the decoded
images' size are filled, read by reductions queued behind a long kernel, and freed; then a batch
is decoded, by ``torchvision.io.decode_jpeg`` as such and by ``decode_jpegs``. A reduction that
does not see its tensor's values read memory the decoder overwrote under it (share reported).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction_profile import _size, device_rate, image_folder  # noqa: E402

from selfdesc.api import load  # noqa: E402
from selfdesc.device import sync_device  # noqa: E402
from selfdesc.io.image import LoadedImage, load_image  # noqa: E402
from selfdesc.pipeline.decode import decode_jpegs, gpu_jpeg_size  # noqa: E402
from selfdesc.pipeline.extract import ExtractConfig, default_batch_size, extract_features, image_names  # noqa: E402
from selfdesc.pipeline.h5io import FeatureFile  # noqa: E402


def _jpeg_bytes(path: Path) -> torch.Tensor:
    return torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8)


def nvjpeg_hazard(paths: list[Path], device: torch.device, rounds: int = 10) -> dict[str, Any]:
    """Share of reductions queued before a decode that read overwritten memory, per decoder."""
    from torchvision.io import ImageReadMode, decode_jpeg

    w, h = Image.open(paths[0]).size
    paths = [p for p in paths if Image.open(p).size == (w, h)]
    data = [_jpeg_bytes(p) for p in paths]
    decoders = {
        "torchvision decode_jpeg": lambda: decode_jpeg(data, mode=ImageReadMode.RGB, device=device),
        "selfdesc decode_jpegs": lambda: decode_jpegs([{"jpeg": d, "shape": (3, h, w)} for d in data], device),
    }
    result: dict[str, Any] = {"images": len(data), "rounds": rounds}
    for name, decode in decoders.items():
        bad = 0
        for _ in range(rounds):
            victims = [torch.ones((3, h, w), dtype=torch.uint8, device=device) for _ in data]
            torch.cuda.synchronize(device)
            torch.cuda._sleep(50_000_000)  # tens of ms: the reductions below wait behind it
            sums = [v.sum(dtype=torch.int64) for v in victims]
            del victims  # their blocks go back to the current stream's pool with the reads still queued
            out = decode()
            torch.cuda.synchronize(device)
            bad += sum(int(s) != 3 * h * w for s in sums)
            del out
        result[name] = bad / (rounds * len(data))
        print(f"hazard: {name}: {100 * result[name]:.1f} % of queued reads saw overwritten memory ({rounds} rounds of {len(data)} images)", flush=True)
    return result


def reference(extractor: Any, path: Path, size: tuple[int, int], decode: str) -> dict[str, torch.Tensor]:
    """``path`` extracted alone (one image per forward), decoded as the pipeline's ``decode`` does."""
    if decode == "gpu" and gpu_jpeg_size(path, None, size) is not None:
        w0, h0 = Image.open(path).size
        image = decode_jpegs([{"jpeg": _jpeg_bytes(path), "shape": (3, size[1], size[0])}], extractor.device)[0]
        loaded = LoadedImage(image=image, original_size=(w0, h0), scale=(w0 / size[0], h0 / size[1]))  # type: ignore[arg-type]
    else:
        loaded = load_image(path, size=size)
    pred = extractor.extract_batch([loaded])[0]
    sync_device(extractor.device)
    return pred


def compare(ref: dict[str, Any], got: dict[str, np.ndarray], device: torch.device) -> dict[str, float]:
    """Share of ``ref``'s keypoints with a ``got`` keypoint within 0.05 px, the minimum descriptor
    cosine of those pairs, whether the counts differ and whether ``got`` holds a NaN."""
    a = ref["keypoints"].to(device)
    b = torch.from_numpy(np.asarray(got["keypoints"])).to(device)
    desc = torch.from_numpy(np.asarray(got["descriptors"], np.float32)).to(device)  # (N, D)
    nan = any(np.isnan(np.asarray(got[k], np.float32)).any() for k in ("keypoints", "scores", "descriptors"))
    if len(a) == 0 or len(b) == 0:
        return {"found": float(len(a) == len(b)), "cosine": 1.0, "count_differs": len(a) != len(b), "nan": nan}
    d, j = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1)  # exact distances
    ok = d <= 0.05
    cos = (ref["descriptors"].to(device)[ok] * desc[j[ok]]).sum(1)
    return {"found": float(ok.float().mean()), "cosine": float(cos.min()) if len(cos) else float("nan"), "count_differs": len(a) != len(b), "nan": nan}


def check_feature(label: str, root: Path, names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    device = torch.device(args.device)
    extractor = load(label, device=args.device, weights_dir=args.weights_dir, max_keypoints=args.max_keypoints)
    batch = default_batch_size(device)
    report: dict[str, Any] = {"batch_size": batch}
    for decode in args.decode:
        out = Path(args.work) / f"{label}_{decode}.h5"
        out.unlink(missing_ok=True)
        config = ExtractConfig(size=args.size, batch_size=batch, num_workers=args.workers, decode=decode, checkpoint_every=10**9, progress=False)
        s = extract_features(extractor, label, root, out, config, names=names)
        refs: dict[Path, dict[str, torch.Tensor]] = {}
        rows = []
        with FeatureFile(out) as f:
            for name in names:
                src = (root / name).resolve()
                if src not in refs:
                    refs[src] = reference(extractor, src, args.size, decode)
                rows.append(compare(refs[src], f.read(name), device))
        out.unlink(missing_ok=True)
        found = [r["found"] for r in rows]
        r = {
            "images_per_second": s.images_per_second,
            "images": len(rows),
            "images_with_nan": sum(r["nan"] for r in rows),
            "images_with_other_count": sum(r["count_differs"] for r in rows),
            "found_mean": float(np.mean(found)),
            "found_min": float(np.min(found)),
            "cosine_min": float(np.nanmin([r["cosine"] for r in rows])),
        }
        r["ok"] = r["images_with_nan"] == 0 and r["found_min"] >= 0.9
        report[decode] = r
        print(
            f"{label:8s} decode {decode}: {r['images_per_second']:.1f} images/s; against one image at a time: {r['images']} images, "
            f"NaN in {r['images_with_nan']}, other count in {r['images_with_other_count']}, keypoints found mean {r['found_mean']:.4f} "
            f"min {r['found_min']:.4f}, descriptor cosine min {r['cosine_min']:.5f}: {'OK' if r['ok'] else 'FAILED'}",
            flush=True,
        )
    x = torch.rand(batch, 3, args.size[1], args.size[0], device=device)
    if extractor.network(x) is not None:
        report["network_images_per_second"] = device_rate(extractor.network, x, args.min_seconds)
        print(f"{label:8s} network alone: {report['network_images_per_second']:.1f} images/s", flush=True)
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--features", default="default,xfeat,disk,aliked")
    ap.add_argument("--num-images", type=int, default=32)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--size", type=_size, default=(640, 480))
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--decode", default="cpu,gpu")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--max-keypoints", type=int, default=4096)
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--min-seconds", type=float, default=0.5)
    ap.add_argument("--hazard", action="store_true", help="check the nvJPEG overwrite first (CUDA)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    args.decode = [d.strip() for d in args.decode.split(",") if d.strip()]
    if args.device == "cpu":
        torch.set_num_threads(1)  # a dry run beside the decoding workers
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    src = Path(args.images)
    first = image_names(src)[: args.num_images]
    root, names = image_folder(src, first, args.copies, work)
    report: dict[str, Any] = {"device": args.device, "size": list(args.size), "torch": torch.__version__, "results": {}}
    t0 = time.perf_counter()
    if args.hazard:
        report["hazard"] = nvjpeg_hazard([src / n for n in first[:16]], torch.device(args.device))
    for label in [f.strip() for f in args.features.split(",") if f.strip()]:
        report["results"][label] = check_feature(label, root, names, args)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")  # after each feature: a timeout keeps the rest
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"checked in {time.perf_counter() - t0:.0f} s", flush=True)
    return 0 if all(r.get(d, {}).get("ok", True) for r in report["results"].values() for d in args.decode) else 1


if __name__ == "__main__":
    raise SystemExit(main())
