"""Write a model file of a randomly initialised HNDesc-lite network (architecture-only measurements).

    python benchmarks/lite_random_model.py --out dense.pt [--kp-head dense|cell] [--antialias]
        [--images DIR] [--seed 0] [key=value LiteNet options ...]

BatchNorm statistics come from a few training-mode passes over up to 8 images of ``--images``
(default: 8 uniform-noise images), so the outputs have sensible scales. The file loads like a
trained one (``selfdesc.load(path)``, ``benchmarks/shift_equivariance.py --features path``).
"""
from __future__ import annotations

import argparse
import torch

from selfdesc.config import parse_override
from selfdesc.io.image import list_images, load_image
from selfdesc.models.litenet import LiteNet
from selfdesc.weights import save_model_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--kp-head", default="dense")
    p.add_argument("--antialias", action="store_true")
    p.add_argument("--images", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("options", nargs="*", help="LiteNet options, e.g. local_dim=8")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    conf = {"kp_head": args.kp_head, "antialias": args.antialias}
    for text in args.options:
        conf.update(parse_override(text))
    net = LiteNet(conf)
    if args.images:
        files = list_images(args.images)[:8]
        batches = [torch.from_numpy(load_image(f, size=(320, 240)).image).permute(2, 0, 1)[None] for f in files]
    else:
        batches = [torch.rand(1, 3, 240, 320) for _ in range(8)]
    net.train()
    with torch.no_grad():
        for _ in range(3):
            for image in batches:
                net({"image": image})
    conf = {"name": "lite", **{k: list(v) if isinstance(v, tuple) else v for k, v in net.conf.items()}}
    save_model_file(args.out, method="hndesc", conf={"backbone": conf}, state_dict=net.state_dict(), meta={"step": 0, "random_init": True})
    print(f"{args.out}: random {args.kp_head} LiteNet" + (" (antialias)" if args.antialias else ""))


if __name__ == "__main__":
    main()
