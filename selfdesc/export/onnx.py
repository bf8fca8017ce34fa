"""Export the dense network of a learned extractor to ONNX, and check it against torch.

The exported graph is the network only: ``image`` ``(1, C, H, W)`` float32 in [0, 1] (RGB,
``C = 3``; the network normalises it itself) -> its dense outputs, e.g. for the R2D2 /
HNDesc network ``descriptors`` ``(1, D, H, W)`` (L2-normalised), ``repeatability`` and
``reliability`` ``(1, 1, H, W)``. Height and width are dynamic axes. Keypoint selection
(pyramid, NMS, thresholds, top-k) stays outside the graph.

Needs ``onnx`` (export) and ``onnxruntime`` (check): ``pip install 'selfdesc[onnx]'``.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.io.atomic import atomic_path

OPSET = 17


class DenseOutputs(nn.Module):
    """Wraps a dict-out network (``net({"image": x}) -> {name: (1, C, H, W)}``) into a tuple-out one (sorted names)."""

    def __init__(self, net: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.net, self.names = net, names

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.net({"image": image})
        return tuple(out[k] for k in self.names)


def dense_network(extractor: nn.Module) -> nn.Module:
    """The learned dense network of an extractor (its ``net``).

    Raises:
        ConfigError: the extractor has none (hand-crafted features, or a peer without one).
    """
    net = getattr(extractor, "net", None)
    if not isinstance(net, nn.Module):
        raise ConfigError(f"feature '{getattr(extractor, 'name', type(extractor).__name__)}' has no learned dense network to export")
    return net


def export_network(net: nn.Module, out: str | Path, height: int = 240, width: int = 320, opset: int = OPSET) -> list[str]:
    """Write ``net`` as ONNX to ``out`` (atomically) with dynamic height / width.

    Args:
        net: a module whose ``forward({"image": (1, 3, H, W)})`` returns a dict of tensors.
        height, width: size of the example input used for tracing.

    Returns:
        The output names, in graph order.
    """
    try:
        import onnx  # noqa: F401 - the exporter needs it
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package (pip install 'selfdesc[onnx]')") from None
    net = net.eval()
    example = torch.rand(1, 3, height, width)
    with torch.no_grad():
        names = sorted(k for k, v in net({"image": example}).items() if isinstance(v, torch.Tensor))
    wrapper = DenseOutputs(net, names).eval()
    dynamic = {n: {2: "height", 3: "width"} for n in ["image", *names]}
    with atomic_path(out) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
        torch.onnx.export(
            wrapper, (example,), str(tmp), input_names=["image"], output_names=names, dynamic_axes=dynamic, opset_version=opset, dynamo=False
        )
    net.eval()  # the exporter restores the wrapper's mode, which may have switched net to training
    return names


def compare_onnx(path: str | Path, net: nn.Module, image: torch.Tensor) -> dict[str, float]:
    """Max absolute difference per output between onnxruntime (CPU) and torch on ``image`` ``(1, 3, H, W)``.

    Raises:
        ConfigError: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("checking the ONNX model needs onnxruntime (pip install 'selfdesc[onnx]')") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    got = session.run(names, {"image": image.numpy().astype(np.float32)})
    with torch.no_grad():
        ref = net.eval()({"image": image})
    return {n: float(np.abs(g - ref[n].float().numpy()).max()) for n, g in zip(names, got)}


def export_features(name_or_path: str | Path, out: str | Path, check: bool = True, weights_dir: str | Path | None = None, **conf: Any) -> dict[str, Any]:
    """Export the network of a learned feature (registered name or model file) to ``out``.

    With ``check``, runs onnxruntime on a random image of another size than the traced one
    and reports the max abs difference per output (``None`` when onnxruntime is missing).
    """
    from selfdesc.api import load

    extractor = load(name_or_path, weights_dir=weights_dir, **conf)
    net = dense_network(extractor)
    names = export_network(net, out)
    result: dict[str, Any] = {"outputs": names, "max_abs_diff": None}
    if check:
        try:
            result["max_abs_diff"] = compare_onnx(out, net, torch.rand(1, 3, 200, 264, generator=torch.Generator().manual_seed(0)))
        except ConfigError:
            result["max_abs_diff"] = None
    return result


__all__ = ["OPSET", "DenseOutputs", "compare_onnx", "dense_network", "export_features", "export_network"]
