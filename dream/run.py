"""Run a dream: the one library entry that `zoo dream`, benchmarks, previews, the studio and video call.

`prepare` turns a Recipe into everything the loop needs (brain, start image, objective, tile plan)
and checks it all before any long work; `run` dreams it and writes the image(s), each carrying
its recipe. A front end passes a progress callback (it gets an `Update`, with a lazy preview of
the current image, the elapsed time and an ETA), a step callback (the image each ascent step made,
for live previews) and, to stop early, a `threading.Event`: the image so far is kept and written,
as Ctrl-C does. `new_recipe` turns `zoo dream`'s options (or a web form) into a Recipe.
`dream_atlas` is the same for a layer atlas, with per-blob progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from zoo.dream import atlas, output, pipeline, render, sequence, starts
from zoo.dream.brain import Brain, load_brain
from zoo.dream.objectives import Objective, parse_target
from zoo.dream.presets import PRESETS, DreamParams, get_preset
from zoo.dream.recipe import Recipe, file_sha256

from zoo.errors import UserError

Say = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Update(render.Progress):
    """Where a run is: the render loop's Progress (octave, step, tile) plus the run's counts (all
    from 1; `done` of `total` counts steps over every frame, or over every blob of an atlas, where
    `blob` is the one being dreamt, `index` of `blobs`). This is the event a dream reports; the
    CLI draws it as a bar, the studio sends it to the page.

    `preview()` returns the current octave's image as RGB float 0..255 (it converts on each call,
    so call it only when a preview is shown). `eta_s` weighs the steps left by their pixels (a step
    of the last octave costs more than one of the first); None until a step is done.
    """

    frame: int
    frames: int
    done: int
    total: int
    preview: Callable[[], np.ndarray] = field(repr=False, compare=False)
    elapsed_s: float = 0.0
    eta_s: float | None = None
    blob: str = ""
    index: int = 1
    blobs: int = 1

    @property
    def percent(self) -> float:
        return round(100.0 * self.done / max(1, self.total), 1)


class _Clock:
    """Elapsed seconds and an ETA from the pixels dreamt so far out of all the run's pixels."""

    def __init__(self, total_pixels: float):
        self.t0, self.total, self.done = time.perf_counter(), max(1.0, total_pixels), 0.0

    def step(self, size: tuple[int, int]) -> None:
        self.done += size[0] * size[1]

    def times(self) -> tuple[float, float | None]:
        elapsed = time.perf_counter() - self.t0
        if not self.done:
            return elapsed, None
        return elapsed, max(0.0, elapsed * (self.total - self.done) / self.done)


def _pixels(sizes: Sequence[tuple[int, int]], steps: int) -> float:
    return float(sum(h * w for h, w in sizes) * steps)


@dataclass
class Prepared:
    """A checked dream, ready to run: `recipe` is resolved (model, weights checksum, layers, tile)."""

    recipe: Recipe
    brain: Brain
    start: np.ndarray
    objective: Objective
    plan: pipeline.Plan
    octaves: int
    total: int  # steps over every octave and frame
    notes: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # the octaves' (h, w), smallest first


@dataclass
class DreamRun:
    """What a run made: the (last) image as RGB float, where it was written, and how far it got."""

    image: np.ndarray
    path: Path | None
    recipe: Recipe
    interrupted: bool
    frames: int


