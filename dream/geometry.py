"""Octave sizes, tile layouts, blend weights and jitter: the dream's geometry as pure functions.

Kept free of torch so each rule can be tested on its own with exact numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from zoo.errors import UserError


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Sizes from the smallest octave to the full image, as the DeepDream notebook builds them.

    The notebook zooms each octave by 1/scale from the one above (scipy's zoom rounds the size),
    so the sizes are rounded from the previous octave, not from the original.
    """
    if octaves < 1:
        raise ValueError(f"octaves must be at least 1, got {octaves}")
    if scale <= 0:
        raise ValueError(f"octave scale must be positive, got {scale}")
    sizes = [(height, width)]
    for _ in range(octaves - 1):
        h, w = sizes[-1]
        sizes.append((max(1, round(h / scale)), max(1, round(w / scale))))
    return sizes[::-1]


UNITS_PER_INCH = {"in": 1.0, "cm": 2.54, "mm": 25.4}
_PRINT = re.compile(r"(?P<w>\d+(\.\d+)?)(x(?P<h>\d+(\.\d+)?))?(?P<unit>in|cm|mm)@(?P<dpi>\d+)")


def print_size(spec: str) -> tuple[str, int | None]:
    """A size spelled as a print, `18x18in@300` (or `30cm@300`, `210x297mm@300`: W[xH]UNIT@DPI), as
    pixels ("5400x5400", 300); any other spec comes back as it is, with no dpi."""
    text = spec.lower().strip()
    m = _PRINT.fullmatch(text)
    if m is None:
        if re.search(r"(in|cm|mm)", text) or "@" in text:
            raise ValueError(f"size {spec!r} is not a print size W[xH]UNIT@DPI (UNIT in, cm or mm), "
                             "e.g. 18x18in@300")
        return spec, None
    dpi = int(m["dpi"])
    if dpi < 1:
        raise ValueError(f"size {spec!r}: the dpi must be positive")
    per_inch = UNITS_PER_INCH[m["unit"]]
    pixels = [round(float(v) / per_inch * dpi) for v in (m["w"], m["h"]) if v is not None]
    if min(pixels) < 1:
        raise ValueError(f"size {spec!r} is less than a pixel at {dpi} dpi")
    return "x".join(map(str, pixels)), dpi


def scaled_size(height: int, width: int, spec: str) -> tuple[int, int]:
    """Parse `--size` ("W" keeps the aspect ratio, "WxH" sets both, in pixels or as a print:
    `18x18in@300`) into (height, width)."""
    text = print_size(spec)[0].lower().strip()
    if height < 1 or width < 1:
        raise ValueError(f"a picture of {width}x{height} pixels cannot be scaled to {spec!r}")
    try:
        if "x" in text:
            w_text, h_text = text.split("x", 1)
            new_w, new_h = int(w_text), int(h_text)
        else:
            new_w = int(text)
            new_h = max(1, round(height * new_w / width))
    except ValueError:
        raise ValueError(f"size {spec!r} is not W or WxH in pixels") from None
    if new_w < 1 or new_h < 1:
        raise ValueError(f"size {spec!r} must be positive")
    return new_h, new_w


def size_option(height: int, width: int, spec: str) -> tuple[int, int]:
    """`scaled_size` for the `--size` option (and a recipe's size): a bad spec is one line naming it."""
    try:
        return scaled_size(height, width, spec)
    except ValueError as e:
        raise UserError(f"--size: {e}") from None


