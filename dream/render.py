"""The DeepDream loop: octaves, jitter, normalised gradient ascent and clipping, with tiled gradients.

Faithful to the DeepDream notebook: octave bases are successive bilinear zooms of the image, the
detail a dream adds is carried up from one octave to the next, each step rolls the image by a
random jitter, takes one ascent step scaled by the mean absolute gradient, unrolls it and clips to
the model's valid pixel range in network space. Gradients are computed tile by tile (each tile cut
from the rolled image by index, so no full-size copy is made) and blended where tiles overlap;
the net runs only as deep as the objective's deepest blob. Display and saving stay outside: the
caller passes a progress callback and gets the image back, also when interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from zoo.dream import alloc, distributed, geometry
from zoo.dream.objectives import REGION, Objective, Region
from zoo.dream.presets import DreamParams

from zoo.errors import UserError

Net = Callable[..., dict[str, Tensor]]  # net(x, outputs=[...]) -> {blob: tensor}


@dataclass(frozen=True)
class Progress:
    """Where the loop is; octaves, steps and tiles count from 1."""

    octave: int
    octaves: int
    step: int
    steps: int
    tile: int
    tiles: int
    size: tuple[int, int]
    image: Tensor | None = field(default=None, repr=False, compare=False)  # the octave image (net space)


@dataclass
class DreamResult:
    """The dreamt image in net space (1x3xHxW at the input's size) and how far the loop got."""

    image: Tensor
    interrupted: bool
    steps_done: int
    octave_sizes: list[tuple[int, int]]


@dataclass(frozen=True)
class TilePlan:
    """How gradients are split: tile side, blend margin and the grid alignment (the net's stride)."""

    tile: int
    margin: int
    align: int
    whole: int = 0  # the side whose area an image may have and still run whole; 0: the tile's

    def splits(self, height: int, width: int) -> bool:
        """Whether an image this size is cut: only when its area exceeds `whole` squared (activations,
        hence memory, grow with the area), so a 600x400 photo with tiles of 560 runs whole."""
        side = self.whole or self.tile
        return height * width > side * side

    def tiles(self, height: int, width: int, offset: tuple[int, int] = (0, 0)) -> list[geometry.Tile]:
        if not self.splits(height, width):
            return [geometry.Tile(geometry.Span(0, height), geometry.Span(0, width), _ones(height), _ones(width))]
        return geometry.tile_grid(height, width, self.tile, self.margin, offset, min_core=self.align)


def _ones(n: int) -> np.ndarray:
    return np.ones(n, dtype=np.float32)


def plan_tiles(tile: int, align: int, margin: int | None = None) -> TilePlan:
    """A tile plan with the tile rounded to the alignment and a margin of about 1/16 of the tile."""
    tile = geometry.align_down(tile, align)
    if margin is None:
        margin = geometry.align_down(tile // 16, align)
    if tile - 2 * margin < margin:
        raise ValueError(f"tile {tile} is too small for margin {margin}")
    return TilePlan(tile, margin, align)


def objective_gradient(
    net: Net, objective: Objective, x: Tensor, autocast: bool = False
) -> tuple[float, Tensor]:
    """The objective's value and its gradient with respect to the input x (1x3xHxW).

    With `autocast` (CUDA) the net runs in bfloat16, whose range is float32's, so small gradients do
    not underflow; the image, the objective and the step stay in float32.
    """
    x = x.detach().requires_grad_(True)
    ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with ctx:
        acts = net(x, outputs=list(objective.blobs))
    value = objective({k: v.float() for k, v in acts.items()})
    (grad,) = torch.autograd.grad(value, x)
    return float(value.detach()), grad


def tiled_gradient(
    net: Net,
    objective: Objective,
    x: Tensor,
    tiles: Sequence[geometry.Tile],
    shift: tuple[int, int] = (0, 0),
    autocast: bool = False,
    on_tile: Callable[[int, int], None] | None = None,
) -> tuple[float, Tensor]:
    """Gradient of the objective on x rolled by `shift`, returned unrolled (in x's own frame).

    Each tile is gathered from the rolled image by wrapped indices and its gradient, times the
    tile's blend weight, is added back at the same indices: only tile-sized copies are made. The
    value returned is the sum of the tiles' values (overlaps count in each tile). Under torchrun
    the ranks compute one tile each per round and swap them (distributed.gather_parts), and every
    rank adds all of them in tile order.
    """
    _, _, h, w = x.shape
    dy, dx = shift
    grad = torch.zeros_like(x)
    total = 0.0
    n = len(tiles)
    if n == 1 and tiles[0].rows.length == h and tiles[0].cols.length == w:  # untiled: no index copies
        crop = torch.roll(x, (dy, dx), dims=(2, 3)) if (dy or dx) else x
        total, g = _tile_gradient(net, objective, crop, tiles[0], shift, (h, w), autocast)
        if on_tile is not None:
            on_tile(1, 1)
        return total, (torch.roll(g, (-dy, -dx), dims=(2, 3)) if (dy or dx) else g)

    def where(tile: geometry.Tile) -> tuple[Tensor, Tensor]:
        rows = (torch.arange(tile.rows.start, tile.rows.stop, device=x.device) - dy) % h
        cols = (torch.arange(tile.cols.start, tile.cols.stop, device=x.device) - dx) % w
        return rows[:, None], cols[None, :]

    shared = distributed.sharing(tiles)
    for group in distributed.tile_rounds(tiles):  # one tile a round, or one per rank under torchrun
        i = distributed.mine(group, tiles)
        part = None
        if i is not None:
            rows, cols = where(tiles[i])
            value, g = _tile_gradient(net, objective, x[:, :, rows, cols], tiles[i], shift, (h, w), autocast)
            total += value
            part = g * torch.from_numpy(tiles[i].weight()).to(g)
        parts = distributed.gather_parts(group, part, [(tiles[j].rows.length, tiles[j].cols.length)
                                                       for j in group], x) if shared else [part]
        for j, p in zip(group, parts):
            rows, cols = where(tiles[j])
            grad[:, :, rows, cols] += p
            if on_tile is not None:
                on_tile(j + 1, n)
    if shared:
        total = distributed.sum_value(total)
    return total, grad


def _tile_gradient(net: Net, objective: Objective, crop: Tensor, tile: geometry.Tile, shift: tuple[int, int],
                   size: tuple[int, int], autocast: bool) -> tuple[float, Tensor]:
    token = REGION.set(Region.of(tile, shift, size))  # where this crop lies (for one-neuron targets)
    try:
        return objective_gradient(net, objective, crop, autocast)
    finally:
        REGION.reset(token)


def ascent_step(x: Tensor, grad: Tensor, step: float, lo: Tensor | None, hi: Tensor | None) -> None:
    """In place: x += step / mean|grad| * grad, then clip to [lo, hi] (the notebook's update)."""
    scale = grad.abs().mean()
    if scale > 0:
        x.add_(grad, alpha=float(step / scale))
    if lo is not None and hi is not None:
        torch.maximum(x, lo, out=x)
        torch.minimum(x, hi, out=x)


def zoom(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize mapping corner pixels to corner pixels, like scipy.ndimage.zoom(order=1)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def fits(net: Net, blobs: Sequence[str], size: tuple[int, int], device: torch.device | str = "cpu") -> bool:
    """Whether an input of this size reaches every blob with at least one position."""
    try:
        with torch.no_grad():
            out = net(torch.zeros(1, 3, *size, device=device), outputs=list(blobs))
    except (RuntimeError, ValueError, UserError):  # the converter reports a size that does not fit
        return False
    return all(out[b].numel() > 0 for b in blobs)


def dream(
    net: Net,
    objective: Objective,
    image: Tensor,
    params: DreamParams,
    *,
    bounds: tuple[Tensor, Tensor] | None = None,
    tiles: TilePlan | None = None,
    seed: int = 0,
    autocast: bool = False,
    min_size: tuple[int, int] = (1, 1),
    pixel_scale: float = 1.0,
    inplace: bool = False,
    on_progress: Callable[[Progress], None] | None = None,
    on_step: Callable[[Progress], None] | None = None,
) -> DreamResult:
    """Dream on a net-space image (1x3xHxW); returns the result at the same size.

    `step` is in pixel units (0..255) as in the notebook; `pixel_scale` is how many net-space
    units one pixel unit is (the preprocessing's scale). Octaves smaller than `min_size` are
    skipped (the net cannot see them); Ctrl-C stops the loop and returns the image so far, the
    current detail carried up to full size. With `inplace` the loop may write into `image` (saves a
    full-size copy at print sizes). `on_step` is called after each ascent step with the stepped image
    (previews show exactly what a step made).
    """
    with flushed_denormals(image.device.type == "cpu"):
        return _dream(net, objective, image, params, bounds=bounds, tiles=tiles, seed=seed, autocast=autocast,
                      min_size=min_size, pixel_scale=pixel_scale, inplace=inplace, on_progress=on_progress,
                      on_step=on_step)


@contextlib.contextmanager
def flushed_denormals(enabled: bool):
    """Backward passes make denormal floats that slow CPU kernels up to 15x; zero is the same picture.

    The flag is process-wide (numpy sees it too), so it is switched back off when the dream ends.
    """
    if not enabled:
        yield
        return
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def _dream(net, objective, image, params, *, bounds, tiles, seed, autocast, min_size, pixel_scale, inplace,
           on_progress, on_step=None) -> DreamResult:
    alloc.reuse_freed_memory()  # every step's activations from the heap, not fresh page-faulted mmaps
    rng = np.random.default_rng(seed)
    h, w = image.shape[-2:]
    sizes = usable_octaves(h, w, params, min_size)
    if not sizes:
        raise ValueError(f"image {w}x{h} is smaller than the net's minimum {min_size[1]}x{min_size[0]}")
    step = params.step * abs(pixel_scale)
    bases = _octave_bases(image, sizes)
    lo, hi = (b.to(image).reshape(1, 3, 1, 1) for b in bounds) if bounds is not None else (None, None)
    plan = distributed.same_plan(tiles or TilePlan(max(h, w), 0, 1))  # rank 0's plan under torchrun
    detail: Tensor | None = None
    x = bases[0]
    done = 0
    try:
        for k, base in enumerate(bases):
            last = k == len(bases) - 1
            if detail is not None:
                x = base + zoom(detail, tuple(base.shape[-2:]))
            else:
                x = base if (inplace and last) else base.clone()
            detail = None
            bh, bw = base.shape[-2:]
            for i in range(params.iterations):
                shift = geometry.jitter_shift(rng, params.jitter)
                offset = _grid_offset(rng, plan) if plan.splits(bh, bw) else (0, 0)
                layout = plan.tiles(bh, bw, offset)

                def report(t: int, n: int, k: int = k, i: int = i, size: tuple[int, int] = (bh, bw)) -> None:
                    if on_progress is not None:
                        on_progress(Progress(k + 1, len(bases), i + 1, params.iterations, t, n, size, x))  # noqa: B023

                _, grad = tiled_gradient(net, objective, x, layout, shift, autocast, report)
                ascent_step(x, grad, step, lo, hi)
                del grad
                done += 1
                if on_step is not None:
                    parts = len(layout)
                    on_step(Progress(k + 1, len(bases), i + 1, params.iterations, parts, parts, (bh, bw), x))
            if not last:
                detail = x - base
    except KeyboardInterrupt:
        full = bases[-1]
        if x.shape[-2:] != full.shape[-2:] and len(bases) > 1:
            x = full + zoom(x - bases[_index_of(bases, x)], tuple(full.shape[-2:]))
        return DreamResult(x.detach(), True, done, sizes)
    return DreamResult(x.detach(), False, done, sizes)


def usable_octaves(h: int, w: int, params: DreamParams, min_size: tuple[int, int]) -> list[tuple[int, int]]:
    """The notebook's octave sizes, smallest first, without those the net cannot see."""
    sizes = geometry.octave_sizes(h, w, params.octaves, params.octave_scale)
    return [s for s in sizes if s[0] >= min_size[0] and s[1] >= min_size[1]]


def _index_of(bases: list[Tensor], x: Tensor) -> int:
    return next(i for i, b in enumerate(bases) if b.shape == x.shape)


def _octave_bases(image: Tensor, sizes: list[tuple[int, int]]) -> list[Tensor]:
    """Successive zooms down from the full image (as the notebook does), smallest first."""
    bases = [image]
    for size in reversed(sizes[:-1]):
        bases.append(zoom(bases[-1], size))
    return bases[::-1]


def _grid_offset(rng: np.random.Generator, plan: TilePlan) -> tuple[int, int]:
    """A random shift of the tile grid, in whole alignment steps, so seams never settle."""
    core = plan.tile - 2 * plan.margin
    steps = max(1, core // plan.align)
    oy, ox = rng.integers(0, steps, size=2)
    return int(oy) * plan.align, int(ox) * plan.align
