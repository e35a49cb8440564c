"""From a recipe to pixels: load the brain and the start, build the objective, plan tiles, dream.

The CLI, sequences and atlases all come through here, so `zoo dream --recipe` runs exactly the
code that made the image. Reading and writing files happens here, never inside the render loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from zoo.dream import geometry, objectives, render, starts
from zoo.dream.brain import Brain
from zoo.dream.objectives import Objective, Target
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import Recipe, file_sha256

from zoo.errors import UserError

GUIDE_SIDE = 512  # guide images are fitted inside this square: the notebook used small guides
CPU_TILE_BUDGET = 1 << 30  # bytes of activations a tile may take on the CPU
# An image runs whole up to WHOLE_PER_TILE times the tile's side (automatic or --tile, and so a
# recipe's recorded tile gives the same plan again): tiles of a few shapes each step fragment the
# kept heap (dream/alloc.py), so a cut step peaks higher than a whole image of the tile's area
# (2048x2048 classic: tiles of 1024 peaked at 3603-3618 MiB, of 880 at 3330-3366 MiB). The
# automatic tile is sized for the budget's share (7/8)^2, which leaves 1024x1024 whole on 1 GiB.
WHOLE_PER_TILE = Fraction(8, 7)
ACTIVATION_FACTOR = 1.5  # measured peak over the summed blob sizes (which count in-place versions twice)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    if device not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: choose cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here (torch sees none)")
    return device


# --- objectives --------------------------------------------------------------------------------


def targets_for(brain: Brain, layers: Sequence[str]) -> list[Target]:
    """Parse and check `--layer` values; none given means the model's default blob."""
    return [brain.resolve(objectives.parse_target(text)) for text in (layers or [brain.default_blob])]


def objective_targets(brain: Brain, targets: Sequence[Target], size: tuple[int, int]) -> list[Target]:
    """Targets as the objective sees them, for a start image of `size` (H, W) pixels: classes of a
    Softmax output are dreamt through its logits, and neurons are placed in the blob at that size."""
    out = []
    for t in targets:
        if t.channels and t.position is None:
            t = replace(t, blob=brain.logits(t.blob))
        if t.position is not None and brain.graph is not None:
            t = replace(t, at=neuron_place(brain, t, size))
        out.append(t)
    return out


def neuron_place(brain: Brain, t: Target, size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]]:
    """((H, W) of the image in net space, (h, w) of the target's blob there); refuses a position
    outside the blob with one line naming its size."""
    h, w = size
    net_size = (w, h) if getattr(brain.preprocess, "transpose", False) else (h, w)
    g = brain.truncated_graph([t.blob])
    try:
        shape = g.shapes({next(iter(g.inputs)): (1, 3, *net_size)})[t.blob]
    except UserError:
        raise UserError(f"layer {t}: {brain.name} cannot compute {t.blob} on a {w}x{h} image") from None
    if len(shape) != 4:
        raise UserError(f"layer {t}: {t.blob} has no positions (shape {'x'.join(map(str, shape[1:]))}); drop @Y,X")
    assert t.position is not None
    y, x = t.position
    if y >= shape[2] or x >= shape[3]:
        raise UserError(f"layer {t}: position {y},{x} is outside {t.blob}, which is {shape[2]}x{shape[3]} "
                        f"(rows x columns) on this {w}x{h} image; use Y < {shape[2]} and X < {shape[3]}")
    return net_size, (int(shape[2]), int(shape[3]))


def guide_features(brain: Brain, rgb: np.ndarray, blob: str, device: str) -> torch.Tensor:
    """The guide image's activations at `blob` (the image fitted inside GUIDE_SIDE)."""
    h, w = rgb.shape[:2]
    f = min(1.0, GUIDE_SIDE / max(h, w))
    rgb = starts.resize_rgb(rgb, (max(1, round(h * f)), max(1, round(w * f))))
    x = to_net(brain.preprocess, rgb).to(device)
    net = brain.net_for([blob], device)
    check_fits(brain, [blob], tuple(x.shape[-2:]), "guide image")
    with torch.no_grad():
        return net(x, outputs=[blob])[blob][0].float()


def build_objective(
    brain: Brain, targets: Sequence[Target], weights: Sequence[float] = (), guide: torch.Tensor | None = None,
    guide_blobs: dict[str, torch.Tensor] | None = None, layout: bool = False,
) -> Objective:
    """The weighted sum of the targets; with guide features, each target blob is guided instead
    (with `layout`, toward the guide's features at the same place: zoo.dream.objectives.guide_layout)."""
    if not guide_blobs:
        return objectives.combine(targets, weights)
    ws = list(weights) + [1.0] * (len(targets) - len(weights))
    total: Objective | None = None
    for t, w in zip(targets, ws):
        term = w * (objectives.guide_layout if layout else objectives.guide)(t.blob, guide_blobs[t.blob])
        total = term if total is None else total + term
    assert total is not None
    return total


# --- geometry the net imposes ------------------------------------------------------------------