@dataclass(frozen=True)
class Span:
    """One tile along one axis: pixels [start, stop) are fed to the net, weights apply to them."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def cut_points(length: int, core: int, offset: int = 0, min_core: int = 1) -> list[int]:
    """Interior boundaries between tile cores along one axis.

    Cuts fall at `offset + k * core`; a cut that would leave a core narrower than `min_core` at
    either end is dropped, merging that sliver into its neighbour.
    """
    if core < 1:
        raise ValueError(f"tile core must be at least 1 pixel, got {core}")
    cuts = []
    pos = offset % core if offset % core else core
    while pos < length:
        cuts.append(pos)
        pos += core
    while cuts and cuts[0] < min_core:
        cuts.pop(0)
    while cuts and length - cuts[-1] < min_core:
        cuts.pop()
    return cuts


def tile_spans(length: int, cuts: list[int], margin: int) -> list[Span]:
    """Tiles along one axis: each core [cut_i, cut_i+1) widened by `margin` on its inner sides."""
    bounds = [0, *cuts, length]
    return [
        Span(max(0, lo - margin), min(length, hi + margin)) for lo, hi in zip(bounds[:-1], bounds[1:])
    ]


def blend_weights(length: int, cuts: list[int], margin: int) -> list[np.ndarray]:
    """Per-tile weights along one axis that sum to exactly 1 at every pixel.

    Around each cut the left tile fades out and the right tile fades in over `margin` pixels
    centred on the cut; each weight is zero within margin/2 of its tile's inner edge, so a pixel
    only takes gradient from tiles that see at least margin/2 of context around it.
    """
    spans = tile_spans(length, cuts, margin)
    bounds = [0, *cuts, length]
    out = []
    for i, span in enumerate(spans):
        x = np.arange(span.start, span.stop, dtype=np.float64) + 0.5
        w = np.ones_like(x)
        if i > 0:
            w = np.minimum(w, _ramp(x, bounds[i], margin))
        if i < len(spans) - 1:
            w = np.minimum(w, 1.0 - _ramp(x, bounds[i + 1], margin))
        out.append(w.astype(np.float32))
    return out


def _ramp(x: np.ndarray, centre: int, margin: int) -> np.ndarray:
    """0 before centre - margin/2, 1 after centre + margin/2, linear between (pixel centres)."""
    half = margin / 2.0
    if half <= 0:
        return (x >= centre).astype(np.float64)
    return np.clip((x - (centre - half)) / margin, 0.0, 1.0)


@dataclass(frozen=True)
class Tile:
    """A rectangle of the image fed to the net, with the weights its gradient is blended by."""

    rows: Span
    cols: Span
    row_weight: np.ndarray
    col_weight: np.ndarray

    def weight(self) -> np.ndarray:
        return np.outer(self.row_weight, self.col_weight)


def tile_grid(
    height: int, width: int, tile: int, margin: int, offset: tuple[int, int] = (0, 0), min_core: int = 1
) -> list[Tile]:
    """Tiles covering the image, row-major; their blended weights sum to 1 at every pixel.

    `tile` is the largest side fed to the net; each core is tile - 2 * margin. `offset` moves the
    grid of cuts (the per-step random shift that keeps seams from settling anywhere).
    """
    core = tile - 2 * margin
    if core < max(1, margin):
        raise ValueError(f"tile {tile} leaves a core narrower than its margin {margin}")
    min_core = max(min_core, margin)
    row_cuts = cut_points(height, core, offset[0], min_core)
    col_cuts = cut_points(width, core, offset[1], min_core)
    rows = tile_spans(height, row_cuts, margin)
    cols = tile_spans(width, col_cuts, margin)
    row_w = blend_weights(height, row_cuts, margin)
    col_w = blend_weights(width, col_cuts, margin)
    return [Tile(r, c, rw, cw) for r, rw in zip(rows, row_w) for c, cw in zip(cols, col_w)]


def jitter_shift(rng: np.random.Generator, jitter: int) -> tuple[int, int]:
    """The notebook's random roll: (dy, dx), each uniform in [-jitter, jitter]."""
    if jitter <= 0:
        return 0, 0
    dx, dy = rng.integers(-jitter, jitter + 1, size=2)
    return int(dy), int(dx)


def align_down(value: int, align: int) -> int:
    """Largest multiple of `align` not above `value` (at least `align`)."""
    return max(align, value // align * align)
