"""Pictures made of strokes: cubic Bézier strokes rasterised differentiably in torch.

Each stroke is four control points, a width and an RGBA colour. A pixel's coverage is a ramp on
its distance to the curve (sampled as SEGMENTS straight pieces), which is what an SVG renderer
draws for `stroke-linecap="round"`, so gradients reach position, width and colour through the
anti-aliased edge (as in diffvg and CLIPDraw). The canvas is cut into tiles and each tile
composites, in order, only the strokes whose boxes reach it (a Bézier lies inside its control
points' box), so the cost grows with the strokes' area, not with strokes × pixels.

Coordinates are canvas units (the SVG's viewBox); `scale` pixels per unit renders any size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

SEGMENTS = 8  # straight pieces per curve: ~0.2 px off for a 30-pixel stroke bent round a 10-pixel radius
TILE = 8  # pixels a side of the compositing tiles (8 beat 16 and 32 at 256 px, 400 strokes: less padding)
BATCH_ELEMENTS = 1 << 23  # pixel-segment pairs computed at once (a few hundred MB with their gradients)
EPS = 1e-8


@dataclass
class Strokes:
    """N strokes: control points (N, 4, 2) as x, y in canvas units, widths (N,), RGBA (N, 4) in 0..1."""

    points: Tensor
    width: Tensor
    rgba: Tensor

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def detach(self) -> Strokes:
        """The values alone, on the CPU (what a file is written from)."""
        return Strokes(self.points.detach().cpu(), self.width.detach().cpu(), self.rgba.detach().cpu())


# --- pure geometry --------------------------------------------------------------------------------


def bezier(points: Tensor, samples: int = SEGMENTS + 1) -> Tensor:
    """Points on each cubic Bézier at `samples` evenly spaced t: (N, 4, 2) -> (N, samples, 2)."""
    t = torch.linspace(0.0, 1.0, samples, dtype=points.dtype, device=points.device)[None, :, None]
    p0, p1, p2, p3 = (points[:, i, None, :] for i in range(4))
    u = 1.0 - t
    return u ** 3 * p0 + 3 * u ** 2 * t * p1 + 3 * u * t ** 2 * p2 + t ** 3 * p3


def coverage(distance: Tensor, half_width: Tensor, soft: float = 1.0) -> Tensor:
    """How much of a pixel a stroke covers: 1 inside, 0 beyond the edge, a `soft`-pixel ramp between."""
    return (0.5 + (half_width - distance) / soft).clamp(0.0, 1.0)


def boxes(points: Tensor, width: Tensor, pad: float) -> Tensor:
    """Each stroke's pixel box (N, 4) as x0, y0, x1, y1: its control points' box grown by half its width."""
    lo = points.min(dim=1).values - (width / 2 + pad)[:, None]
    hi = points.max(dim=1).values + (width / 2 + pad)[:, None]
    return torch.cat([lo, hi], dim=1)


def over(background: Tensor, colours: Tensor, alphas: Tensor) -> Tensor:
    """Composite strokes in order over a background, for T tiles at once: background (T, 3, P),
    colours (T, L, 3), alphas (T, L, P) -> (T, 3, P).

    out = bg·Π(1-αᵢ) + Σ cᵢ·αᵢ·Π_{j>i}(1-αⱼ): the products are one reversed cumulative product, so the
    strokes of a tile composite at once instead of one after another.
    """
    kept = torch.cumprod((1.0 - alphas).flip(1), dim=1).flip(1)  # kept[i] = Π_{j>=i} (1-αⱼ)
    after = torch.cat([kept[:, 1:], torch.ones_like(kept[:, :1])], dim=1)
    return background * kept[:, :1] + torch.einsum("tlc,tlp->tcp", colours, alphas * after)


def distance2(px: Tensor, py: Tensor, curves: Tensor) -> Tensor:
    """Squared distance from pixel centres to polylines: px, py (T, P) and curves (T, L, S+1, 2) ->
    (T, L, P). The nearest segment is found without gradient (the minimum's gradient flows through it
    alone), then only that segment's distance is computed with gradient: S times less to keep."""
    ax, ay = curves[:, :, None, :-1, 0], curves[:, :, None, :-1, 1]  # (T, L, 1, S)
    abx, aby = curves[:, :, None, 1:, 0] - ax, curves[:, :, None, 1:, 1] - ay
    with torch.no_grad():
        inv = 1.0 / (abx * abx + aby * aby + EPS)
        apx, apy = px[:, None, :, None] - ax, py[:, None, :, None] - ay  # (T, L, P, S)
        t = (apx * abx).add_(apy * aby).mul_(inv).clamp_(0.0, 1.0)
        nearest = apx.sub_(t * abx).square_().add_(apy.sub_(t * aby).square_()).argmin(dim=-1, keepdim=True)
    shape = (*nearest.shape[:3], ax.shape[-1])

    def pick(v: Tensor) -> Tensor:
        return v.expand(shape).gather(-1, nearest)[..., 0]  # (T, L, P)

    ax, ay, abx, aby = pick(ax), pick(ay), pick(abx), pick(aby)
    apx, apy = px[:, None] - ax, py[:, None] - ay
    t = ((apx * abx + apy * aby) / (abx * abx + aby * aby + EPS)).clamp(0.0, 1.0)
    return (apx - t * abx).square() + (apy - t * aby).square()