def prepare(
    recipe: Recipe,
    *,
    input_path: str | Path | None = None,
    guide_path: str | Path | None = None,
    reproduce: bool = False,
    brain: Brain | None = None,
    say: Say | None = None,
    start: np.ndarray | None = None,
) -> Prepared:
    """Check a recipe and build what it runs on; nothing long happens here.

    `input_path` / `guide_path` say where the recipe's own files are now (a recipe moved with its
    files; checked against its checksums). To use other files, change the recipe (`with_`). With
    `reproduce`, the brain's weights must be the recipe's. `start` replaces the recipe's start image
    (a clip's frame: video_run prepares once and runs each frame with its own start).
    """
    notes: list[str] = []
    start = pipeline.load_start(recipe, input_path) if start is None else start
    brain = brain or load_brain(recipe.model or None)
    if reproduce and recipe.weights_sha256 and brain.weights_sha256 != recipe.weights_sha256:
        raise UserError(f"model {brain.name}: its weights differ from the recipe's "
                        f"(sha256 {recipe.weights_sha256[:12]}…)")
    layers = list(recipe.layers) or _preset_layer(recipe, brain)
    if not layers and brain.trained_blobs and brain.default_blob not in brain.trained_blobs:
        notes.append(f"warning: {brain.name}'s default blob {brain.default_blob} was not changed by its "
                     f"fine-tune; its first trained blob is {brain.trained_blobs[0]} "
                     f"(--layer {brain.trained_blobs[0]})")
    targets = pipeline.targets_for(brain, layers)
    what = str(input_path or recipe.input or recipe.init)
    placed = pipeline.objective_targets(brain, targets, start.shape[:2])
    blobs = list(dict.fromkeys(t.blob for t in placed))
    pipeline.check_fits(brain, blobs, start.shape[:2], what)
    guide_feats = None
    guide = guide_path or recipe.guide
    if guide:
        if recipe.guide_sha256 and file_sha256(guide) != recipe.guide_sha256:
            raise UserError(f"{guide}: not the guide this recipe was made from (sha256 differs)")
        g = starts.load_image(guide)
        guide_feats = {b: pipeline.guide_features(brain, g, b, recipe.device) for b in blobs}
    objective = pipeline.build_objective(brain, placed, recipe.weights, guide_blobs=guide_feats)
    plan = pipeline.plan_for(brain, objective.blobs, recipe.params, recipe.device)
    resolved = recipe.with_(model=brain.name, weights_sha256=brain.weights_sha256,
                            layers=tuple(str(t) for t in targets), params=recipe.params.with_(tile=plan.tiles.tile))
    sizes = render.usable_octaves(*start.shape[:2], recipe.params, (plan.min_side, plan.min_side))
    total = recipe.frames * len(sizes) * recipe.params.iterations
    if recipe.compile and (said := _compile_note(brain, objective.blobs, recipe.device, sizes, plan)):
        notes.append(said)
    if reproduce and recipe.interrupted and recipe.steps_done is not None and recipe.frames == 1:
        total = recipe.steps_done
    return Prepared(resolved, brain, start, objective, plan, len(sizes), total, notes, sizes)


def new_recipe(
    *,
    model: str | None = None,
    layers: Sequence[str] = (),
    weights: Sequence[float] = (),
    preset: str | None = None,
    params: dict | None = None,
    init: str = "image",
    input_path: str | Path | None = None,
    guide_path: str | Path | None = None,
    size: str | None = None,
    seed: int = 0,
    frames: int = 1,
    zoom: float = 1.05,
    rotate: float = 0.0,
    device: str = "cpu",
    compile: bool = False,
) -> Recipe:
    """The Recipe that `zoo dream`'s options (or the studio's Dream form) describe.

    `params` are DreamParams fields over the preset's (None keeps the preset's value); a preset made
    for the default brain leaves the model open, so that it falls back offline like no --model.
    Input and guide are stored as absolute paths with their checksums.
    """
    from zoo import api

    p = get_preset(preset) if preset else None
    base = p.params if p else DreamParams()
    preset_model = p.model if p and p.model != api.DEFAULT_MODEL else None

    def where(path: str | Path | None) -> tuple[str | None, str | None]:
        if path is None:
            return None, None
        return str(Path(path).resolve()), file_sha256(path) if Path(path).is_file() else None

    inp, inp_sha = where(input_path)
    guide, guide_sha = where(guide_path)
    return Recipe(model=model or preset_model or "", weights_sha256="", layers=tuple(layers),
                  params=base.with_(**(params or {})), seed=seed, weights=tuple(float(w) for w in weights),
                  init=init, input=inp, input_sha256=inp_sha, guide=guide, guide_sha256=guide_sha, size=size,
                  frames=frames, zoom=zoom, rotate=rotate, device=device, compile=compile, preset=preset)


