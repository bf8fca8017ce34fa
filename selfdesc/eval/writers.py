"""What a benchmark run leaves in its output folder; the command line and the demo both write through here.

Every file is written atomically. ``run.json`` records the dataset, the protocol, the settings,
the extraction timing and the environment (versions, machine, date, command line), so that a
number in a table can be traced to how it was made.
"""
from __future__ import annotations

import math
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

from selfdesc.eval.extraction import ExtractorSettings, Timing
from selfdesc.eval.report import markdown_table, plot_mma, write_results_json
from selfdesc.eval.runner import BenchmarkRun
from selfdesc.io.atomic import write_text_atomic

HOMOGRAPHY_PROTOCOL = "D2-Net MMA (1..10 px) + homography accuracy (1/3/5/10 px)"
POSE_PROTOCOL = "relative pose AUC@5/10/20 deg (SuperGlue): max(rotation, translation-direction) error"


def environment() -> dict[str, Any]:
    """Versions (selfdesc, python, torch, kornia, OpenCV), machine, GPU, UTC date and the command line."""
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


def write_run_json(out: Path, **record: Any) -> None:
    """``out/run.json``: ``record`` (dataset, protocol, config, timing, ...) plus the :func:`environment`."""
    write_results_json(out / "run.json", {**record, "environment": environment()})


def _timing(timings: Mapping[str, Timing]) -> dict[str, Any]:
    return {name: t.as_dict() for name, t in timings.items()}


def write_homography_report(
    out: Path,
    run: BenchmarkRun,
    label: str,
    plot_title: str | None,
    settings: ExtractorSettings | None = None,
    dataset: Mapping[str, Any] | None = None,
    caches: bool = False,
    references: Iterable[Path] = (),
) -> str:
    """Write a homography benchmark's ``results.json``, ``results.md`` and (with ``plot_title``)
    ``mma.png`` into ``out``; with ``dataset`` (and its ``settings``) also ``run.json`` and
    ``pairs.json``; with ``caches``, ``caches/<feature>.npy`` in the D2-Net format.

    Returns:
        the markdown table of ``results.md``, labelled ``label``.
    """
    from selfdesc.eval.d2net_cache import write_d2net_cache

    write_results_json(out / "results.json", run.results)
    if dataset is not None:
        write_run_json(out, dataset=dict(dataset), protocol=HOMOGRAPHY_PROTOCOL, config=settings.as_dict() if settings else {}, timing=_timing(run.timings))
        write_results_json(out / "pairs.json", run.per_pair)
    table = markdown_table({name: {**res, "timing": run.timings[name].as_dict()} for name, res in run.results.items()}, label=label)
    write_text_atomic(out / "results.md", table)
    if caches:
        for name, acc in run.accumulators.items():
            write_d2net_cache(out / "caches" / f"{Path(name).name}.npy", acc)  # a model path stays inside out
    if plot_title is not None:
        plot_mma(run.results, out / "mma.png", references=list(references), title=plot_title)
    return table


def _finite(value: Any) -> Any:
    """JSON-safe per-pair values: ``inf`` (failed estimate) becomes ``None``."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_pose_report(
    out: Path,
    results: Mapping[str, Any],
    timings: Mapping[str, Timing],
    per_pair: Mapping[str, list[dict[str, Any]]],
    settings: ExtractorSettings,
    dataset: Mapping[str, Any],
) -> None:
    """A relative-pose run's ``results.json``, ``run.json`` and ``pairs.json`` (failed estimates as ``null``)."""
    write_results_json(out / "results.json", results)
    write_run_json(out, dataset=dict(dataset), protocol=POSE_PROTOCOL, config=settings.as_dict(), timing=_timing(timings))
    write_results_json(out / "pairs.json", {name: [{k: _finite(v) for k, v in r.items()} for r in recs] for name, recs in per_pair.items()})


def write_superpoint_report(out: Path, results: Mapping[str, Any], dataset: Mapping[str, Any], synthetic: bool) -> str:
    """The SuperPoint protocol's ``superpoint.json`` and ``superpoint.md``; returns the table."""
    from selfdesc.eval.superpoint_protocol import superpoint_markdown

    write_results_json(out / "superpoint.json", {"dataset": dict(dataset), "results": dict(results)})
    table = superpoint_markdown(results)
    if synthetic:
        table = "*Synthetic HPatches-style benchmark.*\n\n" + table
    write_text_atomic(out / "superpoint.md", table)
    return table


def write_sfm_report(out: Path, results: Mapping[str, Any], root: str | Path, settings: ExtractorSettings) -> None:
    """SfM evaluation's ``results.json`` and ``run.json`` (scene folder, settings, environment)."""
    write_results_json(out / "results.json", results)
    write_run_json(out, root=str(root), config=settings.as_dict())


__all__ = ["HOMOGRAPHY_PROTOCOL", "POSE_PROTOCOL", "environment", "write_homography_report", "write_pose_report", "write_run_json", "write_sfm_report", "write_superpoint_report"]
