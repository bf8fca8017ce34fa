"""``selfdesc extract``: features of a folder of images into an hloc-compatible features.h5.

    selfdesc extract --features NAME|MODEL.pt --images DIR --out features.h5
        [--max-keypoints N] [--resize MAX_SIDE] [--fp16] [--device cpu|cuda]
        [--batch-size B] [--workers W] [--precision fp32|bf16] [--decode auto|cpu|gpu]
        [--checkpoint-every N] [--quiet]

Resumable: images already in the file (or journaled by an interrupted run) are
skipped, and the file is replaced atomically, so it is never left half-written. Images of one
size go through the network --batch-size at a time; decoding (--workers processes, or JPEGs
on the GPU with --decode gpu) and HDF5 writing (a background thread) overlap it. An image that cannot be decoded does not stop the
others: each is named at the end and the exit status is 2 (rerun to retry them). On several
GPUs, run under torchrun (one process per GPU, each on its own shard; rank 0 merges):

    torchrun --nproc_per_node 2 -m selfdesc extract --device cuda ...
"""
from __future__ import annotations

import argparse
import sys

from selfdesc.cli.common import add_command, add_resize_option


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "extract", "extract features of an image folder into features.h5",
        "selfdesc extract --features default --images my_photos/ --out features.h5 --resize-max 1600", __doc__,
    )
    p.add_argument("--features", required=True, help="a feature name (see `selfdesc features`) or a model file of ours")
    p.add_argument("--images", required=True, help="image folder (searched recursively); names are paths relative to it")
    p.add_argument("--out", required=True, help="output features.h5 (created or completed)")
    p.add_argument("--max-keypoints", type=int, default=None, help="keep at most N keypoints per image (by score)")
    add_resize_option(p, "extract on images resized")
    p.add_argument("--fp16", action="store_true", help="store descriptors as float16")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="cuda under torchrun: cuda:LOCAL_RANK")
    p.add_argument("--batch-size", type=int, default=None, help="images of one size per network batch (default: 16 on CUDA, 1 on the CPU)")
    p.add_argument("--workers", type=int, default=None, help="image-decoding worker processes (default: the cores less two, 1 to 12; 0: decode in the main process)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16: autocast on the device (see docs/extract_speed.md for its tolerance)")
    p.add_argument("--decode", default="cpu", choices=["auto", "cpu", "gpu"], help="cpu (default): the workers decode; gpu: JPEGs decoded on the GPU (needs torchvision and --device cuda; experimental, docs/extract_speed.md); auto: gpu where possible, else cpu")
    p.add_argument("--checkpoint-every", type=int, default=100, help="images per checkpoint (at most this many are redone after a kill)")
    p.add_argument("--weights-dir", default=None, help="folder of peer weight files (default: ../shared/data/weights when present)")
    p.add_argument("--skip-unreadable", action="store_true", help="images that cannot be read are listed and the run exits 0 (default: the others are extracted, then exit status 2)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.api import load
    from selfdesc.cli.common import check_output_file, positive
    from selfdesc.device import check_device
    from selfdesc.distributed import dist_info
    from selfdesc.errors import ImageError
    from selfdesc.pipeline.decode import resolve_decode
    from selfdesc.pipeline.extract import ExtractConfig, extract_features, image_names

    device = check_device(args.device)
    resolve_decode(args.decode, device)  # --decode gpu where it cannot run fails before the model is loaded
    for option in ("max_keypoints", "resize_max", "batch_size", "checkpoint_every"):
        positive("--" + option.replace("_", "-"), getattr(args, option))
    check_output_file(args.out)
    rank, world, local_rank = dist_info()
    if device == "cuda" and world > 1:
        import torch

        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    image_names(args.images)  # a missing or empty folder fails before the model is loaded
    extractor = load(args.features, device=device, weights_dir=args.weights_dir, max_keypoints=args.max_keypoints)
    config = ExtractConfig(
        resize_max=args.resize_max,
        fp16=args.fp16,
        batch_size=args.batch_size,
        num_workers=args.workers,
        precision=args.precision,
        decode=args.decode,
        checkpoint_every=args.checkpoint_every,
        progress=not args.quiet,
    )
    s = extract_features(extractor, args.features, args.images, args.out, config)
    if rank == 0:
        rate = f", {s.images_per_second:.2f} images/s" if s.num_extracted > 1 else ""
        print(f"{args.out}: {s.num_images} images ({s.num_skipped} already there, {s.num_extracted} extracted in {s.seconds:.1f} s{rate})")
        for message in s.failed if args.skip_unreadable else s.failed[1:]:  # without the flag the first is in the error line
            print(f"selfdesc: skipped: {message}", file=sys.stderr)
    if s.failed and s.num_extracted + s.num_skipped == 0:
        raise ImageError(f"{args.images}: none of the {s.num_images} images could be read: {s.failed[0]}")
    if not args.skip_unreadable:
        s.raise_failed(args.out)
    return 0