def _compile_note(brain: Brain, blobs: Sequence[str], device: str, sizes: Sequence[tuple[int, int]],
                  plan: pipeline.Plan) -> str:
    """Check that --compile can work here (one line if not) and say what it will compile, once."""
    from zoo.dream import compiled

    if brain.graph is None:
        raise UserError(f"--compile: {brain.name} is given as a plain net, not a graph; drop --compile")
    compiled.check(device)
    net_size = [(w, h) if getattr(brain.preprocess, "transpose", False) else (h, w) for h, w in sizes]
    shapes = [s if not plan.tiles.splits(*s) else (plan.tiles.tile, plan.tiles.tile) for s in net_size]
    return compiled.note(brain.weights_sha256[:16], blobs, device, shapes) or ""


def _preset_layer(recipe: Recipe, brain: Brain) -> list[str]:
    """A preset's blob, when the preset was made for this brain (else the brain's default)."""
    p = PRESETS.get(recipe.preset or "")
    return [p.layer] if p and p.layer and p.model == brain.name else []


def run(
    prep: Prepared,
    target: str | Path | None,
    *,
    on_progress: Callable[[Update], None] | None = None,
    on_step: Callable[[Update], None] | None = None,
    stop: threading.Event | None = None,
    quality: int = 92,
) -> DreamRun:
    """Dream a prepared recipe and write it to `target` (a still, or an animation with frames beside it).

    `on_progress` hears of every step (and tile) as it starts its gradient; `on_step` after every
    ascent step, its `preview()` being exactly what that step made. `target` None writes nothing
    (previews). An interrupted run (Ctrl-C, or `stop` set) writes the image so far, marked
    interrupted in its recipe with the number of steps it got; a recipe that says so is reproduced
    to exactly that step.
    """
    rec = prep.recipe
    limit = prep.total if rec.interrupted and rec.steps_done is not None and rec.frames == 1 else None
    state = {"frame": 1, "done": 0}
    clock = _Clock(_pixels(prep.sizes, rec.params.iterations) * rec.frames)
    update, stepped = _reporters(prep.brain.preprocess, lambda p: (state["frame"], rec.frames, state["done"],
                                                                    prep.total), clock, on_progress, on_step, {})

    progress, after_step = _stoppable(update, stepped, state, prep.total, stop, limit)

    path = Path(target) if target is not None else None
    if rec.frames > 1:
        rgb, interrupted, count = _sequence(prep, path, progress, after_step, state, quality)
        return DreamRun(rgb, path, rec.with_(interrupted=interrupted), interrupted, count)
    rgb, result = pipeline.dream_rgb(prep.brain, prep.start, prep.objective, rec.params, seed=rec.seed,
                                     device=rec.device, plan=prep.plan, on_progress=progress, on_step=after_step,
                                     compile=rec.compile)
    done = rec.with_(interrupted=result.interrupted, steps_done=result.steps_done if result.interrupted else None)
    if limit is not None:  # a reproduced interruption is written as the original was
        done = rec
    if path is not None:
        output.write_image(path, rgb, done, quality=quality)
    return DreamRun(rgb, path, done, result.interrupted and limit is None, 1)


def _reporters(pre, counts: Callable[[render.Progress], tuple[int, int, int, int]], clock: _Clock,
               on_progress: Callable[[Update], None] | None, on_step: Callable[[Update], None] | None,
               extra: dict) -> tuple[Callable[[render.Progress], None], Callable[[render.Progress], None]]:
    """The render-level callbacks that hand a front end its Updates (counts, times, a lazy preview)."""

    def make(p: render.Progress) -> Update:
        image = p.image

        def preview() -> np.ndarray:
            assert image is not None
            return pipeline.from_net(pre, image[0].detach().float().cpu())

        frame, frames, done, total = counts(p)
        elapsed, eta = clock.times()
        where = {f.name: getattr(p, f.name) for f in fields(render.Progress)}
        return Update(**where, frame=frame, frames=frames, done=done, total=total, preview=preview,
                      elapsed_s=round(elapsed, 2), eta_s=None if eta is None else round(eta, 1), **extra)

    def update(p: render.Progress) -> None:
        if on_progress is not None:
            on_progress(make(p))

    def stepped(p: render.Progress) -> None:
        clock.step(p.size)
        if on_step is not None:
            on_step(make(p))

    return update, stepped


