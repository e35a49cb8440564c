"""The one adapter between the studio and the library: each job kind is a function run in the worker.

Every job calls the functions the CLI calls (dream.pipeline, dream.atlas, zoo.cache, zoo.train,
zoo.registry), with a progress callback that becomes events and a stop flag polled between steps.
Nothing here renders, trains or converts on its own. A job function gets its spec (already checked
by the server), an `emit(event)` and a `Context`, and returns a result dict.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UserError

Emit = Callable[[dict], None]
PREVIEW_SIDE = 512  # previews are JPEGs fitted in this square
PREVIEW_EVERY = 0.1  # seconds between previews (the last step of each octave always sends one)


@dataclass
class Context:
    """What a running job can ask the worker: whether the user pressed Stop, and where to write."""

    stopped: Callable[[], bool]
    job_dir: Path


def jpeg_data_url(rgb, side: int = PREVIEW_SIDE) -> str:
    """A small JPEG of an RGB float/uint8 image as a data: URL (what the browser shows as the preview)."""
    import numpy as np
    from PIL import Image

    arr = np.clip(np.rint(rgb), 0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    im = Image.fromarray(arr, "RGB")
    f = side / max(im.size)
    if f < 1:
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _Meter:
    """Steps done out of a total, with an ETA from the mean step time so far."""

    def __init__(self, total: int):
        self.total, self.done, self.t0 = max(1, total), 0, time.perf_counter()

    def fields(self) -> dict:
        elapsed = time.perf_counter() - self.t0
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        return {"done": self.done, "total": self.total, "percent": round(100.0 * self.done / self.total, 1),
                "elapsed_s": round(elapsed, 2), "eta_s": None if eta is None else round(eta, 1)}


@contextlib.contextmanager
def watch_steps(on_step: Callable[[Any], None]):
    """Call `on_step(x)` with the net-space image after every ascent step of the render loop.

    A bridge until the dream library hands the image to its progress callback: the worker is its own
    process running one job at a time, so wrapping the module's step function there touches nothing
    else, and the numbers are the loop's own.
    """
    from zoo.dream import render

    original = render.ascent_step

    def step(x, grad, *args, **kwargs):
        original(x, grad, *args, **kwargs)
        on_step(x)

    render.ascent_step = step
    try:
        yield
    finally:
        render.ascent_step = original


def _stepper(emit: Emit, ctx: Context, meter: _Meter, preprocess, extra: Callable[[], dict] | None = None):
    """(on_progress, on_step) for one dream: progress events, previews, and Stop between tiles."""
    from zoo.dream.pipeline import from_net

    state = {"last": 0.0, "p": None}

    def on_progress(p) -> None:
        if ctx.stopped():
            raise KeyboardInterrupt  # the render loop returns the image so far
        state["p"] = p
        if p.tile == p.tiles:
            meter.done += 1

    def on_step(x) -> None:
        p = state["p"]
        now = time.perf_counter()
        octave_end = p is not None and p.step == p.steps  # each octave's result is always shown
        if now - state["last"] < PREVIEW_EVERY and not octave_end:
            return
        state["last"] = now
        event = {"type": "progress", **meter.fields(), **(extra() if extra else {})}
        if p is not None:
            event.update(octave=p.octave, octaves=p.octaves, step=p.step, steps=p.steps, tile=p.tile, tiles=p.tiles,
                         size=[p.size[1], p.size[0]])
        rgb = from_net(preprocess, x[0].detach().float().cpu())
        event["preview"] = jpeg_data_url(rgb)
        emit(event)

    return on_progress, on_step


def _ref(path: Path) -> str | None:
    from zoo.studio.paths import ref_of

    try:
        return ref_of(path)
    except ValueError:
        return None


_BRAIN: dict[str, tuple[tuple, Any]] = {}  # the last brain the worker loaded, reused while its files are unchanged


def load_brain(name: str | None):
    """dream.brain.load_brain, kept warm between jobs: the second dream on a brain starts at once."""
    from zoo import api
    from zoo.dream.brain import load_brain as load

    if not name:
        return load(None)
    card, paths = api.resolve(name)
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths.values()))
    hit = _BRAIN.get(card.name)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    brain = load(card.name)
    _BRAIN.clear()
    _BRAIN[card.name] = (stamp, brain)
    return brain


# --- dream ----------------------------------------------------------------------------------------


def recipe_from_spec(spec: dict):
    """The Recipe a dream form describes (the same fields `zoo dream` turns its options into)."""
    from zoo.dream.presets import DreamParams, get_preset
    from zoo.dream.recipe import Recipe, file_sha256

    preset = get_preset(spec["preset"]) if spec.get("preset") else None
    base = preset.params if preset else DreamParams()
    params = base.with_(**{k: spec.get(k) for k in ("octaves", "octave_scale", "iterations", "step", "jitter",
                                                      "tile")})
    model = spec.get("model") or (preset.model if preset else None) or ""
    layers = list(spec.get("layers") or ([preset.layer] if preset and preset.layer and model == preset.model else []))
    inp, guide = spec.get("input"), spec.get("guide")
    return Recipe(model=model, weights_sha256="", layers=tuple(layers), params=params, seed=int(spec.get("seed", 0)),
                  weights=tuple(float(w) for w in spec.get("weights") or ()), init=spec.get("init") or "image",
                  input=inp, input_sha256=file_sha256(inp) if inp else None, guide=guide,
                  guide_sha256=file_sha256(guide) if guide else None, size=spec.get("size") or None,
                  device=spec.get("device") or "cpu", preset=spec.get("preset") or None)


def dream(spec: dict, emit: Emit, ctx: Context) -> dict:
    """One still dream, as `zoo dream` runs it: the result PNG carries the recipe."""
    from zoo.dream import output, pipeline, starts
    from zoo.dream.recipe import file_sha256, png_info
    from zoo.dream.render import usable_octaves

    rec = recipe_from_spec(spec)
    rec = rec.with_(device=pipeline.check_device(rec.device))
    target = Path(spec["output"])
    output.check_writable(target)
    start = pipeline.load_start(rec)
    emit({"type": "log", "message": f"loading {rec.model or 'the default brain'}"})
    brain = load_brain(rec.model or None)
    targets = pipeline.targets_for(brain, list(rec.layers))
    blobs = list(dict.fromkeys(t.blob for t in targets))
    pipeline.check_fits(brain, blobs, start.shape[:2], rec.input or rec.init)
    guide_feats = None
    if rec.guide:
        if rec.guide_sha256 and file_sha256(rec.guide) != rec.guide_sha256:
            raise UserError(f"{rec.guide}: not the guide this recipe was made from (sha256 differs)")
        g = starts.load_image(rec.guide)
        guide_feats = {b: pipeline.guide_features(brain, g, b, rec.device) for b in blobs}
    objective = pipeline.build_objective(brain, targets, rec.weights, guide_blobs=guide_feats)
    plan = pipeline.plan_for(brain, objective.blobs, rec.params, rec.device)
    rec = rec.with_(model=brain.name, weights_sha256=brain.weights_sha256,
                    layers=tuple(str(t) for t in targets), params=rec.params.with_(tile=plan.tiles.tile))
    n_oct = len(usable_octaves(*start.shape[:2], rec.params, (plan.min_side, plan.min_side)))
    meter = _Meter(n_oct * rec.params.iterations)
    h, w = start.shape[:2]
    emit({"type": "start", "model": brain.name, "layers": list(rec.layers), "width": w, "height": h,
          "octaves": n_oct, "steps": rec.params.iterations, **meter.fields(), "preview": jpeg_data_url(start)})
    on_progress, on_step = _stepper(emit, ctx, meter, brain.preprocess)
    with watch_steps(on_step):
        rgb, result = pipeline.dream_rgb(brain, start, objective, rec.params, seed=rec.seed, device=rec.device,
                                         plan=plan, on_progress=on_progress)
    rec = rec.with_(interrupted=result.interrupted)
    output.write_image(target, rgb, png_info(rec))
    emit({"type": "progress", **meter.fields(), "preview": jpeg_data_url(rgb)})
    return {"image": str(target), "ref": _ref(target), "recipe": json.loads(rec.to_json()),
            "command": rec.command(str(target)), "interrupted": result.interrupted, "stopped": result.interrupted}


# --- atlas ----------------------------------------------------------------------------------------


def atlas(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo atlas` into a studio folder: one PNG per blob, the contact sheet, index.html, atlas.json."""
    from zoo.dream import atlas as atlas_lib
    from zoo.dream import output, pipeline, starts
    from zoo.dream.objectives import parse_target
    from zoo.dream.presets import DreamParams
    from zoo.dream.recipe import Recipe, png_info

    folder = Path(spec["output"])
    size, start = int(spec.get("size", 128)), spec.get("start") or "noise"
    octaves, iterations = int(spec.get("octaves", 2)), int(spec.get("iterations", 5))
    seed, dev = int(spec.get("seed", 0)), pipeline.check_device(spec.get("device") or "cpu")
    starts.parse_init(start)
    rec = Recipe(model=spec["model"], weights_sha256="", layers=(), seed=seed, init=start, size=f"{size}x{size}",
                 params=DreamParams(octaves=octaves, iterations=iterations, step=float(spec.get("step", 1.5))),
                 device=dev)
    first = pipeline.load_start(rec)
    brain = load_brain(spec["model"])
    names = list(spec.get("blobs") or brain.dreamable)
    for name in names:
        brain.resolve(parse_target(name))
    folder.mkdir(parents=True, exist_ok=True)
    rec = rec.with_(model=brain.name, weights_sha256=brain.weights_sha256)
    meter = _Meter(len(names) * octaves * iterations)
    current = {"blob": names[0] if names else "", "index": 1}
    extra = lambda: {"blob": current["blob"], "index": current["index"], "blobs": len(names)}  # noqa: E731
    on_progress, on_step = _stepper(emit, ctx, meter, brain.preprocess, extra)
    items, entries = [], []
    with watch_steps(on_step):
        for i, (blob, rgb, result) in enumerate(atlas_lib.render_blobs(
                brain, first, names, rec.params, seed=seed, device=dev, on_progress=on_progress)):
            name = atlas_lib.file_name(i + 1, blob)
            tile = pipeline.plan_for(brain, [blob], rec.params, dev).tiles.tile
            output.write_image(folder / name, rgb, png_info(rec.with_(layers=(blob,), params=rec.params.with_(
                tile=tile), interrupted=result.interrupted)))
            items.append((blob, rgb))
            shape = brain.dreamable.get(blob, (brain.channels.get(blob, 0),))
            entries.append(atlas_lib.Entry(blob, name, shape, brain.descriptions.get(blob, "")))
            emit({"type": "blob", "blob": blob, "file": name, "index": i + 1, "blobs": len(names)})
            if i + 1 < len(names):
                current.update(blob=names[i + 1], index=i + 2)
            if result.interrupted:
                break
    if items:
        output.write_image(folder / "atlas.png", atlas_lib.contact_sheet(items))
    command = f"zoo atlas --model {brain.name} --start {start} --size {size} --seed {seed}"
    note = f"Weights sha256 {brain.weights_sha256[:16]}…; {octaves} octaves × {iterations} steps."
    with output.atomic_path(folder / "index.html") as tmp:
        tmp.write_text(atlas_lib.html_page(brain.name, entries, "atlas.png", command, note), encoding="utf-8")
    index = {"model": brain.name, "command": command, "size": size, "start": start,
             "entries": [{"blob": e.blob, "file": e.file, "shape": list(e.shape), "produces": e.produces}
                         for e in entries]}
    with output.atomic_path(folder / "atlas.json") as tmp:
        tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    return {"folder": str(folder), "entries": len(entries), "stopped": len(entries) < len(names)}


