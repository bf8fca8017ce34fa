"""Small CPU diagnosis of TPR training (issue 15): does the method learn spatially discriminative descriptors?

Trains the TPR method for a few steps on a few photos (small crops, one thread, plain Adam) and,
every ``--eval-every`` steps, writes the probes of :mod:`selfdesc.methods.tpr_probe` (GT-vs-offset
cosine of descriptors and of prediction vs target, dense NN hit rate, effective rank) measured on
fixed H-crops pairs of held-out photos (the ``--probe-images`` after the training ones).

    nice -n 10 python benchmarks/tpr_diagnose.py --images ../shared/data/train/shard-a --steps 200 \
        --out runs/diag/base.csv [method.loss.labels=hard ...]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from selfdesc.config import merge, parse_override
from selfdesc.io.atomic import write_text_atomic
from selfdesc.methods.tpr import TPR
from selfdesc.methods.tpr_probe import measure, probe_pairs
from selfdesc.training.image_folder import ImageFolder
from selfdesc.weights import save_model_file


def load_images(root: str, count: int, size: tuple[int, int], skip: int = 0) -> torch.Tensor:
    """``(count, 3, H, W)`` photos ``skip .. skip + count`` of ``root`` resized to ``size`` ``(W, H)``."""
    folder = ImageFolder(root, size=size)
    return torch.stack([folder[i]["image"] for i in range(skip, skip + count)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--num-images", type=int, default=48)
    ap.add_argument("--probe-images", type=int, default=8, help="held-out photos after the training ones")
    ap.add_argument("--size", type=int, nargs=2, default=[240, 180])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--eval-every", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="CSV of the probe numbers per evaluation")
    ap.add_argument("--export", help="write the trained model file here (as selfdesc export-weights)")
    ap.add_argument("--init", help="a TPR model file (e.g. selfdesc/weights/tpr.pt): its backbone starts both branches")
    ap.add_argument("overrides", nargs="*", help="dotted method overrides, e.g. loss.labels=hard")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    conf = merge(TPR.default_conf, {"schedule_steps": args.steps, "hcrops": {"crop_size": 128}})
    for text in args.overrides:
        conf = merge(conf, parse_override(text))
    if args.init:
        model = torch.load(args.init, map_location="cpu", weights_only=True)
        backbone = dict(model["conf"]["backbone"])
        name = backbone.pop("name")
        conf = merge(conf, {"backbone": {"name": name, name: backbone}})
    method = TPR(conf)
    if args.init:
        method.online.backbone.load_state_dict({k: v.float() for k, v in model["state_dict"].items()})
        method.target.backbone.load_state_dict(method.online.backbone.state_dict())
    images = load_images(args.images, args.num_images, tuple(args.size))
    probe = probe_pairs(method, load_images(args.images, args.probe_images, tuple(args.size), skip=args.num_images))
    opt = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-6)
    rows, t0 = [], time.time()
    method.train()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            row = {"step": step, **{k: round(v, 4) for k, v in measure(method, probe).items()}, "s": round(time.time() - t0, 1)}
            rows.append(row)
            print(row, flush=True)
        if step == args.steps:
            break
        batch = images[torch.randint(len(images), (args.batch,))]
        out = method({"image": batch})
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        method.after_step(step)
        if step % 25 == 0:
            print(step, {k: round(float(v), 4) for k, v in out.items() if v.numel() == 1 and not v.requires_grad} | {"loss": round(float(out["loss"].detach()), 4)}, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    text = ",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n" for r in rows)
    write_text_atomic(args.out, text)
    if args.export:
        save_model_file(args.export, method="tpr", **method.export(), meta={"step": args.steps, "source": "benchmarks/tpr_diagnose.py"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
