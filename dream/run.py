"""Run a dream: the one library entry that `zoo dream`, benchmarks, previews, the studio and video call.

`prepare` turns a Recipe into everything the loop needs (brain, start image, objective, tile plan)
and checks it all before any long work; `run` dreams it and writes the image(s), each carrying
its recipe. A front end passes a progress callback (it gets an `Update`, with a lazy preview of
the current image) and, to stop early, a `threading.Event`: the image so far is kept and written,
as Ctrl-C does. `dream_atlas` is the same for a layer atlas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from zoo.dream import atlas, output, pipeline, render, sequence, starts
from zoo.dream.brain import Brain, load_brain
from zoo.dream.objectives import Objective, parse_target
from zoo.dream.presets import PRESETS, DreamParams
from zoo.dream.recipe import Recipe, file_sha256

from zoo.errors import UserError

Say = Callable[[str], None]


@dataclass(frozen=True)
class Update:
    """Where a run is (all counts from 1; `done` of `total` counts steps over every frame).

    `preview()` returns the current octave's image as RGB float 0..255 (it converts on each call,
    so call it only when a preview is shown).
    """

    frame: int
    frames: int
    octave: int
    octaves: int
    step: int
    steps: int
    tile: int
    tiles: int
    done: int
    total: int
    preview: Callable[[], np.ndarray] = field(repr=False, compare=False)


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
    n_oct = len(render.usable_octaves(*start.shape[:2], recipe.params, (plan.min_side, plan.min_side)))
    total = recipe.frames * n_oct * recipe.params.iterations
    if reproduce and recipe.interrupted and recipe.steps_done is not None and recipe.frames == 1:
        total = recipe.steps_done
    return Prepared(resolved, brain, start, objective, plan, n_oct, total, notes)


def _preset_layer(recipe: Recipe, brain: Brain) -> list[str]:
    """A preset's blob, when the preset was made for this brain (else the brain's default)."""
    p = PRESETS.get(recipe.preset or "")
    return [p.layer] if p and p.layer and p.model == brain.name else []


def run(
    prep: Prepared,
    target: str | Path | None,
    *,
    on_progress: Callable[[Update], None] | None = None,
    stop: threading.Event | None = None,
    quality: int = 92,
) -> DreamRun:
    """Dream a prepared recipe and write it to `target` (a still, or an animation with frames beside it).

    `target` None writes nothing (previews). An interrupted run (Ctrl-C, or `stop` set) writes the
    image so far, marked interrupted in its recipe with the number of steps it got; a recipe that
    says so is reproduced to exactly that step.
    """
    rec = prep.recipe
    limit = prep.total if rec.interrupted and rec.steps_done is not None and rec.frames == 1 else None
    state = {"frame": 1, "done": 0}
    pre = prep.brain.preprocess

    def update(p: render.Progress) -> None:
        if p.tile == 1 and limit is not None and state["done"] >= limit:
            raise KeyboardInterrupt  # the recipe's interrupted step: stop exactly there
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        if p.tile == p.tiles:
            state["done"] += 1
        if on_progress is not None:
            image = p.image

            def preview() -> np.ndarray:
                assert image is not None
                return pipeline.from_net(pre, image[0].detach().float().cpu())

            on_progress(Update(state["frame"], rec.frames, p.octave, p.octaves, p.step, p.steps, p.tile, p.tiles,
                               state["done"], prep.total, preview))

    path = Path(target) if target is not None else None
    if rec.frames > 1:
        rgb, interrupted, count = _sequence(prep, path, update, state, quality)
        return DreamRun(rgb, path, rec.with_(interrupted=interrupted), interrupted, count)
    rgb, result = pipeline.dream_rgb(prep.brain, prep.start, prep.objective, rec.params, seed=rec.seed,
                                     device=rec.device, plan=prep.plan, on_progress=update)
    done = rec.with_(interrupted=result.interrupted, steps_done=result.steps_done if result.interrupted else None)
    if limit is not None:  # a reproduced interruption is written as the original was
        done = rec
    if path is not None:
        output.write_image(path, rgb, done, quality=quality)
    return DreamRun(rgb, path, done, result.interrupted and limit is None, 1)


def _sequence(prep: Prepared, path: Path | None, update, state: dict, quality: int) -> tuple[np.ndarray, bool, int]:
    rec = prep.recipe
    folder = sequence.frame_dir(path) if path is not None else None
    if folder is not None:
        folder.mkdir(exist_ok=True)
    images: list[np.ndarray] = []
    interrupted = False
    for k, (rgb, result) in enumerate(sequence.frames(
            prep.brain, prep.start, prep.objective, rec.params, rec.frames, rec.zoom, rec.rotate, seed=rec.seed,
            device=rec.device, plan=prep.plan, on_progress=update)):
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
    stop: threading.Event | None = None,
    say: Say | None = None,
) -> DreamRun:
    """Prepare and run one recipe: the whole of `zoo dream` for one image, without the terminal.

    Returns a DreamRun (image, path, the recipe as written, interrupted). Errors are UserError.
    """
    prep = prepare(recipe, input_path=input_path, guide_path=guide_path, reproduce=reproduce, say=say)
    for note in prep.notes:
        (say or (lambda m: None))(note)
    return run(prep, target, on_progress=on_progress, stop=stop)


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
    on_progress: Callable[[render.Progress], None] | None = None,
    stop: threading.Event | None = None,
) -> AtlasRun:
    """Dream one start through each blob (default: every dreamable blob) and write a folder: one
    recipe-carrying PNG per blob, atlas.png (the contact sheet) and index.html."""
    params = params or DreamParams(octaves=3, iterations=10, step=1.5)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    if not folder.parent.is_dir():
        raise UserError(f"{folder}: cannot write, folder {folder.parent} does not exist")
    kind = start.partition(":")[0]
    image = None if kind in starts.KINDS else Path(start)
    if image is not None:
        starts.image_size(image)
    rec = Recipe(model=model, weights_sha256="", layers=(), params=params, seed=seed,
                 init="image" if image else start, input=str(image.resolve()) if image else None,
                 input_sha256=file_sha256(image) if image else None,
                 size=f"{size}" if image else f"{size}x{size}", device=device)
    first = pipeline.load_start(rec)
    brain = load_brain(model)
    names = list(blobs or brain.dreamable)
    for name in names:
        brain.resolve(parse_target(name))
    folder.mkdir(exist_ok=True)
    rec = rec.with_(model=brain.name, weights_sha256=brain.weights_sha256)

    def update(p: render.Progress) -> None:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        if on_progress is not None:
            on_progress(p)

    items, entries = [], []
    for i, (blob, rgb, result) in enumerate(atlas.render_blobs(
            brain, first, names, params, seed=seed, device=device, on_progress=update)):
        name = atlas.file_name(i + 1, blob)
        tile = pipeline.plan_for(brain, [blob], params, device).tiles.tile  # recorded, as zoo dream does
        output.write_image(folder / name, rgb, rec.with_(layers=(blob,), params=params.with_(tile=tile)))
        items.append((blob, rgb))
        shape = brain.dreamable.get(blob, (brain.channels.get(blob, 0),))
        entries.append(atlas.Entry(blob, name, shape, brain.descriptions.get(blob, "")))
        if result.interrupted:
            break
    output.write_image(folder / "atlas.png", atlas.contact_sheet(items, columns))
    command = f"zoo atlas --model {brain.name} --start {start} --size {size} --seed {seed}"
    note = (f"Weights sha256 {brain.weights_sha256[:16]}…; {params.octaves} octave{'s' * (params.octaves != 1)} × "
            f"{params.iterations} step{'s' * (params.iterations != 1)}.")
    with output.atomic_path(folder / "index.html") as tmp:
        tmp.write_text(atlas.html_page(brain.name, entries, "atlas.png", command, note), encoding="utf-8")
    return AtlasRun(folder, entries, len(entries) == len(names))