# --- brains ---------------------------------------------------------------------------------------


def _watch(period: float, poll: Callable[[], None]) -> Callable[[], None]:
    """Run `poll` every `period` seconds in a thread until the returned function is called."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(period):
            with contextlib.suppress(Exception):
                poll()

    t = threading.Thread(target=loop, daemon=True)
    t.start()

    def stop() -> None:
        done.set()
        t.join(timeout=5)
        with contextlib.suppress(Exception):
            poll()

    return stop


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def fetch(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo fetch NAME`: checksummed download (or build), then the ONNX; progress is bytes on disk."""
    from zoo import cache
    from zoo.registry import get_card

    card = get_card(spec["model"])
    total = sum(int(getattr(f, "size", 0) or 0) for f in card.files.values()) or None
    folder = cache.model_dir(card.name)

    def poll() -> None:
        got = _folder_bytes(folder)
        emit({"type": "progress", "bytes": got, "total_bytes": total,
              "percent": round(min(100.0, 100.0 * got / total), 1) if total else None})

    stop = _watch(0.3, poll)
    try:
        paths = cache.ensure_model(card, say=lambda m: emit({"type": "log", "message": m}))
        cache.ensure_onnx(card, paths)
    finally:
        stop()
    emit({"type": "progress", "percent": 100.0})
    return {"model": card.name, "cached": True}


