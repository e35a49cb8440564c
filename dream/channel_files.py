"""Where a blob's channel pictures live under $ZOO_HOME/atlas: per brain and weights, blob, and the
settings that made them. Light on purpose (no torch): the studio's web server finds cached pictures
with it while the worker (zoo.dream.channels) makes them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from zoo.dream.presets import Legible

# the channel pictures' default (lucid's 1/frequency spectrum, decay 1: measured selective, docs/legible.md)
SETTINGS = Legible(steps=64, lr=0.05, param="fft", transforms="standard", decay=1.0)


def safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "blob"


def settings_key(size: int, steps: int, param: str, transforms: str, seed: int) -> str:
    return f"{size}px-{steps}st-{param}-{transforms}-s{seed}"


def brain_folder(cache: Path, model: str, weights_sha256: str) -> Path:
    return cache / f"{safe(model)}-{weights_sha256[:16]}"


def folder(cache: Path, model: str, weights_sha256: str, blob: str, key: str) -> Path:
    """The folder of one blob's pictures made with the settings `key` names."""
    return brain_folder(cache, model, weights_sha256) / safe(blob) / key


def picture(path: Path, channel: int) -> Path:
    return path / f"ch{channel:04d}.png"


def made(path: Path, count: int) -> list[int]:
    """The channels of `count` whose pictures are in `path`."""
    return [c for c in range(count) if picture(path, c).is_file()]


def variants(cache: Path, model: str, weights_sha256: str, blob: str) -> list[dict]:
    """Every cached set of a blob's pictures: what made it (its atlas.json) and its folder."""
    base = brain_folder(cache, model, weights_sha256) / safe(blob)
    out = []
    for info_path in sorted(base.glob("*/atlas.json")) if base.is_dir() else ():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("blob") == blob and info.get("weights_sha256") == weights_sha256:
            out.append({**info, "folder": info_path.parent})
    return out
