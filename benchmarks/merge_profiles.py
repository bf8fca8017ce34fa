"""Merge the per-run JSON files of ``benchmarks/extraction_profile.py`` into one report.

    python benchmarks/merge_profiles.py RUNS_DIR OUT_JSON OUT_MD [--extra KEY=FILE.json ...]

Every ``RUNS_DIR/profile_*.json`` (one feature and size each) goes into one report with the
Markdown tables of :func:`extraction_profile.markdown`; ``--extra`` adds other JSON results
under ``KEY`` (a ``torchrun_2gpu`` result of ``extraction_throughput.py`` gets a line per
feature and size: images/s and images/s per GPU; a ``write_speed`` result of
``write_speed.py`` gets its milliseconds per image; a ``free_*`` result of ``pipeline_overhead.py``
its best images/s).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction_profile import markdown  # noqa: E402


def merge(runs: Path) -> dict[str, Any] | None:
    """One report from the ``profile_*.json`` files in ``runs`` (``None`` when there is none)."""
    merged: dict[str, Any] | None = None
    for path in sorted(runs.glob("profile_*.json")):
        r = json.loads(path.read_text())
        if merged is None:
            merged = {**r, "results": {}, "num_images": {}}
        for label, res in r["results"].items():
            merged["results"].setdefault(label, {}).update(res)
            for key in res:
                if "x" in key:
                    merged["num_images"][key] = r["num_images"]
    return merged


def extra_lines(key: str, r: dict[str, Any]) -> list[str]:
    """Markdown lines of an ``--extra`` result."""
    if key == "torchrun_2gpu":
        return [
            f"torchrun, {r['world_size']} GPUs: {label} {size}: {v['images_per_second']:.1f} images/s ({v['images_per_second'] / r['world_size']:.1f} per GPU)"
            for label, sizes in r["results"].items()
            for size, v in sizes.items()
        ]
    if key == "write_speed":
        return [
            f"Writing features.h5 on this host's CPU ({r['images']} images of {r['keypoints']} keypoints, {r['threads']} byte-writing threads): {dim}-D {label}: "
            + f"{1000 * sum(v.values()):.2f} ms/image ("
            + ", ".join(f"{k} {1000 * x:.2f}" for k, x in v.items())
            + ")"
            for dim, by_way in r["results"].items()
            for label, v in by_way.items()
        ]
    if key.startswith("free_"):
        return [
            f"Pipeline ceiling (an extractor that costs nothing, {r['keypoints']} x {r['dim']}-D features, {r['images']} images at "
            f"{r['size'][0]}x{r['size'][1]}, {r['device']}, {r['workers']} workers, decoding {r['decode']}): best {max(r['images_per_second']):.1f} images/s"
        ]
    return []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs")
    ap.add_argument("out_json")
    ap.add_argument("out_md")
    ap.add_argument("--extra", action="append", default=[], help="KEY=FILE.json")
    args = ap.parse_args()
    merged = merge(Path(args.runs))
    if merged is None:
        print("no profile finished (see log.txt)", file=sys.stderr)
        return 1
    text = markdown(merged)
    for entry in args.extra:
        key, _, file = entry.partition("=")
        if Path(file).is_file():
            merged[key] = json.loads(Path(file).read_text())
            text += "".join(f"\n{line}\n" for line in extra_lines(key, merged[key]))
    Path(args.out_json).write_text(json.dumps(merged, indent=2) + "\n")
    Path(args.out_md).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
