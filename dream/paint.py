"""Stroke dreams: grow a picture of N Bézier strokes by gradient ascent on any objective, write it as SVG.

The strokes (dream/strokes.py) are rendered each step at the dream's size, over the photo
(`underlay`) or over the photo's mean colour, jittered, put into the brain's net space and pushed
by Adam toward the objective that `zoo dream` would use (dream/run.prepare builds it, with every
check). The SVG carries the recipe and the stroke options, so `--recipe dream.svg` paints it again.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from zoo.dream import render, run, strokes, svg
from zoo.dream.objectives import Objective
from zoo.dream.recipe import Recipe

from zoo.errors import UserError

STEPS = 200  # default ascent steps of a stroke dream (--iterations sets them)
MAX_STROKES = 20_000
LR_POINTS = 1.0 / 256  # of the long side per step: a pixel at 256
LR_LOGITS = 0.05
REACH = 0.15  # of the long side: how far a stroke's control points may lie from its first


@dataclass(frozen=True)
class StrokeOptions:
    """What a stroke dream adds to a Recipe: how many strokes, over the photo or not, their widths
    (fractions of the long side), the edge's softness in pixels, and how far a stroke's control
    points may lie from its first (a fraction of the long side; None, in records made before it: free)."""

    count: int = 400
    underlay: bool = False
    min_width: float = 0.002
    max_width: float = 0.03
    soft: float = 1.0
    reach: float | None = REACH

    def check(self) -> StrokeOptions:
        if not 1 <= self.count <= MAX_STROKES:
            raise UserError(f"--strokes {self.count}: choose 1 to {MAX_STROKES}")
        if not 0 < self.min_width < self.max_width <= 1 or not 0 < self.soft <= 16:
            raise UserError("stroke widths must satisfy 0 < min < max <= 1, softness 0..16 pixels")
        if self.reach is not None and not 0 < self.reach <= 2:
            raise UserError(f"stroke reach {self.reach}: choose a fraction of the long side in (0, 2]")
        return self


def net_input(pre, rgb01: torch.Tensor) -> torch.Tensor:
    """Preprocess.to_net in torch (differentiable): (3, H, W) RGB in 0..1 -> (1, 3, H, W) net space."""
    x = rgb01 * 255.0
    if pre.channel_order == "BGR":
        x = x.flip(0)
    mean = torch.tensor(pre.mean, dtype=x.dtype, device=x.device).reshape(3, 1, 1)
    x = (x - mean) * float(pre.scale)
    if pre.transpose:
        x = x.transpose(1, 2)
    return x[None]


def first_strokes(start: np.ndarray, opts: StrokeOptions, seed: int, from_photo: bool) -> strokes.Strokes:
    """The seeded starting strokes: coloured from the photo under them, or at random."""
    h, w = start.shape[:2]
    side = max(h, w)
    rng = np.random.default_rng(seed)
    lo, hi = opts.min_width * side, opts.max_width * side
    first = strokes.random_strokes(opts.count, (h, w), rng, width=(lo, lo + (hi - lo) / 3),
                                   colours=start if from_photo else None)
    return first if opts.reach is None else strokes.within(first, opts.reach * side)


def background_of(start: np.ndarray, opts: StrokeOptions) -> torch.Tensor:
    """What the strokes lie on: the photo itself (underlay) or its mean colour, (3, H, W) in 0..1."""
    rgb = torch.from_numpy(np.ascontiguousarray(start.transpose(2, 0, 1))).float() / 255.0
    return rgb if opts.underlay else rgb.mean(dim=(1, 2), keepdim=True).expand_as(rgb).contiguous()


def paint(net, objective: Objective, pre, start: np.ndarray, opts: StrokeOptions, steps: int, *, seed: int = 0,
          jitter: int = 8, from_photo: bool = True, device: str = "cpu",
          on_step: Callable[[render.Progress], None] | None = None,
          stop: threading.Event | None = None) -> tuple[strokes.Strokes, bool]:
    """Ascend the objective over the strokes' parameters; returns the strokes and whether it stopped early.

    Each step renders the strokes, rolls the picture by a seeded jitter (as the DeepDream loop does,
    so no stroke lives on one pixel's luck) and takes one Adam step. Ctrl-C or `stop` keeps the strokes
    so far."""
    h, w = start.shape[:2]
    side = max(h, w)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed + 1)
    param = strokes.StrokeParam(first_strokes(start, opts, seed, from_photo), opts.min_width * side,
                                opts.max_width * side, None if opts.reach is None else opts.reach * side).to(device)
    bg = background_of(start, opts).to(device)
    rates = {"points": LR_POINTS * side, "anchor": LR_POINTS * side, "offset": LR_POINTS * side,
             "width_logit": LR_LOGITS, "rgba_logit": LR_LOGITS}
    moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    interrupted = False
    try:
        for i in range(steps):
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            picture = strokes.rasterise(param(), (h, w), bg, soft=opts.soft)
            dy, dx = (int(v) for v in rng.integers(-jitter, jitter + 1, size=2)) if jitter else (0, 0)
            x = net_input(pre, torch.roll(picture, (dy, dx), dims=(1, 2)))
            value = objective(net(x, outputs=list(objective.blobs)))
            grads = torch.autograd.grad(value, list(param.parameters()))
            with torch.no_grad():
                for (name, p), g in zip(param.named_parameters(), grads):
                    adam_step(p, g, moments, name, rates[name], i + 1)
            if on_step is not None:
                on_step(render.Progress(1, 1, i + 1, steps, 1, 1, (h, w), net_input(pre, picture.detach())))
    except KeyboardInterrupt:
        interrupted = True
    return param().detach(), interrupted


def adam_step(p: torch.Tensor, g: torch.Tensor, moments: dict, name: str, lr: float, t: int,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam ascent step in place (Kingma & Ba); torch.optim would import torch._dynamo (seconds)."""
    m, v = moments.get(name, (torch.zeros_like(p), torch.zeros_like(p)))
    m.mul_(betas[0]).add_(g, alpha=1 - betas[0])
    v.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
    moments[name] = (m, v)
    m_hat = m / (1 - betas[0] ** t)
    v_hat = v / (1 - betas[1] ** t)
    p.add_(lr * m_hat / (v_hat.sqrt() + eps))


# --- the file -------------------------------------------------------------------------------------


def _data_uri(start: np.ndarray) -> str:
    from PIL import Image
    from zoo.dream.output import to_uint8

    buf = io.BytesIO()
    Image.fromarray(to_uint8(start), "RGB").save(buf, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def document(done: strokes.Strokes, start: np.ndarray, rec: Recipe, opts: StrokeOptions) -> str:
    """The stroke dream as SVG text, its recipe and stroke options in <metadata>."""
    h, w = start.shape[:2]
    if opts.underlay:
        background = _data_uri(start)
    else:
        background = svg._hex(start.reshape(-1, 3).mean(axis=0) / 255.0)
    meta = json.dumps({"recipe": json.loads(rec.to_json()), "strokes": asdict(opts)}, sort_keys=True)
    paths = svg.stroke_paths(done.points.numpy(), done.width.numpy(), done.rgba.numpy())
    return svg.strokes_svg((h, w), paths, background, meta)


def read_job(path: str | Path) -> tuple[Recipe, StrokeOptions]:
    """The recipe and stroke options a stroke SVG carries, each field checked."""
    data = svg.recipe_json(path)
    if set(data) != {"recipe", "strokes"} or not isinstance(data["strokes"], dict):
        raise UserError(f"{path}: its recipe lacks 'recipe' or 'strokes'")
    rec = Recipe.from_json(json.dumps(data["recipe"]), str(path))
    fields = set(StrokeOptions.__dataclass_fields__)
    opts = data["strokes"]
    opts = {"reach": None, **opts} if isinstance(opts, dict) else opts  # records made before reach: free points
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if set(opts) != fields or not isinstance(opts["count"], int) or not isinstance(opts["underlay"], bool) or \
            not all(number(opts[k]) for k in ("min_width", "max_width", "soft")) or \
            not (opts["reach"] is None or number(opts["reach"])):
        raise UserError(f"{path}: its stroke options are not valid")
    return rec, StrokeOptions(**opts).check()


@dataclass
class StrokeRun:
    strokes: strokes.Strokes
    path: Path | None
    recipe: Recipe
    interrupted: bool
    text: str


def prepare(rec: Recipe, *, reproduce: bool = False, input_path: str | Path | None = None) -> run.Prepared:
    """What `zoo dream` prepares (brain, start, objective, every check), for a stroke dream."""
    return run.prepare(rec, reproduce=reproduce, input_path=input_path)


def run_strokes(rec: Recipe, opts: StrokeOptions, target: str | Path | None, *,
                on_progress: Callable[[run.Update], None] | None = None, stop: threading.Event | None = None,
                reproduce: bool = False, input_path: str | Path | None = None,
                prep: run.Prepared | None = None) -> StrokeRun:
    """Paint a recipe in strokes and write the SVG atomically (`target` None writes nothing)."""
    opts.check()
    prep = prep or prepare(rec, reproduce=reproduce, input_path=input_path)
    done_rec = prep.recipe
    steps = done_rec.params.iterations
    clock = run._Clock(float(prep.start.shape[0] * prep.start.shape[1] * steps))
    _, stepped = run._reporters(prep.brain.preprocess, lambda p: (1, 1, p.step, steps), clock, None, on_progress, {})
    from_photo = done_rec.init == "image"
    net = prep.brain.net_for(prep.objective.blobs, done_rec.device)
    jitter = min(done_rec.params.jitter, max(prep.start.shape[:2]) // 16)
    with torch.enable_grad():
        done, interrupted = paint(net, prep.objective, prep.brain.preprocess, prep.start, opts, steps,
                                  seed=done_rec.seed, jitter=jitter, from_photo=from_photo, device=done_rec.device,
                                  on_step=stepped, stop=stop)
    text = document(done, prep.start, done_rec.with_(interrupted=interrupted), opts)
    if target is not None:
        from zoo.io import write_text_atomic

        write_text_atomic(target, text)
    return StrokeRun(done, Path(target) if target is not None else None, done_rec, interrupted, text)