# --- rasterising ----------------------------------------------------------------------------------


def rasterise(strokes: Strokes, size: tuple[int, int], background: Tensor, scale: float = 1.0,
              soft: float = 1.0, tile: int = TILE) -> Tensor:
    """Render strokes over `background` (3, H, W) in 0..1 at `size` (H, W) pixels: (3, H, W) in 0..1.

    Pixel (i, j) is sampled at its centre, (j + ½, i + ½) / scale in canvas units, as SVG renderers do.
    Tiles are done in batches: each tile gets the list of strokes that reach it (in order, padded to
    the longest list with invisible strokes), so a batch is a few tensor operations.
    """
    h, w = size
    pts = strokes.points * scale
    half = strokes.width * scale / 2
    curves = bezier(pts)
    with torch.no_grad():
        index, valid = tile_lists(boxes(pts, half * 2, soft), h, w, tile)
    rows, cols = -(-h // tile), -(-w // tile)
    bg = F.pad(background, (0, cols * tile - w, 0, rows * tile - h))
    bg = bg.reshape(3, rows, tile, cols, tile).permute(1, 3, 0, 2, 4).reshape(rows * cols, 3, tile * tile)
    local = torch.stack(torch.meshgrid(torch.arange(tile), torch.arange(tile), indexing="xy"), -1).reshape(-1, 2)
    local = local.to(pts) + 0.5
    origin = torch.stack(torch.meshgrid(torch.arange(cols), torch.arange(rows), indexing="xy"), -1).reshape(-1, 2)
    origin = origin.to(pts) * tile
    per_tile = max(1, index.shape[1] * SEGMENTS * tile * tile)
    batch = max(1, BATCH_ELEMENTS // per_tile)
    out = []
    # several batches: each one's intermediates are recomputed in the backward pass instead of kept
    # (the memory of one batch, not of the whole canvas, for a second forward pass)
    keep = rows * cols <= batch or not torch.is_grad_enabled()
    for t0 in range(0, rows * cols, batch):
        sl = slice(t0, t0 + batch)
        args = (curves, half, strokes.rgba, index[sl], valid[sl], origin[sl, None] + local, bg[sl], soft)
        out.append(_tiles(*args) if keep else checkpoint(_tiles, *args, use_reentrant=False))
    img = torch.cat(out).reshape(rows, cols, 3, tile, tile).permute(2, 0, 3, 1, 4)
    return img.reshape(3, rows * tile, cols * tile)[:, :h, :w]


def tile_lists(box: Tensor, h: int, w: int, tile: int) -> tuple[Tensor, Tensor]:
    """For each tile (row by row), the indices of the strokes whose boxes reach it, in stroke order,
    padded to the longest list: (tiles, L) indices and a (tiles, L) mask of the real ones."""
    rows, cols = -(-h // tile), -(-w // tile)
    x0 = (box[:, 0] / tile).floor().clamp(0, cols - 1).long()
    x1 = (box[:, 2] / tile).floor().clamp(0, cols - 1).long()
    y0 = (box[:, 1] / tile).floor().clamp(0, rows - 1).long()
    y1 = (box[:, 3] / tile).floor().clamp(0, rows - 1).long()
    inside = (box[:, 2] > 0) & (box[:, 0] < w) & (box[:, 3] > 0) & (box[:, 1] < h)
    ty, tx = torch.arange(rows, device=box.device)[:, None, None], torch.arange(cols, device=box.device)[None, :, None]
    hit = (ty >= y0) & (ty <= y1) & (tx >= x0) & (tx <= x1) & inside  # (rows, cols, N)
    hit = hit.reshape(rows * cols, -1)
    count = int(hit.sum(1).max()) if hit.numel() else 0
    order = torch.argsort((~hit).to(torch.int8), dim=1, stable=True)[:, :max(1, count)]  # hits first, in order
    return order, torch.gather(hit, 1, order)


def _tiles(curves: Tensor, half: Tensor, rgba: Tensor, index: Tensor, valid: Tensor, pixels: Tensor,
           bg: Tensor, soft: float) -> Tensor:
    """A batch of tiles: (T, L) stroke lists, (T, P, 2) pixel centres, (T, 3, P) background -> (T, 3, P)."""
    d2 = distance2(pixels[..., 0], pixels[..., 1], curves[index])
    alpha = coverage(torch.sqrt(d2 + EPS), half[index][..., None], soft) * (rgba[index, 3] * valid)[..., None]
    return over(bg, rgba[index, :3], alpha)


# --- a parametrisation for gradient ascent --------------------------------------------------------


class StrokeParam(torch.nn.Module):
    """Free parameters for N strokes, so any optimiser step leaves a drawable picture: widths within
    [min_width, max_width] and colours in 0..1 through sigmoids; with `reach` (canvas units) each
    stroke's first point is free and the other three lie within `reach` of it (see `bounded`), so
    no stroke stretches across the canvas (long strokes reach many tiles: slow, and rarely the dream's
    point). Without `reach` the points are free (recipes made before it)."""

    def __init__(self, strokes: Strokes, min_width: float, max_width: float, reach: float | None = None) -> None:
        super().__init__()
        self.min_width, self.max_width = float(min_width), float(max_width)
        self.reach = None if reach is None else float(reach)
        share = ((strokes.width - self.min_width) / (self.max_width - self.min_width)).clamp(1e-3, 1 - 1e-3)
        if self.reach is None:
            self.points = torch.nn.Parameter(strokes.points.clone())
        else:
            self.anchor = torch.nn.Parameter(strokes.points[:, :1].clone())
            self.offset = torch.nn.Parameter(unbounded(strokes.points[:, 1:] - strokes.points[:, :1], self.reach))
        self.width_logit = torch.nn.Parameter(torch.logit(share))
        self.rgba_logit = torch.nn.Parameter(torch.logit(strokes.rgba.clamp(1e-3, 1 - 1e-3)))

    def forward(self) -> Strokes:
        width = self.min_width + (self.max_width - self.min_width) * torch.sigmoid(self.width_logit)
        if self.reach is None:
            points = self.points
        else:
            points = torch.cat([self.anchor, self.anchor + bounded(self.offset, self.reach)], dim=1)
        return Strokes(points, width, torch.sigmoid(self.rgba_logit))


def bounded(offset: Tensor, reach: float) -> Tensor:
    """Offsets (..., 2) squashed into the disc of radius `reach`, direction kept: length r becomes
    reach·tanh(r/reach) (the identity for short offsets, smooth everywhere)."""
    r = offset.square().sum(-1, keepdim=True).add(EPS).sqrt()
    return offset * (reach * torch.tanh(r / reach) / r)


def unbounded(offset: Tensor, reach: float, room: float = 0.95) -> Tensor:
    """The inverse of `bounded`, offsets first shortened to `room`·reach (so the inverse is finite)."""
    r = offset.square().sum(-1, keepdim=True).add(EPS).sqrt()
    short = r.clamp(max=room * reach)
    return offset * (reach * torch.atanh(short / reach) / r)


def within(strokes: Strokes, reach: float, room: float = 0.95) -> Strokes:
    """The strokes with every control point within `room`·reach of its first one (direction kept)."""
    off = strokes.points[:, 1:] - strokes.points[:, :1]
    r = off.square().sum(-1, keepdim=True).add(EPS).sqrt()
    points = torch.cat([strokes.points[:, :1], strokes.points[:, :1] + off * (r.clamp(max=room * reach) / r)], 1)
    return Strokes(points, strokes.width, strokes.rgba)


def random_strokes(count: int, size: tuple[int, int], rng: np.random.Generator, *, reach: float = 0.06,
                   width: tuple[float, float] = (1.0, 4.0), colours: np.ndarray | None = None) -> Strokes:
    """`count` short strokes scattered over a canvas of `size` (H, W) units: each starts at a random
    place and wanders `reach` of the long side; colours are random unless `colours` (an HxWx3 image
    in 0..255 of the canvas size) gives them, read under each stroke's start."""
    h, w = size
    start = rng.uniform((0.0, 0.0), (w, h), size=(count, 1, 2))
    steps = rng.normal(0.0, reach * max(h, w) / math.sqrt(3), size=(count, 3, 2))
    points = np.concatenate([start, start + np.cumsum(steps, axis=1)], axis=1)
    widths = rng.uniform(*width, size=count)
    if colours is not None:
        ix = np.clip(start[:, 0, 0].astype(int), 0, w - 1)
        iy = np.clip(start[:, 0, 1].astype(int), 0, h - 1)
        rgb = colours[iy, ix] / 255.0
    else:
        rgb = rng.uniform(0.0, 1.0, size=(count, 3))
    alpha = rng.uniform(0.6, 1.0, size=(count, 1))
    rgba = np.concatenate([rgb, alpha], axis=1)
    as_t = lambda v: torch.tensor(v, dtype=torch.float32)
    return Strokes(as_t(points), as_t(widths), as_t(rgba))
