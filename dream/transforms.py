"""Transformation robustness: what the brain sees each step is the picture padded, jittered, scaled
and turned a little, so only features that survive every view grow (Distill, "Feature
Visualization", 2017). Each transform is a closure factory: `jitter(8)` returns a function of
(image batch, torch.Generator) -> image batch; `compose` chains them. Every random draw comes from
the generator the caller seeds from the recipe, so a picture is reproduced exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Transform = Callable[[Tensor, torch.Generator], Tensor]


def _pick(options: Sequence[float], gen: torch.Generator) -> float:
    return float(options[int(torch.randint(len(options), (1,), generator=gen))])


def pad(width: int, value: float = 0.5) -> Transform:
    """A constant border (mid grey in 0..1 RGB), so shifts and turns do not wrap edges around."""

    def fn(x: Tensor, gen: torch.Generator) -> Tensor:
        return F.pad(x, (width,) * 4, mode="constant", value=value)

    return fn


def jitter(d: int) -> Transform:
    """A random crop that shifts the picture by up to d-1 pixels each way (it shrinks by d-1)."""

    def fn(x: Tensor, gen: torch.Generator) -> Tensor:
        if d <= 1:
            return x
        dy, dx = (int(v) for v in torch.randint(d, (2,), generator=gen))
        h, w = x.shape[-2:]
        return x[..., dy:h - (d - 1) + dy, dx:w - (d - 1) + dx]

    return fn


def random_scale(scales: Sequence[float]) -> Transform:
    """Resize by one of `scales` (bilinear), so features must work at several sizes."""

    def fn(x: Tensor, gen: torch.Generator) -> Tensor:
        s = _pick(scales, gen)
        if s == 1.0:
            return x
        h, w = x.shape[-2:]
        return F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear",
                             align_corners=False)

    return fn


def random_rotate(degrees: Sequence[float]) -> Transform:
    """Turn by one of `degrees` about the centre (bilinear, border kept by the earlier pad)."""

    def fn(x: Tensor, gen: torch.Generator) -> Tensor:
        a = math.radians(_pick(degrees, gen))
        if a == 0.0:
            return x
        c, s = math.cos(a), math.sin(a)
        theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    return fn


def random_crop(fractions: Sequence[float]) -> Transform:
    """A random square part of the picture (one of `fractions` of its shorter side), enlarged back to
    the picture's size: every part of the picture must show the objective on its own, so a class is
    painted whole in many places instead of as texture only the whole picture adds up to."""

    def fn(x: Tensor, gen: torch.Generator) -> Tensor:
        h, w = x.shape[-2:]
        side = max(1, round(min(h, w) * _pick(fractions, gen)))
        if side >= min(h, w):
            return x
        y0 = int(torch.randint(h - side + 1, (1,), generator=gen))
        x0 = int(torch.randint(w - side + 1, (1,), generator=gen))
        return F.interpolate(x[..., y0:y0 + side, x0:x0 + side], size=(h, w), mode="bilinear", align_corners=False)

    return fn


def compose(transforms: Sequence[Transform]) -> Transform:
    """Apply the transforms in order, each with the same generator."""

    def fn(x: Tensor, gen: torch.Generator) -> Tensor:
        for t in transforms:
            x = t(x, gen)
        return x

    return fn


def standard(size: int) -> list[Transform]:
    """The standard robust set, scaled to the picture's side (lucid's tuned at 224: pad 12, jitter 8,
    scales 0.9..1.1, turns of -10..10 degrees, jitter 4)."""
    k = max(1.0, size / 224)
    return [pad(round(12 * k)), jitter(round(8 * k)), random_scale([1 + (i - 5) / 50 for i in range(11)]),
            random_rotate(list(range(-10, 11))), jitter(round(4 * k))]


def light(size: int) -> list[Transform]:
    """A gentler set for pictures started from a photo: small shifts and turns, no scale."""
    k = max(1.0, size / 224)
    return [pad(round(6 * k)), jitter(round(6 * k)), random_rotate(list(range(-4, 5)))]


def crops(size: int) -> list[Transform]:
    """The standard set with random parts of half to all of the picture: for classes (see random_crop)."""
    k = max(1.0, size / 224)
    return [pad(round(12 * k)), jitter(round(8 * k)), random_crop([0.5 + i / 20 for i in range(11)]),
            random_rotate(list(range(-10, 11))), jitter(round(4 * k))]


def zoom(size: int) -> list[Transform]:
    """`crops` with each view then shrunk to 0.6..1 of its size: the brain sees the picture from a half
    crop enlarged 2x down to the whole picture at 0.6x, so the class must read at every scale
    between (the whole picture seen small is how another eye reads it at a glance); the default for classes."""
    k = max(1.0, size / 224)
    return [pad(round(12 * k)), jitter(round(8 * k)), random_crop([0.5 + i / 20 for i in range(11)]),
            random_scale([0.6 + i / 20 for i in range(9)]), random_rotate(list(range(-10, 11))), jitter(round(4 * k))]


def none(size: int) -> list[Transform]:
    return []


SETS: dict[str, Callable[[int], list[Transform]]] = {"standard": standard, "crops": crops, "zoom": zoom,
                                                     "light": light, "none": none}
