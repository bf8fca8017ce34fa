"""Benchmark results on disk and on screen: JSON, a markdown table, MMA curves.

The results structure (CLI contract)::

    {"<feature>": {"<split>": {"mma": {"1": x, ..., "10": x},
                               "homography_accuracy": {"1": x, "3": x, "5": x, "10": x},
                               "num_features": x, "num_matches": x, "num_pairs": n},
                   "timing": {"seconds_per_image": x, "device": "cpu", ...}}}

A split entry is any dict with an ``"mma"`` key; other keys (``"timing"``, ...) are not splits.
Reference curves come from published D2-Net caches on the **full** HPatches benchmark (108
sequences) and are labelled as such so they are never read as numbers of our benchmark.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from selfdesc.eval.aggregate import NAMED_SPLITS, threshold_key
from selfdesc.eval.d2net_cache import read_d2net_cache
from selfdesc.io.atomic import atomic_path, write_text_atomic
from selfdesc.shared_data import shared_data_path

_REFERENCE_SUBDIR = "reference-results/hpatches-d2net-caches"

#: Well-known published caches (file name in the reference folder -> display label).
REFERENCE_CACHES = {
    "aslfeat-repo__hesaff.npy": "HesAff + RootSIFT",
    "aslfeat-repo__hesaffnet.npy": "HesAffNet + HardNet++",
    "aslfeat-repo__superpoint.npy": "SuperPoint",
    "aslfeat-repo__d2-net.npy": "D2-Net SS",
    "aslfeat-repo__lf-net.npy": "LF-Net",
    "aslfeat-repo__contextdesc.npy": "ContextDesc",
    "aslfeat-repo__aslfeatv2_ms.npy": "ASLFeat v2 MS",
    "r2d2__r2d2_WASF_N16.scale-0.3-1.npy": "R2D2 WASF full-res",
    "disk__disk-imsize-1024-nms-3-nump-8000.npy": "DISK 8k (1024 px)",
    "alike__alike-n.npy": "ALIKE-N",
    "alike__alike-l-ms.npy": "ALIKE-L MS",
}

_SPLIT_TITLES = {"overall": "overall", "i": "illumination (i)", "v": "viewpoint (v)"}


def default_reference_dir() -> Path | None:
    """``../shared/data/reference-results/hpatches-d2net-caches`` next to the current folder
    or next to the selfdesc checkout, whichever exists first; ``None`` if neither does."""
    found = shared_data_path(_REFERENCE_SUBDIR)
    return found if found is not None and found.is_dir() else None


def reference_caches(directory: str | Path | None = None) -> list[Path]:
    """The :data:`REFERENCE_CACHES` files present in ``directory`` (default
    :func:`default_reference_dir`), in registry order; empty when there is no such folder."""
    root = Path(directory) if directory is not None else default_reference_dir()
    if root is None:
        return []
    return [root / name for name in REFERENCE_CACHES if (root / name).is_file()]


def reference_label(path: str | Path) -> str:
    """Display label of a published cache, marked as published full-HPatches numbers."""
    name = Path(path).name
    return f"{REFERENCE_CACHES.get(name, Path(name).stem)} (published, full HPatches)"


def splits_of(feature_results: Mapping[str, Any]) -> list[str]:
    """Split names of one feature's results in report order (overall, i, v, then others)."""
    found = [k for k, v in feature_results.items() if isinstance(v, Mapping) and "mma" in v]
    order = ["overall", *NAMED_SPLITS]
    return sorted(found, key=lambda s: (order.index(s) if s in order else len(order), s))


