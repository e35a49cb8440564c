"""Zoom/rotate feedback: each frame dreams on a zoomed, turned copy of the frame before it.

Frames come out one by one (a generator), so the caller writes them as they are made and a
Ctrl-C keeps what was finished.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from zoo.dream import render
from zoo.dream.brain import Brain
from zoo.dream.objectives import Objective
from zoo.dream.output import atomic_path, to_uint8
from zoo.dream.pipeline import Plan, dream_rgb
from zoo.dream.presets import DreamParams

ANIMATIONS = (".gif", ".webp")


def zoom_rotate(rgb: np.ndarray, zoom: float, degrees: float) -> np.ndarray:
    """Zoom in by `zoom` about the centre and turn by `degrees` (counter-clockwise), same size.

    Works in pixel coordinates so non-square frames do not shear; edges are filled by reflection.
    """
    if zoom == 1.0 and degrees == 0.0:
        return rgb
    h, w = rgb.shape[:2]
    a = -math.radians(degrees)  # image rows grow downward: negate so positive turns counter-clockwise
    inv = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) / zoom  # rotate back, shrink
    to_px = np.diag([w / 2.0, h / 2.0])
    m = np.diag([2.0 / w, 2.0 / h]) @ inv @ to_px
    theta = torch.tensor(np.hstack([m, np.zeros((2, 1))]), dtype=torch.float32)[None]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out[0].numpy().transpose(1, 2, 0).copy()


def frames(
    brain: Brain,
    start: np.ndarray,
    objective: Objective,
    params: DreamParams,
    count: int,
    zoom: float = 1.05,
    degrees: float = 0.0,
    *,
    seed: int = 0,
    device: str = "cpu",
    plan: Plan | None = None,
    on_progress: Callable[[render.Progress], None] | None = None,
    on_step: Callable[[render.Progress], None] | None = None,
    compile: bool = False,
) -> Iterator[tuple[np.ndarray, render.DreamResult]]:
    """Yield `count` dreamt frames; frame k uses seed + k."""
    rgb = start
    for k in range(count):
        if k > 0:
            rgb = zoom_rotate(rgb, zoom, degrees)
        rgb, result = dream_rgb(brain, rgb, objective, params, seed=seed + k, device=device, plan=plan,
                                on_progress=on_progress, on_step=on_step, compile=compile)
        yield rgb, result
        if result.interrupted:
            return


def frame_dir(output: Path) -> Path:
    """Where the numbered PNGs of an animation go: `<stem>-frames/` beside it."""
    return output.with_name(f"{output.stem}-frames")


def write_animation(path: Path, images: list[np.ndarray], fps: float = 12.0) -> Path:
    """An animated GIF or WebP of the frames, looping forever, written atomically."""
    pics = [Image.fromarray(to_uint8(img), "RGB") for img in images]
    kwargs: dict[str, object] = {"save_all": True, "append_images": pics[1:], "loop": 0,
                                 "duration": round(1000 / fps)}
    if path.suffix.lower() == ".webp":
        kwargs["quality"] = 85
    with atomic_path(path) as tmp:
        pics[0].save(tmp, format="GIF" if path.suffix.lower() == ".gif" else "WEBP", **kwargs)
    return path