def _probe_shapes(brain: Brain, blobs: Sequence[str], probe: int) -> tuple[int, dict[str, tuple[int, ...]]]:
    """Shapes of the truncated net's blobs at a square probe input; nets with a fixed-size head are
    probed at their deploy size (their windows are that size whatever the image)."""
    g = brain.truncated_graph(blobs)
    first = next(iter(g.inputs))
    if any(brain.is_fixed(b) for b in blobs) and brain.input_size is not None:
        probe = max(brain.input_size)
    return probe, g.shapes({first: (1, 3, probe, probe)})


def stride_of(brain: Brain, blobs: Sequence[str], probe: int = 512) -> int:
    """The net's total stride at its deepest spatial blob, as a power of two (tile alignment).

    Every 4-D blob of the truncated net counts except those pooled to one position (global pools),
    so class outputs (2-D) and fixed-size heads are aligned by the spatial part under them.
    """
    if brain.graph is None or not blobs:
        return 1
    probe, shapes = _probe_shapes(brain, blobs, probe)
    spatial = [s[2] for s in shapes.values() if len(s) == 4 and s[2] * s[3] > 1]
    worst = max((probe / s for s in spatial), default=1.0)
    return max(1, 2 ** round(math.log2(max(1.0, worst))))


def min_side(brain: Brain, blobs: Sequence[str], limit: int = 2048) -> int:
    """The smallest square input that reaches every blob (the truncated net, not the whole one).

    Blobs that take any size are searched by bisection (reaching a blob is monotone in the size for
    these nets, and the result is checked); fixed-size heads need one window: the deploy size.
    """
    if brain.graph is None:
        return 1
    fixed = [b for b in blobs if brain.is_fixed(b)]
    free = [b for b in blobs if b not in fixed]
    need = 1
    if fixed:
        assert brain.input_size is not None
        h, w = brain.input_size
        g = brain.truncated_graph(fixed)
        try:
            g.shapes({next(iter(g.inputs)): (1, 3, h, w)})
        except UserError:
            raise UserError(f"{brain.name}: {', '.join(fixed)} cannot be computed even at the deploy size "
                            f"{w}x{h}") from None
        need = max(h, w)
    if not free:
        return need
    g = brain.truncated_graph(free)
    first = next(iter(g.inputs))

    def ok(s: int) -> bool:
        try:
            shapes = g.shapes({first: (1, 3, s, s)})
        except UserError:
            return False
        return all(math.prod(shapes[b]) > 0 for b in free)

    lo, hi = 1, limit
    if not ok(hi):
        raise UserError(f"{brain.name}: no input up to {limit}x{limit} reaches {', '.join(free)}")
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return max(need, lo)


def check_fits(brain: Brain, blobs: Sequence[str], size: tuple[int, int], what: str) -> None:
    need = min_side(brain, blobs)
    if min(size) < need:
        raise UserError(
            f"{what}: {size[1]}x{size[0]} is too small for {brain.name} at {', '.join(blobs)}; "
            f"it needs at least {need}x{need} pixels"
        )


def activation_per_pixel(brain: Brain, blobs: Sequence[str], probe: int) -> float:
    """Bytes of activations per input pixel of the truncated net (fixed heads: at their windows)."""
    g = brain.truncated_graph(blobs)
    first = next(iter(g.inputs))
    probe, _ = _probe_shapes(brain, blobs, probe)
    return g.activation_bytes({first: (1, 3, probe, probe)}) / (probe * probe)


