"""HPatches sequences: loading the pairs and fetching the release.

Layout (``hpatches-sequences-release``): one folder per sequence, named ``i_*``
(illumination) or ``v_*`` (viewpoint), holding ``1.ppm .. 6.ppm`` and ``H_1_2 .. H_1_6``.
``H_1_k`` (text, 3x3) maps image-1 pixels to image-k pixels (pixel-centre convention).
The evaluation pairs are ``(1, k)`` for ``k = 2..6``.
"""
from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from selfdesc.datasets.base import HomographyPair, check_homography
from selfdesc.errors import DatasetError
from selfdesc.io.image import IMAGE_SUFFIXES

HPATCHES_URL = "http://icvl.ee.ic.ac.uk/vbalnt/hpatches/hpatches-sequences-release.tar.gz"
RELEASE_FOLDER = "hpatches-sequences-release"

#: Sequences with images larger than 1600x1200, left out by the D2-Net protocol (108 remain).
D2NET_EXCLUDED: frozenset[str] = frozenset(
    {
        "i_contruction",
        "i_crownnight",
        "i_dc",
        "i_pencils",
        "i_whitebuilding",
        "v_artisans",
        "v_astronautis",
        "v_talent",
    }
)

SPLIT_LISTS = ("d2net", "all")


def sequence_type(name: str) -> str:
    """``"i"`` (illumination) or ``"v"`` (viewpoint) from a sequence name's prefix.

    Raises:
        DatasetError: the name starts with neither ``i_`` nor ``v_``.
    """
    prefix = name[:2]
    if prefix not in ("i_", "v_"):
        raise DatasetError(f"{name}: not an HPatches sequence name (must start with i_ or v_)")
    return prefix[0]