def _stoppable(report, stepped, state: dict, total: int, stop: threading.Event | None, limit: int | None = None):
    """The render callbacks with step counting (`state["done"]`) and stopping: at `limit` steps (a
    recipe's interrupted step) or when `stop` is set, right after the step it interrupts."""

    def progress(p: render.Progress) -> None:
        if p.tile == 1 and limit is not None and state["done"] >= limit:
            raise KeyboardInterrupt  # the recipe's interrupted step: stop exactly there
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        if p.tile == p.tiles:
            state["done"] += 1
        report(p)

    def after_step(p: render.Progress) -> None:
        stepped(p)
        if stop is not None and stop.is_set() and state["done"] < total:
            raise KeyboardInterrupt  # Stop keeps this step: no gradient of the next one is waited for

    return progress, after_step


def _sequence(prep: Prepared, path: Path | None, update, stepped, state: dict,
              quality: int) -> tuple[np.ndarray, bool, int]:
    rec = prep.recipe
    folder = sequence.frame_dir(path) if path is not None else None
    if folder is not None:
        folder.mkdir(exist_ok=True)
    images: list[np.ndarray] = []
    interrupted = False
    for k, (rgb, result) in enumerate(sequence.frames(
            prep.brain, prep.start, prep.objective, rec.params, rec.frames, rec.zoom, rec.rotate, seed=rec.seed,
            device=rec.device, plan=prep.plan, on_progress=update, on_step=stepped, compile=rec.compile)):
        interrupted = result.interrupted
        if folder is not None:
            output.write_image(folder / f"frame-{k + 1:04d}.png", rgb, rec.with_(interrupted=interrupted))
        images.append(rgb)
        state["frame"] = k + 2
    if path is not None:
        sequence.write_animation(path, images)
    return images[-1], interrupted, len(images)


def run_recipe(
    recipe: Recipe,
    target: str | Path | None,
    *,
    input_path: str | Path | None = None,
    guide_path: str | Path | None = None,
    reproduce: bool = False,
    on_progress: Callable[[Update], None] | None = None,
    on_step: Callable[[Update], None] | None = None,
    stop: threading.Event | None = None,
    say: Say | None = None,
) -> DreamRun:
    """Prepare and run one recipe: the whole of `zoo dream` for one image, without the terminal.

    Returns a DreamRun (image, path, the recipe as written, interrupted). Errors are UserError.
    """
    prep = prepare(recipe, input_path=input_path, guide_path=guide_path, reproduce=reproduce, say=say)
    for note in prep.notes:
        (say or (lambda m: None))(note)
    return run(prep, target, on_progress=on_progress, on_step=on_step, stop=stop)


# --- layer atlas ------------------------------------------------------------------------------


@dataclass
class AtlasRun:
    folder: Path
    entries: list[atlas.Entry]
    complete: bool