def auto_tile(brain: Brain, blobs: Sequence[str], device: str, align: int, floor: int,
              available: int | None = None, share: float = 1.0) -> int:
    """The largest aligned tile whose activations fit `share` of the memory budget of the device.

    plan_for asks for (7/8)^2 of the budget and lets images up to 8/7 of the tile's side run whole
    (whole_side): on the CPU the budget is a quarter of the memory really free (MemAvailable, or
    `available`), at most CPU_TILE_BUDGET, so 1024x1024 on GoogLeNet's inception_4c runs untiled
    with 4 GB free."""
    g = brain.truncated_graph(blobs)
    if g is None:
        return 512
    per_pixel = activation_per_pixel(brain, blobs, max(256, floor)) * ACTIVATION_FACTOR
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        budget = free // 2
    else:
        from zoo.convert.graph import available_memory

        budget = min((available_memory() if available is None else available) // 4, CPU_TILE_BUDGET)
    side = int(math.sqrt(share * budget / max(per_pixel, 1e-9)))
    return max(geometry.align_down(side, align), geometry.align_down(floor, align) + align)


@dataclass(frozen=True)
class Plan:
    """What the net imposes on one dream: tile plan and the smallest octave side it can see."""

    tiles: render.TilePlan
    min_side: int


def plan_for(brain: Brain, blobs: Sequence[str], params: DreamParams, device: str) -> Plan:
    align = stride_of(brain, blobs)
    smallest = min_side(brain, blobs)
    margin_floor = geometry.align_down(max(smallest, align), align)
    floor = 3 * margin_floor + align
    tile = params.tile or auto_tile(brain, blobs, device, align, floor, share=float(WHOLE_PER_TILE ** -2))
    tile = max(geometry.align_down(tile, align), floor)
    margin = max(geometry.align_down(tile // 16, align), margin_floor)
    while tile - 2 * margin < max(margin, smallest):
        tile += align
    return Plan(render.TilePlan(tile, margin, align, whole_side(tile, align)), smallest)


def whole_side(tile: int, align: int) -> int:
    """The largest side (by area) that runs in one piece with tiles of `tile`: WHOLE_PER_TILE x tile,
    rounded up to the alignment (896 -> 1024 at 16)."""
    return max(tile, -(-(tile * WHOLE_PER_TILE) // align) * align)


# --- running -----------------------------------------------------------------------------------


def dream_rgb(
    brain: Brain,
    rgb: np.ndarray,
    objective: Objective,
    params: DreamParams,
    *,
    seed: int = 0,
    device: str = "cpu",
    plan: Plan | None = None,
    on_progress: Callable[[render.Progress], None] | None = None,
    on_step: Callable[[render.Progress], None] | None = None,
    compile: bool = False,
) -> tuple[np.ndarray, render.DreamResult]:
    """Dream on an RGB image (HxWx3, 0..255) and return the RGB result at the same size; `compile`
    runs the net through torch.compile (zoo.dream.compiled)."""
    pre = brain.preprocess
    plan = plan or plan_for(brain, objective.blobs, params, device)
    if device == "cuda":  # each octave is one fixed shape, run ten times: cuDNN times its kernels once per shape
        torch.backends.cudnn.benchmark = True
    x = to_net(pre, rgb).to(device)
    lo, hi = (torch.from_numpy(b) for b in pre.bounds())
    result = render.dream(
        brain.net_for(objective.blobs, device, compile=compile),
        objective,
        x,
        params,
        bounds=(lo, hi) if params.clip else None,
        tiles=plan.tiles,
        seed=seed,
        autocast=device == "cuda",
        min_size=(plan.min_side, plan.min_side),
        pixel_scale=float(pre.scale),
        inplace=True,
        on_progress=on_progress,
        on_step=on_step,
    )
    return from_net(pre, result.image[0].float().cpu()), result


BAND = 256  # rows converted at a time: print-size images are converted without full-size temporaries


def to_net(pre, rgb: np.ndarray) -> torch.Tensor:
    """Preprocess.to_net in bands of rows, into one 1x3xHxW tensor."""
    h, w = rgb.shape[:2]
    out = torch.empty((1, 3, w, h) if pre.transpose else (1, 3, h, w))
    for r in range(0, h, BAND):
        band = torch.from_numpy(pre.to_net(rgb[r:r + BAND]))
        if pre.transpose:
            out[0, :, :, r:r + BAND] = band
        else:
            out[0, :, r:r + BAND] = band
    return out


def from_net(pre, x: torch.Tensor) -> np.ndarray:
    """Preprocess.from_net in bands, clipped to 0..255, into one HxWx3 float32 array."""
    h, w = (x.shape[2], x.shape[1]) if pre.transpose else (x.shape[1], x.shape[2])
    out = np.empty((h, w, 3), np.float32)
    for r in range(0, h, BAND):
        band = x[:, :, r:r + BAND] if pre.transpose else x[:, r:r + BAND]
        out[r:r + BAND] = pre.from_net(band.numpy())
    np.clip(out, 0.0, 255.0, out=out)
    return out


def start_size(recipe: Recipe, path: str | Path | None) -> tuple[int, int]:
    """The (height, width) a recipe dreams at, from the input's header and `size`: nothing decoded."""
    kind, _ = starts.parse_init(recipe.init)
    size = starts.image_size(path) if path is not None else (512, 512)
    if kind == "image" and path is None:
        raise UserError("no input image given (or use --init noise|gradient|color)")
    if recipe.size:
        size = geometry.size_option(size[0], size[1], recipe.size)
    return size


def load_start(recipe: Recipe, input_override: str | Path | None = None) -> np.ndarray:
    """The start image of a recipe: the input (checked against its checksum), or a generated start.

    The size it will be dreamt at is checked against memory before anything is decoded.
    """
    kind, _ = starts.parse_init(recipe.init)
    path = input_override or recipe.input
    size = start_size(recipe, path)
    starts.check_memory(size, str(path) if path is not None and not recipe.size else f"--size {recipe.size}"
                        if recipe.size else "start")
    rgb = None
    if path is not None:
        if recipe.input_sha256 and file_sha256(path) != recipe.input_sha256:
            raise UserError(f"{path}: not the input this recipe was made from (sha256 differs)")
        rgb = starts.load_image(path, size)
    if kind == "image":
        assert rgb is not None
        return starts.resize_rgb(rgb, size)
    return starts.make_start(recipe.init, size, recipe.seed)
