"""The legible loop (feature visualisation): a parametrised picture, seen through random transforms,
optimised with Adam so the brain's objective rises. What it paints reads as the objective to other
eyes, where classic DeepDream's normalised ascent on pixels mostly fools the brain it climbs.

`Legible` is the part of a recipe that asks for it (absent: the classic loop, unchanged). The loop
draws every random number from one torch.Generator seeded by the recipe's seed; display and files
stay outside (a step callback gets the picture).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from zoo.dream import params as param_mod
from zoo.dream import render, transforms
from zoo.dream.objectives import Objective
from zoo.dream.presets import Legible

Net = Callable[..., dict[str, Tensor]]


def to_net(pre, rgb01: Tensor) -> Tensor:
    """Preprocess in torch (differentiable): RGB 0..1 (N,3,H,W) to the net's space."""
    x = rgb01 * 255.0
    if pre.channel_order == "BGR":
        x = x.flip(1)
    mean = torch.tensor(list(pre.mean), dtype=x.dtype, device=x.device).reshape(1, 3, 1, 1)
    x = (x - mean) * float(pre.scale)
    return x.transpose(2, 3) if pre.transpose else x


def diversity(blob: str, weight: float) -> Objective:
    """Pushes a batch's pictures apart: minus the mean cosine similarity of their Gram matrices at
    `blob` (styles, not positions, must differ), as in Distill's feature visualisation."""

    def fn(a) -> Tensor:
        x = a[blob]
        n, c = x.shape[:2]
        if n < 2:
            return x.sum() * 0.0
        flat = x.reshape(n, c, -1)
        gram = torch.einsum("ncp,ndp->ncd", flat, flat).reshape(n, -1)
        gram = torch.nn.functional.normalize(gram, dim=1)
        sim = gram @ gram.T
        off = (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))
        return -weight * off * x[0].numel()

    return Objective(fn, [blob], f"diversity({blob})")


def dream(
    net: Net,
    objective: Objective,
    pre,
    size: tuple[int, int],
    settings: Legible,
    *,
    seed: int = 0,
    start: np.ndarray | None = None,
    on_progress: Callable[[render.Progress], None] | None = None,
    on_step: Callable[[render.Progress], None] | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, render.DreamResult]:
    """Optimise `settings.diversity` pictures of (H, W) for the objective; returns them as RGB
    0..255 floats (N, H, W, 3) and how far it got (Ctrl-C keeps the pictures so far)."""
    with render.flushed_denormals(device == "cpu"):
        return _dream(net, objective, pre, size, settings, seed=seed, start=start, on_progress=on_progress,
                      on_step=on_step, device=device)


def _dream(net, objective, pre, size, settings, *, seed, start, on_progress, on_step, device):
    gen = torch.Generator().manual_seed(seed)
    settings = settings.for_start(start is not None)
    colour = param_mod.Colour(np.array(settings.colour) if settings.decorrelate and settings.colour else None)
    p = param_mod.make(settings.param, (settings.diversity, 3, *size), colour, gen, settings.decay)
    for t in p.params():
        t.data = t.data.to(device)
    if start is not None:
        rgb01 = torch.from_numpy(np.ascontiguousarray(start.transpose(2, 0, 1))).float()[None] / 255.0
        p.from_rgb(rgb01.expand(settings.diversity, -1, -1, -1).contiguous())
    tf = transforms.compose(transforms.SETS[settings.transforms](max(size)))
    opt = torch.optim.Adam(p.params(), lr=settings.lr)
    blobs = list(objective.blobs)
    done, interrupted = 0, False
    try:
        for i in range(settings.steps):
            if on_progress is not None:
                on_progress(render.Progress(1, 1, i + 1, settings.steps, 1, 1, size))
            opt.zero_grad(set_to_none=True)
            x = to_net(pre, tf(p.rgb(), gen).to(device))
            value = objective(net(x, outputs=blobs))
            (-value).backward()
            opt.step()
            done += 1
            if on_step is not None:
                with torch.no_grad():
                    shown = to_net(pre, p.rgb()[:1])
                on_step(render.Progress(1, 1, i + 1, settings.steps, 1, 1, size, shown))
    except KeyboardInterrupt:
        interrupted = True
    with torch.no_grad():
        rgb = (p.rgb() * 255.0).permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)
    return rgb, render.DreamResult(torch.empty(0), interrupted, done, [size])


def strip(pictures: np.ndarray) -> np.ndarray:
    """A batch of pictures (N, H, W, 3) side by side, for one file."""
    return np.concatenate(list(pictures), axis=1) if len(pictures) > 1 else pictures[0]


def colour_for(brain, dataset: str | None = None) -> tuple[np.ndarray, str]:
    """The colour transform for a brain and where it comes from: a folder of pictures when given,
    else the covariance its card records of its training pictures (`zoo train` measures it),
    else ImageNet's."""
    if dataset:
        from pathlib import Path

        return param_mod.folder_colour(Path(dataset)), f"pictures in {dataset}"
    if getattr(brain, "colour_cov", ()):
        return param_mod.colour_from_covariance(np.array(brain.colour_cov)), "its training pictures"
    return param_mod.imagenet_colour(), "ImageNet"