def dream_atlas(
    model: str,
    folder: Path,
    *,
    blobs: Sequence[str] = (),
    start: str = "noise",
    size: int = 256,
    params: DreamParams | None = None,
    seed: int = 0,
    columns: int | None = None,
    device: str = "cpu",
    on_progress: Callable[[Update], None] | None = None,
    on_step: Callable[[Update], None] | None = None,
    on_blob: Callable[[atlas.Entry, int, int], None] | None = None,
    stop: threading.Event | None = None,
    brain: Brain | None = None,
) -> AtlasRun:
    """Dream one start through each blob (default: every dreamable blob) and write a folder: one
    recipe-carrying PNG per blob, atlas.png (the contact sheet) and index.html.

    Updates count steps over every blob and name the blob being dreamt; `on_blob(entry, i, n)` is
    called when blob i of n is written. `stop` ends it after the current step, keeping what was made."""
    params = params or DreamParams(octaves=3, iterations=10, step=1.5)
    rec = _atlas_recipe(model, folder, start, size, params, seed, device)
    first = pipeline.load_start(rec)
    brain = brain or load_brain(model)
    names = list(blobs or brain.dreamable)
    for name in names:
        brain.resolve(parse_target(name))
    folder.mkdir(exist_ok=True)
    rec = rec.with_(model=brain.name, weights_sha256=brain.weights_sha256)
    plans = [pipeline.plan_for(brain, [blob], params, device) for blob in names]
    sizes = [render.usable_octaves(*first.shape[:2], params, (p.min_side, p.min_side)) for p in plans]
    total = sum(len(s) for s in sizes) * params.iterations
    clock = _Clock(sum(_pixels(s, params.iterations) for s in sizes))
    state = {"done": 0}
    where = {"blob": names[0] if names else "", "index": 1, "blobs": len(names)}
    report, stepped = _reporters(brain.preprocess, lambda p: (1, 1, state["done"], total), clock, on_progress,
                                 on_step, where)

    update, after_step = _stoppable(report, stepped, state, total, stop)

    items, entries = [], []
    for i, (blob, rgb, result) in enumerate(atlas.render_blobs(
            brain, first, names, params, seed=seed, device=device, on_progress=update, on_step=after_step)):
        tile = plans[i].tiles.tile  # recorded, as zoo dream does
        entries.append(_atlas_picture(folder, i + 1, brain, rgb, rec.with_(
            layers=(blob,), params=params.with_(tile=tile), interrupted=result.interrupted,
            steps_done=result.steps_done if result.interrupted else None)))
        items.append((blob, rgb))
        if on_blob is not None:
            on_blob(entries[-1], i + 1, len(names))
        if result.interrupted:
            break
        if i + 1 < len(names):
            where.update(blob=names[i + 1], index=i + 2)
    output.write_image(folder / "atlas.png", atlas.contact_sheet(items, columns))
    command = f"zoo atlas --model {brain.name} --start {start} --size {size} --seed {seed}"
    _atlas_page(folder, brain, entries, command, params)
    return AtlasRun(folder, entries, len(entries) == len(names))


def _atlas_recipe(model: str, folder: Path, start: str, size: int, params: DreamParams, seed: int,
                  device: str) -> Recipe:
    """The recipe every picture of an atlas shares (its layer set per picture), after checking the
    folder can be written and an image start is a readable picture."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    if not folder.parent.is_dir():
        raise UserError(f"{folder}: cannot write, folder {folder.parent} does not exist")
    image = None if start.partition(":")[0] in starts.KINDS else Path(start)
    if image is not None:
        starts.image_size(image)
    return Recipe(model=model, weights_sha256="", layers=(), params=params, seed=seed,
                  init="image" if image else start, input=str(image.resolve()) if image else None,
                  input_sha256=file_sha256(image) if image else None,
                  size=f"{size}" if image else f"{size}x{size}", device=device)


def _atlas_picture(folder: Path, number: int, brain: Brain, rgb: np.ndarray, rec: Recipe) -> atlas.Entry:
    """Write one blob's picture with its recipe; its entry gives the blob's shape in this picture."""
    (blob,) = rec.layers
    name = atlas.file_name(number, blob)
    output.write_image(folder / name, rgb, rec)
    at_size = brain.shapes_at(*rgb.shape[:2], [blob])  # its shape in this picture, not at the deploy size
    shape = at_size.get(blob, (brain.channels.get(blob, 0),))
    return atlas.Entry(blob, name, shape, brain.descriptions.get(blob, ""))


def _atlas_page(folder: Path, brain: Brain, entries: list, command: str, params: DreamParams) -> None:
    """index.html: the contact sheet with each blob's caption and the command that made it."""
    note = (f"Weights sha256 {brain.weights_sha256[:16]}…; {params.octaves} octave{'s' * (params.octaves != 1)} × "
            f"{params.iterations} step{'s' * (params.iterations != 1)}.")
    with output.atomic_path(folder / "index.html") as tmp:
        tmp.write_text(atlas.html_page(brain.name, entries, "atlas.png", command, note), encoding="utf-8")
