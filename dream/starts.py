"""Starting images: a photo, noise, a chromatic gradient or a solid colour (RGB float 0..255, HxWx3).

Artists report that the start matters as much as the brain, so each start is one small function in
a registry, chosen by `--init KIND[:ARG]`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageOps
from zoo.dream import svg

from zoo import memory
from zoo.errors import UserError
from zoo.io import regular_file

MAX_PIXELS = memory.MAX_PIXELS  # print sizes are the point; PIL's bomb check sits just above them
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
DECODE_BYTES_PER_PIXEL = 16  # the decoded bytes and their float32 copy
BYTES_PER_PIXEL = 64  # what a dream holds per pixel: float start, net-space image, octave bases, gradient


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) an image file shows, read from its header without decoding it (an SVG:
    from its width/height/viewBox, see dream/svg.py)."""
    path = regular_file(path)
    if svg.is_svg(path):
        return svg.svg_size(path)
    return memory.image_header(path).upright


def check_memory(size: tuple[int, int], what: str, per_pixel: int = BYTES_PER_PIXEL) -> None:
    """Refuse, before anything is allocated, a dream (or a decode) whose full-size buffers do not fit."""
    from zoo.memory import NotEnoughMemory, available_bytes, fits

    h, w = size
    need = h * w * per_pixel
    avail = available_bytes()
    if h * w > MAX_PIXELS or not fits(need, avail):
        raise NotEnoughMemory(f"{what}: {w}x{h} needs about {need / 2**30:.1f} GiB of memory to dream; "
                              f"{avail / 2**30:.1f} GiB is available (at most 20000x20000; use a smaller --size)")


def check_image_file(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image, from its header alone, after proving load_image's decode fits
    in free memory and the file's structure reads (PIL's verify: chunk checksums, no pixels). What
    the studio's web server does with an upload: the decode itself happens in the worker."""
    from zoo.memory import check_image

    size = image_size(path)
    check_image(path, DECODE_BYTES_PER_PIXEL)
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception as e:  # noqa: BLE001 - every decoder failure is one line
        memory.refuse_image(path, e)
    return size


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to RGB float32, honouring EXIF orientation; one-line error if it cannot.

    An SVG is rendered at `size` (H, W) when given (a vector has no pixels of its own to resize),
    else at the size it declares; a bitmap ignores `size` (the caller resizes it)."""
    path = Path(path)
    if svg.is_svg(path):
        size = size or image_size(path)
        check_memory(size, str(path), DECODE_BYTES_PER_PIXEL)
        return svg.rasterise(path, size)
    check_memory(image_size(path), str(path), DECODE_BYTES_PER_PIXEL)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"), dtype=np.float32)
    except Exception as e:  # noqa: BLE001 - every decoder failure is one line
        memory.refuse_image(path, e)
    raise AssertionError


def resize_rgb(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an RGB float image to (height, width) with Lanczos filtering (keeps float precision)."""
    h, w = size
    if img.shape[:2] == (h, w):
        return img
    out = np.empty((h, w, 3), np.float32)
    for c in range(3):
        out[..., c] = np.asarray(Image.fromarray(np.ascontiguousarray(img[..., c])).resize((w, h), Image.LANCZOS))
    np.clip(out, 0, 255, out=out)
    return out


def _number(arg: str, default: float, lo: float, hi: float, what: str) -> float:
    """A start's numeric argument, finite and in range (nan and inf are refused by name)."""
    if not arg:
        return default
    try:
        v = float(arg)
    except ValueError:
        raise UserError(f"{what} {arg!r} is not a number") from None
    if not lo <= v <= hi:
        raise UserError(f"{what} {arg!r}: must be between {lo:g} and {hi:g}")
    return v


def noise(size: tuple[int, int], arg: str, rng: np.random.Generator) -> np.ndarray:
    """Grey noise like the notebook's dream from scratch; ARG is the spread (default 32)."""
    spread = _number(arg, 32.0, 0.0, 255.0, "noise spread")
    return (100.0 + rng.uniform(0.0, spread, size=(*size, 3))).astype(np.float32)


def gradient(size: tuple[int, int], arg: str, rng: np.random.Generator) -> np.ndarray:
    """Hue sweeps along a direction, saturation fades across it. ARG turns the direction (degrees,
    clockwise on screen): 0 sweeps left to right (the default), 90 top to bottom, 45 along the diagonal."""
    h, w = size
    theta = np.deg2rad(_number(arg, 0.0, -360.0, 360.0, "gradient direction (degrees)"))
    c, s = np.cos(theta), np.sin(theta)
    c, s = (0.0 if abs(c) < 1e-12 else c), (0.0 if abs(s) < 1e-12 else s)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    along, across = x * c + y * s, y * c - x * s
    hue = (along - along.min()) / (abs(w * c) + abs(h * s))  # 0 up to (not reaching) 1, as at 0 degrees
    span = abs((h - 1) * c) + abs((w - 1) * s)
    sat = 1.0 - 0.65 * ((across - across.min()) / span if span else 0.0)
    return hsv_to_rgb(hue % 1.0, sat, 0.9)


def color(size: tuple[int, int], arg: str, rng: np.random.Generator) -> np.ndarray:
    """A solid colour: ARG is any PIL colour ("#ff8800", "teal"); mid grey when not given."""
    try:
        rgb = ImageColor.getrgb(arg or "#808080")[:3]
    except ValueError:
        raise UserError(f"colour {arg!r} is not a colour name or #rrggbb") from None
    return np.broadcast_to(np.array(rgb, dtype=np.float32), (*size, 3)).copy()


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: float) -> np.ndarray:
    """HSV (all in 0..1) to RGB 0..255 float32."""
    i = np.floor(h * 6.0) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    vv = np.full_like(h, v)
    table = [(vv, t, p), (q, vv, p), (p, vv, t), (p, q, vv), (t, p, vv), (vv, p, q)]
    out = np.zeros((*h.shape, 3))
    for k, chans in enumerate(table):
        mask = i == k
        for c in range(3):
            out[..., c][mask] = chans[c][mask]
    return (out * 255.0).astype(np.float32)


Start = Callable[[tuple[int, int], str, np.random.Generator], np.ndarray]
STARTS: dict[str, Start] = {"noise": noise, "gradient": gradient, "color": color}
KINDS = ("image", *STARTS)


def parse_init(spec: str) -> tuple[str, str]:
    """Split `--init KIND[:ARG]` and check the kind."""
    kind, _, arg = spec.partition(":")
    if kind not in KINDS:
        raise UserError(f"--init {spec!r}: unknown start; choose one of {', '.join(KINDS)}")
    return kind, arg


def make_start(spec: str, size: tuple[int, int], seed: int) -> np.ndarray:
    """A generated start (not `image`) of the given (height, width)."""
    kind, arg = parse_init(spec)
    if kind == "image":
        raise UserError("--init image needs an input image")
    try:
        return STARTS[kind](size, arg, np.random.default_rng(seed))
    except ValueError:
        raise UserError(f"--init {spec!r}: bad argument {arg!r}") from None
