"""Decoded images by index, from files or from an HDF5 pack: both give the same uint8 arrays.

Every image is decoded once to RGB, its short side resized to `size` and centre-cropped square, so the
stored (or recomputed) array is what the augmentations start from.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from zoo.convert.hdf5 import open_checked

from zoo.memory import check_image

from .datasets import ImageList


def load_image(path: Path, size: int) -> np.ndarray:
    """RGB uint8 array of shape (size, size, 3): short side to `size` (bicubic), centre crop."""
    check_image(path)  # a planted 12000x12000 PNG is refused before its decode
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        s = size / min(w, h)
        nw, nh = max(size, round(w * s)), max(size, round(h * s))
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        return np.asarray(im, dtype=np.uint8).copy()


def decodable(path: Path) -> bool:
    try:
        check_image(path)
        with Image.open(path) as im:
            im.convert("RGB").load()
        return True
    except Exception:  # noqa: BLE001 - any decoder failure means "skip this file"
        return False


class FolderSource:
    """Images decoded from their files on every access (the unpacked pipeline)."""

    def __init__(self, images: ImageList, size: int):
        self.root, self.size, self.classes = images.root, size, list(images.classes)
        self.paths = [p for p, _ in images.items]
        self.labels = np.array([c for _, c in images.items], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return load_image(self.root / self.paths[i], self.size)


class PackedSource:
    """Images read from an HDF5 pack; each process (DataLoader worker) opens its own handle."""

    def __init__(self, path: Path):
        self.path = Path(path)
        with open_checked(self.path) as f:  # a planted pack reads only itself
            self.classes = json.loads(f.attrs["classes"])
            self.size = int(f.attrs["size"])
            self.labels = f["labels"][...].astype(np.int64)
            self.paths = [p.decode() if isinstance(p, bytes) else p for p in f["paths"][...]]
        self._file = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = open_checked(self.path), os.getpid()
        return self._file["images"][i]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, -1
        return state
