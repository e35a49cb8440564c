"""Decode and resize every image once into an HDF5 file (uint8, one chunk per image) next to the
dataset; later runs and every DataLoader worker read from it. Images that fail to decode are
skipped and counted. Packs live in the zoo's data directory (never in the user's image folder,
unless $ZOO_PACK_DIR points there), are written atomically, and one that does not open (a truncated
or damaged file) is packed again.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.io import atomic_path

from .datasets import DatasetError, ImageList, data_dir
from .progress import bar
from .sources import PackedSource, load_image


@dataclass
class PackResult:
    path: Path
    count: int
    failed: list[str]


def pack_path(images: ImageList, size: int) -> Path:
    """`<data dir>/packs/<folder>-<path hash>-<size>px-<key>.h5`, or in $ZOO_PACK_DIR if set: the
    user's image folder gets no hidden files."""
    where = hashlib.sha256(str(Path(images.root).resolve()).encode()).hexdigest()[:10]
    name = f"{images.root.name}-{where}-{size}px-{images.key()}.h5"
    env = os.environ.get("ZOO_PACK_DIR")
    return (Path(env) if env else data_dir() / "packs") / name


def _decode(root: Path, rel: str, size: int) -> np.ndarray | None:
    try:
        return load_image(root / rel, size)
    except Exception:  # noqa: BLE001 - a broken image is skipped, not fatal
        return None


MAX_SIDE = 4096  # 48 MiB per image: beyond that a pack is not what anybody wants


def check_size(size: int) -> int:
    """A pack side in pixels, refused before anything is allocated when it cannot be one."""
    if not 1 <= size <= MAX_SIDE:
        raise DatasetError(f"pack size {size}: must be between 1 and {MAX_SIDE} pixels")
    return size


def pack(images: ImageList, size: int, dest: Path, *, threads: int = 4, show: bool = True) -> PackResult:
    """Write the pack for `images` at `size` to `dest` atomically."""
    import h5py

    check_size(size)

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    n = len(images.items)
    shape = (size, size, 3)
    failed: list[str] = []
    labels: list[int] = []
    paths: list[str] = []
    with atomic_path(dest) as tmp:
        with h5py.File(tmp, "w") as f:
            ds = f.create_dataset("images", (n, *shape), maxshape=(None, *shape), dtype=np.uint8, chunks=(1, *shape))
            progress = bar(n, f"packing {dest.name}", enabled=show, task="pack", unit="image")
            with ThreadPoolExecutor(threads) as pool, progress as advance:
                arrays = pool.map(lambda it: _decode(images.root, it[0], size), images.items)
                for (rel, label), arr in zip(images.items, arrays, strict=True):
                    advance()
                    if arr is None:
                        failed.append(rel)
                        continue
                    ds[len(labels)] = arr
                    labels.append(label)
                    paths.append(rel)
            ds.resize((len(labels), *shape))
            f.create_dataset("labels", data=np.array(labels, dtype=np.int32))
            f.create_dataset("paths", data=np.array(paths, dtype=h5py.string_dtype()))
            f.attrs["classes"] = json.dumps(images.classes)
            f.attrs["size"] = size
            f.attrs["failed"] = len(failed)
            f.attrs["key"] = images.key()
        if not labels:
            raise DatasetError(f"{images.root}: none of the {n} images could be decoded")
    return PackResult(dest, len(labels), failed)


def open_or_pack(images: ImageList, size: int, *, show: bool = True) -> tuple[PackedSource, list[str]]:
    """The pack for `images` at `size`, made first if missing; returns (source, notes for the log)."""
    dest = pack_path(images, check_size(size))
    notes: list[str] = []
    if dest.exists():
        try:
            return PackedSource(dest), notes
        except Exception:  # noqa: BLE001 - h5py raises OSError, KeyError, ValueError for a damaged file
            dest.unlink()
            notes.append(f"{dest}: damaged (truncated or not a pack); packed again")
    res = pack(images, size, dest, show=show)
    notes.append(f"packed {res.count} images into {dest}")
    if res.failed:
        shown = ", ".join(res.failed[:5]) + (" ..." if len(res.failed) > 5 else "")
        notes.append(f"skipped {len(res.failed)} images that failed to decode: {shown}")
    return PackedSource(dest), notes