# --- training -------------------------------------------------------------------------------------


def _read_log(csv_path: Path) -> list[dict]:
    import csv

    if not csv_path.is_file():
        return []
    with open(csv_path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def train(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo train` (fresh or --resume) into a studio run folder; with a name, exported at the end."""
    from dataclasses import fields

    from zoo.train.config import TrainConfig
    from zoo.train.loop import start_config
    from zoo.train.loop import train as run_train

    run_dir = Path(spec["out"])
    given = {k: v for k, v in spec.items() if v is not None and k in {f.name for f in fields(TrainConfig)}}
    cfg = TrainConfig(**given)
    cfg, state = start_config(cfg, given, bool(spec.get("resume")))
    seen = {"rows": 0, "previews": set()}
    total = cfg.max_iter

    def poll() -> None:
        rows = _read_log(run_dir / "log.csv")
        if len(rows) != seen["rows"]:
            seen["rows"] = len(rows)
            it = int(rows[-1]["iter"]) if rows else 0
            emit({"type": "metrics", "rows": rows, "done": it, "total": total,
                  "percent": round(100.0 * it / total, 1)})
        previews = sorted(p.name for p in (run_dir / "previews").glob("iter_*.png")) if (
            run_dir / "previews").is_dir() else []
        for name in previews:
            if name not in seen["previews"]:
                seen["previews"].add(name)
                emit({"type": "checkpoint", "image": f"previews/{name}", "iter": int(name[5:11])})

    stop = _watch(0.5, poll)
    stopped = False
    try:
        with ctx_interruptible():
            result = run_train(cfg, resume_state=state, show=True)
    except KeyboardInterrupt:
        stopped = True
        result = None
    finally:
        stop()
    out: dict[str, Any] = {"run": run_dir.name, "stopped": stopped}
    if result is not None:
        out.update(iters=result.iters, val_top1=result.val_top1, images_per_s=result.images_per_s)
        if spec.get("name"):
            out["exported"] = export({"run": str(run_dir), "name": spec["name"]}, emit, ctx)["model"]
    return out


def export(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo export RUN --name NAME`: the run's brain into the zoo (it shows in the brain list at once)."""
    from zoo.train.export import export_run

    ex = export_run(Path(spec["run"]), spec["name"])
    emit({"type": "log", "message": f"exported {ex.name}: {ex.prototxt}, {ex.caffemodel}, {ex.onnx}"})
    return {"model": ex.name, "folder": str(ex.folder)}


# Stop during training is a KeyboardInterrupt delivered by SIGINT (the training loop has no stop flag;
# its checkpoints make a stopped run resumable). The worker raises it only inside this block.
_interruptible = threading.Event()


@contextlib.contextmanager
def ctx_interruptible():
    _interruptible.set()
    try:
        yield
    finally:
        _interruptible.clear()


def interruptible() -> bool:
    return _interruptible.is_set()


KINDS: dict[str, Callable[[dict, Emit, Context], dict]] = {
    "dream": dream, "atlas": atlas, "fetch": fetch, "train": train, "export": export,
}