def write_results_json(path: str | Path, results: Mapping[str, Any]) -> Path:
    """Write ``results`` as indented JSON atomically (temp file in the same folder, then rename)."""
    return write_text_atomic(path, json.dumps(results, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _fmt(value: Any, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(
    results: Mapping[str, Mapping[str, Any]],
    label: str | None = None,
    thresholds: Iterable[float] = (1, 3, 5),
) -> str:
    """A markdown table with one row per feature and split.

    Columns: MMA and homography accuracy (HA) at ``thresholds`` px, mean #features per image,
    mean #matches per pair, #pairs, and extraction time per image when ``results[feature]``
    has a ``"timing"`` entry with ``"seconds_per_image"``.

    Args:
        results: the results structure (see module docstring).
        label: benchmark name for the title, e.g. ``"synthetic"`` or ``"HPatches graf"``.
        thresholds: px thresholds of the MMA/HA columns.
    """
    keys = [threshold_key(t) for t in thresholds]
    with_time = any(isinstance(r.get("timing"), Mapping) for r in results.values())
    header = ["feature", "split", *[f"MMA@{k}" for k in keys], *[f"HA@{k}" for k in keys], "#features", "#matches", "#pairs"]
    if with_time:
        header.append("ms/image")
    lines = [
        f"### Results{f' — {label}' if label else ''}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    devices = set()
    for feature, res in results.items():
        timing = res.get("timing") if isinstance(res.get("timing"), Mapping) else {}
        seconds = timing.get("seconds_per_image")
        if "device" in timing:
            devices.add(str(timing["device"]))
        for split in splits_of(res):
            entry = res[split]
            ha = entry.get("homography_accuracy", {})
            row = [feature, split]
            row += [_fmt(entry["mma"].get(k), 3) for k in keys]
            row += [_fmt(ha.get(k), 3) for k in keys]
            row += [_fmt(entry.get("num_features"), 0), _fmt(entry.get("num_matches"), 0), str(entry.get("num_pairs", "–"))]
            if with_time:
                row.append(_fmt(None if seconds is None else 1000 * seconds, 1))
            lines.append("| " + " | ".join(row) + " |")
    lines += [
        "",
        f"*{label or 'Benchmark'}:* MMA = mean matching accuracy (mutual nearest neighbours, one-directional "
        "reprojection error <= t px, pair-weighted). HA = homography accuracy (RANSAC 3 px, mean corner "
        "error <= t px, pair-weighted). #features per image, #matches per pair."
        + (" FEATURE+matcher rows: the same features matched by a trained matcher instead." if any(k.endswith("+matcher") for k in results) else "")
        + (f" Extraction time on {', '.join(sorted(devices))}." if devices else ""),
    ]
    return "\n".join(lines) + "\n"


def _curve(mma: Mapping[str, float]) -> tuple[list[float], list[float]]:
    keys = sorted(mma, key=float)
    return [float(k) for k in keys], [mma[k] for k in keys]


def plot_mma(
    results: Mapping[str, Mapping[str, Any]],
    out_png: str | Path,
    references: Iterable[str | Path] | None = None,
    title: str | None = None,
) -> Path:
    """Plot MMA vs threshold (1..10 px), one panel per split, and write a PNG atomically.

    Our features are solid coloured lines; the published ``references`` (D2-Net cache files,
    e.g. :func:`reference_caches`) are thin dashed grey lines labelled "(published, full
    HPatches)".

    Args:
        results: the results structure (see module docstring).
        out_png: output file.
        references: D2-Net ``.npy`` caches to draw for comparison.
        title: figure title, e.g. ``"MMA — synthetic benchmark"``.

    Raises:
        ValueError: ``results`` holds no MMA curve.
    """
    splits = []
    for res in results.values():
        splits += [s for s in splits_of(res) if s not in splits]
    if not splits:
        raise ValueError("no MMA results to plot")
    refs = [(reference_label(p), read_d2net_cache(p)) for p in references or []]

    fig = Figure(figsize=(4.2 * len(splits), 4.0), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(splits), sharey=True, squeeze=False)[0]
    greys = ("0.3", "0.5", "0.65")
    dashes = ((0, (5, 2)), (0, (2, 2)), (0, (6, 2, 1, 2)), (0, (9, 3)))
    for ax, split in zip(axes, splits):
        for feature, res in results.items():
            if split in splits_of(res):
                ax.plot(*_curve(res[split]["mma"]), linewidth=2.0, marker="o", markersize=3, label=feature, zorder=3)
        for idx, (label, summary) in enumerate(refs):
            if split in summary:
                style = {"color": greys[idx % len(greys)], "linestyle": dashes[idx % len(dashes)]}
                ax.plot(*_curve(summary[split]["mma"]), linewidth=1.0, label=label, **style)
        ax.set_title(_SPLIT_TITLES.get(split, split))
        ax.set_xlabel("threshold [px]")
        ax.set_xlim(1, 10)
        ax.set_ylim(0, 1)
        ax.set_xticks(range(1, 11))
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("MMA")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    ours = [i for i, lab in enumerate(labels) if lab in results]
    order = ours + [i for i in range(len(labels)) if i not in ours]
    fig.legend(
        [handles[i] for i in order],
        [labels[i] for i in order],
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        fontsize=8,
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return Path(out_png)