def _sequence_dirs(root: Path) -> list[Path]:
    """Sorted ``i_*`` / ``v_*`` sub-folders of ``root`` (other entries are ignored)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name[:2] in ("i_", "v_"))


def _numbered_images(seq: Path) -> dict[int, Path]:
    """``{k: path}`` for the files named ``<k>.<image suffix>``; ``.ppm`` wins over others."""
    found: dict[int, Path] = {}
    rank = {s: i for i, s in enumerate(IMAGE_SUFFIXES)}
    rank[".ppm"] = -1
    for p in seq.iterdir():
        suffix = p.suffix.lower()
        if not (p.is_file() and p.stem.isdigit() and suffix in rank):
            continue
        k = int(p.stem)
        if k not in found or rank[suffix] < rank[found[k].suffix.lower()]:
            found[k] = p
    return found


def _read_homography(path: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns about empty files
            values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{path}: cannot read homography ({msg})") from None
    if values.size == 0:
        raise DatasetError(f"{path}: empty homography file")
    if values.shape != (3, 3):
        raise DatasetError(f"{path}: homography must be 3x3, got {values.shape[0]}x{values.shape[1]}")
    return check_homography(values, str(path))


def _load_sequence(seq: Path) -> list[HomographyPair]:
    """Pairs ``(1, k)`` of one sequence; every image must have its ``H_1_k`` and vice versa."""
    images = _numbered_images(seq)
    h_files = {int(p.name[4:]): p for p in seq.glob("H_1_*") if p.name[4:].isdigit() and p.is_file()}
    n = max([*images, *h_files, 0])
    if n < 2:
        raise DatasetError(f"{seq}: not an HPatches sequence (needs 1.ppm, 2.ppm, H_1_2, ...)")
    suffix = images[1].suffix if 1 in images else ".ppm"
    for k in range(1, n + 1):
        if k not in images:
            raise DatasetError(f"{seq / f'{k}{suffix}'}: missing image (sequence has images up to {n})")
        if k >= 2 and k not in h_files:
            raise DatasetError(f"{seq / f'H_1_{k}'}: missing homography file")
    split = sequence_type(seq.name)
    return [
        HomographyPair(
            image0=images[1],
            image1=images[k],
            H=_read_homography(h_files[k]),
            split=split,
            name=f"{seq.name}/1-{k}",
            sequence=seq.name,
        )
        for k in range(2, n + 1)
    ]


def load_hpatches(
    root: str | Path,
    split_list: str = "d2net",
    sequences: Iterable[str] | None = None,
) -> list[HomographyPair]:
    """Load the ``(1, k)`` pairs of an HPatches-layout folder.

    Args:
        root: folder holding the ``i_*`` / ``v_*`` sequence folders (``hpatches-sequences-release``,
            a partial copy of it, or a synthetic benchmark); other entries are ignored.
        split_list: ``"d2net"`` skips the 8 :data:`D2NET_EXCLUDED` sequences that are present
            (108 of 116 remain on the full release); ``"all"`` keeps every sequence.
        sequences: optional names to load (after the split list is applied).

    Returns:
        Pairs sorted by sequence then ``k``; ``split`` is ``"i"`` or ``"v"``, ``name`` e.g.
        ``"v_graffiti/1-3"``, ``H`` = ``H_1_k`` (image-1 pixels to image-k pixels).

    Raises:
        DatasetError: missing root, no sequence, unknown ``split_list`` or requested sequence,
            a sequence missing an image or ``H_1_k`` file, or a malformed ``H_1_k``.
    """
    if split_list not in SPLIT_LISTS:
        raise DatasetError(f"unknown HPatches split list {split_list!r} (choose from {', '.join(SPLIT_LISTS)})")
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder" if not root.exists() else f"{root}: not a folder")
    seqs = _sequence_dirs(root)
    if not seqs:
        hint = f" (did you mean {root / RELEASE_FOLDER}?)" if (root / RELEASE_FOLDER).is_dir() else ""
        raise DatasetError(f"{root}: no HPatches sequences (i_*/v_* folders) found{hint}")
    if split_list == "d2net":
        seqs = [s for s in seqs if s.name not in D2NET_EXCLUDED]
    if sequences is not None:
        wanted = list(dict.fromkeys(sequences))
        by_name = {s.name: s for s in seqs}
        for name in wanted:
            if name not in by_name:
                why = f"excluded by split_list={split_list!r}" if name in D2NET_EXCLUDED else "not found"
                raise DatasetError(f"{root / name}: sequence {why}")
        seqs = [by_name[name] for name in sorted(wanted)]
    return [pair for seq in seqs for pair in _load_sequence(seq)]


# --------------------------------------------------------------------------- fetching


def _member_target(dest: Path, name: str, archive: Path) -> Path:
    """Where an archive member lands; refuses absolute paths and ``..`` escapes."""
    target = (dest / name).resolve()
    if os.path.isabs(name) or not target.is_relative_to(dest.resolve()):
        raise DatasetError(f"{archive}: unsafe member path {name!r} (escapes the destination)")
    return target


TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _extract(archive: Path, dest: Path) -> None:
    """Extract a .tar[.gz|.bz2|.xz]/.tgz/.zip archive into ``dest``, refusing unsafe members."""
    name = archive.name.lower()
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    _member_target(dest, member, archive)
                zf.extractall(dest)
        elif name.endswith(TAR_SUFFIXES):
            with tarfile.open(archive) as tf:
                for member in tf.getmembers():
                    _member_target(dest, member.name, archive)
                    if not (member.isfile() or member.isdir()):
                        raise DatasetError(f"{archive}: links and special files are not allowed ({member.name})")
                tf.extractall(dest, filter="data")
        else:
            raise DatasetError(f"{archive}: not a .tar.gz, .tgz, .tar or .zip archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{archive}: cannot extract archive ({msg})") from None


def _find_release(folder: Path, max_depth: int = 3) -> Path | None:
    """The ``hpatches-sequences-release`` folder in ``folder`` (or ``folder`` itself), else the
    shallowest folder holding sequences, searching ``max_depth`` levels down."""
    level = [folder]
    for _ in range(max_depth + 1):
        named = [p for p in level if p.name == RELEASE_FOLDER and _sequence_dirs(p)]
        holding = named or [p for p in level if _sequence_dirs(p)]
        if holding:
            return holding[0]
        level = sorted(c for p in level for c in p.iterdir() if c.is_dir())
    return None


def _download(url: str, target: Path, timeout: float = 60.0) -> None:
    """Download ``url`` to ``target`` through ``target.part`` (renamed when complete)."""
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {target.name}") as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DatasetError(
            f"cannot download {url} ({reason}); fetch it elsewhere and pass --from <archive or folder>"
        ) from None
    part.replace(target)


def prepare_hpatches(root: str | Path, source: str | Path | None = None, url: str = HPATCHES_URL) -> Path:
    """Put the HPatches sequences in ``root`` (every sequence; the split is applied at load time).

    Args:
        root: destination; afterwards it holds the ``i_*`` / ``v_*`` folders. Nothing is done
            when it already holds sequences; otherwise it must be absent or empty.
        source: a local ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` archive or an extracted folder
            (a local mirror); ``None`` downloads ``url`` (to ``<root>.tar.gz``, removed once unpacked).
        url: the release archive's address.

    Returns:
        ``root``.

    Raises:
        DatasetError: download failure, missing or unsafe archive, no sequences in the source,
            an incomplete sequence or malformed ``H_1_k`` in it (nothing is written then), or a
            non-empty ``root`` without sequences.
    """
    root = Path(root)
    if root.is_dir() and _sequence_dirs(root):
        return root
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DatasetError(f"{root}: exists and holds no HPatches sequences; give an empty or new folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    downloaded: Path | None = None
    if source is None:
        downloaded = root.with_name(root.name + ".tar.gz")
        if not downloaded.is_file():
            _download(url, downloaded)
        source = downloaded
    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source}: no such file or folder")

    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        if source.is_dir():
            release = _find_release(source)
            if release is None:
                raise DatasetError(f"{source}: no HPatches sequences (i_*/v_* folders) found")
            staged = tmp / RELEASE_FOLDER
            shutil.copytree(release, staged)
        else:
            _extract(source, tmp)
            staged = _find_release(tmp)
            if staged is None:
                raise DatasetError(f"{source}: archive holds no HPatches sequences (i_*/v_* folders)")
        load_hpatches(staged, split_list="all")  # every sequence complete, every H_1_k well-formed
        if root.exists():
            root.rmdir()  # empty, checked above
        staged.rename(root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if downloaded is not None:
        downloaded.unlink(missing_ok=True)
    return root
