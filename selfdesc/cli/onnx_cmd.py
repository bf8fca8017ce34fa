"""``selfdesc export-onnx``: the dense network of a learned feature as an ONNX model.

    selfdesc export-onnx --features NAME|MODEL.pt --out model.onnx [--no-check]

Input ``image`` (1, 3, H, W) RGB in [0, 1], dynamic H / W; outputs the network's dense maps
(see docs/pipeline.md). The export is checked against torch with onnxruntime when installed.
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "export-onnx", "export a learned feature network to ONNX", "selfdesc export-onnx --features default --out default.onnx", __doc__)
    p.add_argument("--features", required=True, help="a learned feature name (hndesc, r2d2, ...) or a model file of ours")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--weights-dir", default=None, help="folder of peer weight files (r2d2)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison with torch")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.export.onnx import export_features

    result = export_features(args.features, args.out, check=not args.no_check, weights_dir=args.weights_dir)
    print(f"{args.out}: outputs {', '.join(result['outputs'])}")
    diffs = result["max_abs_diff"]
    if diffs is not None:
        print("onnxruntime vs torch, max abs diff: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()))
    elif not args.no_check:
        print("not checked: onnxruntime is not installed (pip install 'selfdesc[onnx]')")
    return 0
