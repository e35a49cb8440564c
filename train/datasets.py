"""Datasets as lists of (image file, class): a folder with one sub-folder per class, or a named
dataset (arthistory, lfw) that downloads itself into the user's data directory first.

Splits are stratified and reproducible from the seed; classes with too few images are reported and
left out rather than crashing the run.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from zoo.dream.audio_io import AUDIO_SUFFIXES

from zoo import formats
from zoo.errors import UserError

IMAGE_EXTS = formats.IMAGES
# class folders of sounds train on their spectrograms (train/sound.py)
SOUND_EXTS = frozenset(AUDIO_SUFFIXES)
MEDIA_EXTS = IMAGE_EXTS | SOUND_EXTS


class DatasetError(UserError):
    """A dataset that cannot be trained on (no classes, too few images, unreachable catalog)."""


@dataclass
class ImageList:
    """Image files (relative to root) with class indices into `classes`."""

    root: Path
    classes: list[str]
    items: list[tuple[str, int]]
    notes: list[str] = field(default_factory=list)  # what was skipped and why, for the log
    kind: str = "image"  # image | sound (every file a sound)

    def key(self) -> str:
        """A short digest of the list, so a pack made from another list is never reused."""
        h = hashlib.sha1()
        h.update("\n".join(self.classes).encode())
        for path, label in self.items:
            h.update(f"\n{path}\t{label}".encode())
        return h.hexdigest()[:10]


def data_dir() -> Path:
    """Where named datasets are downloaded and read-only datasets packed: $ZOO_DATA_DIR, else
    $ZOO_HOME/datasets (the zoo's own home)."""
    env = os.environ.get("ZOO_DATA_DIR")
    if env:
        return Path(env)
    from zoo.registry import zoo_home

    return zoo_home() / "datasets"


def check_root(root: Path) -> Path:
    """Refuse folders no one means as a dataset and whose walk would read half the disk: a file
    system root, the home folder (or a folder above it) and the zoo's own home."""
    from zoo.registry import zoo_home

    real = Path(root).expanduser().resolve()
    home = Path.home().resolve()
    if real == real.parent:
        raise DatasetError(f"{root}: a file system root is not a dataset (give a folder with one sub-folder per class)")
    if real == home or real in home.parents:
        raise DatasetError(f"{root}: {'your home folder' if real == home else 'a folder above your home folder'} "
                           "is not a dataset (give a folder with one sub-folder per class)")
    zhome = zoo_home().expanduser().resolve()
    if real == zhome or real in zhome.parents:
        raise DatasetError(f"{root}: {'the zoo' if real == zhome else 'a folder holding the zoo'}'s own home "
                           f"($ZOO_HOME) is not a dataset")
    return root


PROBE_DEPTH, PROBE_ENTRIES = 3, 2000  # how far a class folder is looked into before the full walk


def _holds_images(folder: Path) -> bool:
    """Whether an image stands within PROBE_DEPTH levels below `folder`, looking at no more than
    PROBE_ENTRIES entries (breadth first): cheap, so a deep tree that is no dataset stops early."""
    level, seen = [folder], 0
    for _ in range(PROBE_DEPTH):
        deeper = []
        for d in level:
            try:
                with os.scandir(d) as entries:
                    for e in entries:
                        seen += 1
                        if seen > PROBE_ENTRIES:
                            return False
                        if e.name.startswith("."):
                            continue
                        if e.is_file() and Path(e.name).suffix.lower() in MEDIA_EXTS:
                            return True
                        if e.is_dir(follow_symlinks=False):
                            deeper.append(e.path)
            except OSError:
                continue
        level = deeper
    return False


def scan_folder(root: Path) -> ImageList:
    """One class per sub-folder (sorted by name), images anywhere below it; files at the root ignored.

    Before the full walk every sub-folder is probed (an image within PROBE_DEPTH levels): a folder
    none of whose sub-folders holds images is refused at once, and sub-folders without images are
    no classes."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory (give a folder with one sub-folder per class)")
    check_root(root)
    subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    subs = [sub for sub in subs if _holds_images(sub)]
    if not subs:
        loose = any(f.is_file() and f.suffix.lower() in IMAGE_EXTS for f in root.iterdir())
        hint = "its images stand at the top: move them into one sub-folder per class, " if loose else "expected "
        raise DatasetError(f"{root}: no class folders with images ({hint}{root}/<class>/<image>.jpg)")
    classes, items = [], []
    for sub in subs:
        files = sorted(f for f in sub.rglob("*") if f.suffix.lower() in MEDIA_EXTS and f.is_file() and f.name[0] != ".")
        if not files:
            continue
        label = len(classes)
        classes.append(sub.name)
        items.extend((f.relative_to(root).as_posix(), label) for f in files)
    sounds = sum(Path(p).suffix.lower() in SOUND_EXTS for p, _ in items)
    if sounds and sounds != len(items):
        raise DatasetError(f"{root}: holds {sounds} sounds and {len(items) - sounds} images; train on one kind")
    return ImageList(root, classes, items, kind="sound" if sounds else "image")


def keep_classes(labels: np.ndarray, classes: list[str], min_count: int) -> tuple[list[int], list[str]]:
    """Class indices with at least `min_count` images, and notes naming the ones left out."""
    counts = Counter(labels.tolist())
    kept = [c for c in range(len(classes)) if counts.get(c, 0) >= min_count]
    dropped = [c for c in range(len(classes)) if c not in set(kept)]
    notes = []
    if dropped:
        names = ", ".join(f"{classes[c]} ({counts.get(c, 0)})" for c in dropped[:8])
        more = f" and {len(dropped) - 8} more" if len(dropped) > 8 else ""
        notes.append(f"left out {len(dropped)} classes with fewer than {min_count} images: {names}{more}")
    return kept, notes


def stratified_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: per class, a seeded shuffle, round(n * fraction) held out (at least one,
    and at least one left to train on)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        if len(idx) < 2:
            raise DatasetError(f"class {c}: {len(idx)} image(s), a split needs at least 2")
        n_val = min(max(1, int(round(len(idx) * val_fraction))), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


# name -> function(label, cfg options, progress) -> ImageList
Resolver = Callable[..., ImageList]


def _arthistory(**kw) -> ImageList:
    from .arthistory import prepare

    return prepare(**kw)


def _lfw(**kw) -> ImageList:
    from .lfw import prepare

    return prepare(**kw)


NAMED: dict[str, Resolver] = {"arthistory": _arthistory, "lfw": _lfw}


def check_exists(dataset: str) -> None:
    """Refuse a dataset that is neither a named one nor a folder, before a run makes its folder or
    fetches its brain."""
    if dataset and dataset not in NAMED and not Path(dataset).expanduser().is_dir():
        what = "not a folder" if Path(dataset).exists() else "no such folder"
        raise DatasetError(f"{dataset}: {what} (and not one of: {', '.join(NAMED)})")


def resolve(dataset: str, *, label: str = "", **options) -> ImageList:
    """An ImageList for a named dataset (downloaded on first use) or a class-folder path."""
    if dataset in NAMED and not Path(dataset).is_dir():
        return NAMED[dataset](label=label, **options)
    if not dataset:
        raise DatasetError("no dataset given (--dataset PATH, arthistory or lfw)")
    if not Path(dataset).exists():
        raise DatasetError(f"{dataset}: no such folder (and not one of: {', '.join(NAMED)})")
    return scan_folder(Path(dataset))


def counts_line(classes: list[str], labels: np.ndarray) -> str:
    counts = Counter(labels.tolist())
    return ", ".join(f"{classes[c]} {counts[c]}" for c in sorted(counts))
