"""`zoo dream`, `zoo layers` and `zoo atlas`: thin commands over dream's library functions.

Options become a Recipe; the recipe is what runs (so `--recipe OUT.png` runs the same code), and
the progress bar is a callback handed to the loop from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from zoo.dream.presets import PRESETS, DreamParams, get_preset
from zoo.dream.recipe import Recipe, file_sha256, png_info, read_recipe

from zoo.errors import UserError


class _Lazy:
    """A module imported on first use: torch loads only when a dream command runs, not for `zoo --help`
    or `zoo convert` (whose path to ONNX never imports torch)."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        import importlib

        return getattr(importlib.import_module(self._name), attr)


atlas, output, pipeline, sequence, starts = (
    _Lazy(f"zoo.dream.{m}") for m in ("atlas", "output", "pipeline", "sequence", "starts"))
_objectives, _render = _Lazy("zoo.dream.objectives"), _Lazy("zoo.dream.render")


def parse_target(text: str):
    return _objectives.parse_target(text)


def usable_octaves(*args, **kwargs):
    return _render.usable_octaves(*args, **kwargs)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def progress_bar(total: int, label: str) -> Iterator[Callable[[Any], None]]:
    """A rich bar over every step of every octave (and frame); tiles show in the description."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def update(p) -> None:  # a dream.render.Progress
            tiles = f" · tile {p.tile}/{p.tiles}" if p.tiles > 1 else ""
            bar.update(task, description=f"{label} · octave {p.octave}/{p.octaves} · step {p.step}/{p.steps}{tiles}",
                       advance=1 if p.tile == p.tiles else 0)

        yield update


def _sha(path: str | Path | None) -> str | None:
    return file_sha256(path) if path is not None and Path(path).is_file() else None


def _recipe_from_options(
    input_: Path | None, model: str | None, layers: list[str], weights: list[float], guide: Path | None,
    init: str, size: str | None, params: DreamParams, seed: int, frames: int, zoom: float, rotate: float,
    preset: str | None, device: str,
) -> Recipe:
    starts.parse_init(init)
    if guide is not None:
        starts.load_image(guide)  # undecodable guides fail before the brain loads
    return Recipe(
        model=model or "", weights_sha256="", layers=tuple(layers), params=params, seed=seed,
        weights=tuple(weights), init=init, input=str(input_) if input_ else None, input_sha256=_sha(input_),
        guide=str(guide) if guide else None, guide_sha256=_sha(guide), size=size, frames=frames, zoom=zoom,
        rotate=rotate, device=device, preset=preset,
    )


def _default_output(input_: Path | None, frames: int) -> Path:
    stem = input_.stem if input_ is not None else "dream"
    return Path(f"{stem}-dream{'.webp' if frames > 1 else '.png'}")


def dream_cmd(
    ctx: typer.Context,
    input_: Annotated[Path | None, typer.Argument(
        metavar="INPUT", help="start image (optional with --init noise|gradient|color, or with --recipe)")] = None,
    output_: Annotated[Path | None, typer.Option("-o", "--output", help="PNG (or .gif/.webp with --frames)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="a zoo model name (see `zoo list`)")] = None,
    layer: Annotated[list[str] | None, typer.Option(
        "--layer", "-l", help="BLOB, BLOB:CH[,CH..], BLOB:LABEL or BLOB:CH@Y,X; repeatable")] = None,
    weight: Annotated[list[float] | None, typer.Option("--weight", "-w", help="one per --layer, default 1")] = None,
    guide: Annotated[Path | None, typer.Option("--guide", help="steer toward this image's features")] = None,
    init: Annotated[str, typer.Option("--init", help="image | noise[:SPREAD] | gradient[:DEG] | color[:#RRGGBB]")]
    = "image",
    octaves: Annotated[int | None, typer.Option("--octaves", min=1, max=32)] = None,
    octave_scale: Annotated[float | None, typer.Option("--octave-scale", min=1.0, max=4.0)] = None,
    iterations: Annotated[int | None, typer.Option("--iterations", min=1)] = None,
    step: Annotated[float | None, typer.Option("--step", min=0.0, help="ascent step in pixel units")] = None,
    jitter: Annotated[int | None, typer.Option("--jitter", min=0)] = None,
    tile: Annotated[int | None, typer.Option("--tile", min=16, help="tile side; default: from free memory")] = None,
    size: Annotated[str | None, typer.Option("--size", help="W or WxH: scale the input first")] = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="zoom/rotate feedback frames")] = 1,
    zoom: Annotated[float, typer.Option("--zoom", min=0.1, max=10.0, help="zoom per frame")] = 1.05,
    rotate: Annotated[float, typer.Option("--rotate", help="degrees per frame")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    preset: Annotated[str | None, typer.Option("--preset", help=f"one of: {', '.join(PRESETS)}")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: cuda if present)")] = None,
    recipe: Annotated[Path | None, typer.Option("--recipe", help="reproduce the dream stored in this PNG")] = None,
    blend: Annotated[float, typer.Option("--blend", min=0.0, max=1.0, help="clips: share of the last frame's "
                                         "detail carried along the flow")] = 0.8,
    flow: Annotated[str, typer.Option("--flow", help="clips: optical flow, dis or farneback")] = "dis",
    no_flow: Annotated[bool, typer.Option("--no-flow", help="clips: dream frames independently")] = False,
    frame_iterations: Annotated[int | None, typer.Option("--frame-iterations", min=1,
                                                         help="clips: steps after frame 1 (default: a third)")] = None,
    start_frame: Annotated[int, typer.Option("--start-frame", min=0, help="clips: first source frame")] = 0,
    end_frame: Annotated[int | None, typer.Option("--end-frame", min=1, help="clips: stop before this frame")] = None,
    fps: Annotated[float | None, typer.Option("--fps", min=0.01, help="clips: subsample to this rate")] = None,
    crf: Annotated[int, typer.Option("--crf", min=0, max=63, help="clips: encoder quality, lower is better")] = 18,
    codec: Annotated[str | None, typer.Option("--codec", help="clips: libx264, libvpx-vp9, ...")] = None,
    chunks: Annotated[bool, typer.Option("--chunks", help="clips under torchrun: one part per rank")] = False,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="clips with --chunks: frames dreamt before a part")]
    = 4,
    nproc: Annotated[int | None, typer.Option("--nproc", min=1, help="processes through torchrun")] = None,
) -> None:
    """Dream on an image or a clip with any brain of the zoo, at any size."""
    from zoo.dream import video, video_cli

    if (nproc or 1) > 1 and not video_cli.distributed.launched():
        video_cli.relaunch(ctx, nproc)
    clip = video.is_clip_path(input_)  # a video file, a folder of frames, an animated GIF/WebP
    if recipe is not None:
        rec = read_recipe(recipe)
        rec = rec.with_(device=pipeline.check_device(device or rec.device))
        target = output_ or Path(f"{recipe.stem}-again{'.webp' if rec.frames > 1 else '.png'}")
    else:
        p = get_preset(preset) if preset else None
        base = p.params if p else DreamParams()
        params = base.with_(octaves=octaves, octave_scale=octave_scale, iterations=iterations, step=step,
                            jitter=jitter, tile=tile)
        model = model or (p.model if p else None)
        layers = list(layer or ([p.layer] if p and p.layer and model == p.model else []))
        rec = _recipe_from_options(input_, model, layers, list(weight or []), guide, init, size, params, seed,
                                   frames, zoom, rotate, preset, pipeline.check_device(device or
                                                                                     pipeline.default_device()))
        target = output_ or _default_output(input_, frames)
    if clip and input_ is not None:
        opts = video.VideoOptions(blend, "none" if no_flow else flow, frame_iterations, start_frame, end_frame,
                                  fps, crf, codec, chunks, warmup)
        return video_cli.clip_cmd(rec, input_, output_, opts, out, err)
    if rec.frames > 1:
        output.check_writable(target, {k: v for k, v in output.FORMATS.items() if k in sequence.ANIMATIONS})
    else:
        output.check_writable(target)
    with video_cli.ranked_still(rec.device, target, (out, err)) as target:  # under torchrun: rank 0 writes
        run_dream(rec, target, input_override=str(input_) if (recipe is not None and input_) else None,
                  reproduce=recipe is not None)


def run_dream(rec: Recipe, target: Path, *, input_override: str | None = None, reproduce: bool = False) -> None:
    """Load, dream and write one recipe (a still or a sequence)."""
    from zoo.dream.brain import load_brain

    start = pipeline.load_start(rec, input_override)
    brain = load_brain(rec.model or None)
    if reproduce and rec.weights_sha256 and brain.weights_sha256 != rec.weights_sha256:
        raise UserError(f"model {brain.name}: its weights differ from the recipe's (sha256 {rec.weights_sha256[:12]}…)")
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
    total = rec.frames * n_oct * rec.params.iterations
    label = f"{brain.name} {', '.join(rec.layers)}"
    h, w = start.shape[:2]
    tiles = f"tiles of {plan.tiles.tile}" if max(h, w) > plan.tiles.tile else "untiled"
    err.print(f"dreaming {w}x{h} on {label}: {n_oct} octaves × {rec.params.iterations} steps"
              f"{f' × {rec.frames} frames' if rec.frames > 1 else ''}, {tiles}, {rec.device}, seed {rec.seed}",
              markup=False)
    with progress_bar(total, label) as update:
        if rec.frames > 1:
            done, interrupted = _write_sequence(brain, start, objective, rec, plan, target, update)
        else:
            rgb, result = pipeline.dream_rgb(brain, start, objective, rec.params, seed=rec.seed, device=rec.device,
                                             plan=plan, on_progress=update)
            interrupted = result.interrupted
            rec = rec.with_(interrupted=interrupted)
            output.write_image(target, rgb, png_info(rec))
    if interrupted:
        err.print(f"interrupted: wrote the dream so far to {target}", markup=False)
        raise typer.Exit(130)
    out.print(f"wrote {target}", markup=False)


def _write_sequence(brain, start, objective, rec: Recipe, plan, target: Path, update) -> tuple[int, bool]:
    folder = sequence.frame_dir(target)
    folder.mkdir(exist_ok=True)
    images: list[np.ndarray] = []
    interrupted = False
    for k, (rgb, result) in enumerate(sequence.frames(
            brain, start, objective, rec.params, rec.frames, rec.zoom, rec.rotate, seed=rec.seed,
            device=rec.device, plan=plan, on_progress=update)):
        interrupted = result.interrupted
        frame = folder / f"frame-{k + 1:04d}.png"
        output.write_image(frame, rgb, png_info(rec.with_(interrupted=interrupted)))
        images.append(rgb)
    sequence.write_animation(target, images)
    out.print(f"wrote {len(images)} frames to {folder}/", markup=False)
    return len(images), interrupted


def layers_cmd(
    model: Annotated[str, typer.Argument(help="a zoo model name")],
) -> None:
    """List a model's dreamable blobs with their shapes and channel counts."""
    from zoo.dream.brain import load_brain

    brain = load_brain(model)
    table = Table(title=f"dreamable blobs of {brain.name} (shape at the deploy size)")
    for col, just in (("blob", "left"), ("channels", "right"), ("shape", "right"), ("tends to paint", "left")):
        table.add_column(col, justify=just)
    for blob, shape in brain.dreamable.items():
        name = f"{blob} (default)" if blob == brain.default_blob else blob
        table.add_row(name, str(brain.channels.get(blob, shape[0])), "×".join(map(str, shape)),
                      brain.descriptions.get(blob, ""))
    out.print(table)
    classes = [b for b in brain.labels if b not in brain.dreamable]
    if classes:
        out.print(f"class outputs: {', '.join(classes)} ({len(brain.labels[classes[0]])} classes): "
                  f"use --layer {classes[0]}:INDEX or --layer {classes[0]}:LABEL", markup=False)


def atlas_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="a zoo model name")],
    blobs: Annotated[list[str] | None, typer.Option("--blobs", "-b", help="repeatable; default: every dreamable blob")]
    = None,
    start: Annotated[str, typer.Option("--start", help="noise | gradient | color[:#RRGGBB] | an image file")]
    = "noise",
    output_: Annotated[Path | None, typer.Option("-o", "--output", help="folder (default: atlas-MODEL)")] = None,
    size: Annotated[int, typer.Option("--size", min=16, help="side of each picture")] = 256,
    octaves: Annotated[int, typer.Option("--octaves", min=1)] = 3,
    iterations: Annotated[int, typer.Option("--iterations", min=1)] = 10,
    step: Annotated[float, typer.Option("--step", min=0.0)] = 1.5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    columns: Annotated[int | None, typer.Option("--columns", min=1)] = None,
    device: Annotated[str | None, typer.Option("--device")] = None,
) -> None:
    """Render the same start through every dreamable blob: a labelled contact sheet and a web page."""
    from zoo.dream.brain import load_brain

    dev = pipeline.check_device(device or pipeline.default_device())
    folder = output_ or Path(f"atlas-{model}")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    if not folder.parent.is_dir():
        raise UserError(f"{folder}: cannot write, folder {folder.parent} does not exist")
    kind = start.partition(":")[0]
    image = None if kind in starts.KINDS else Path(start)
    if image is not None:
        starts.load_image(image)
    rec = Recipe(model=model, weights_sha256="", layers=(), params=DreamParams(octaves=octaves, iterations=iterations,
                 step=step), seed=seed, init="image" if image else start, input=str(image) if image else None,
                 input_sha256=_sha(image), size=f"{size}" if image else f"{size}x{size}", device=dev)
    first = pipeline.load_start(rec)
    brain = load_brain(model)
    names = list(blobs or brain.dreamable)
    for name in names:
        brain.resolve(parse_target(name))
    folder.mkdir(exist_ok=True)
    rec = rec.with_(model=brain.name, weights_sha256=brain.weights_sha256)
    items, entries = [], []
    total = len(names) * octaves * iterations
    with progress_bar(total, f"atlas {brain.name}") as update:
        for i, (blob, rgb, result) in enumerate(atlas.render_blobs(
                brain, first, names, rec.params, seed=seed, device=dev, on_progress=update)):
            name = atlas.file_name(i + 1, blob)
            tile = pipeline.plan_for(brain, [blob], rec.params, dev).tiles.tile  # recorded, as zoo dream does
            blob_rec = rec.with_(layers=(blob,), params=rec.params.with_(tile=tile))
            output.write_image(folder / name, rgb, png_info(blob_rec))
            items.append((blob, rgb))
            shape = brain.dreamable.get(blob, (brain.channels.get(blob, 0),))
            entries.append(atlas.Entry(blob, name, shape, brain.descriptions.get(blob, "")))
            if result.interrupted:
                break
    sheet = atlas.contact_sheet(items, columns)
    output.write_image(folder / "atlas.png", sheet)
    command = f"zoo atlas --model {brain.name} --start {start} --size {size} --seed {seed}"
    note = f"Weights sha256 {brain.weights_sha256[:16]}…; {octaves} octaves × {iterations} steps."
    with output.atomic_path(folder / "index.html") as tmp:
        tmp.write_text(atlas.html_page(brain.name, entries, "atlas.png", command, note), encoding="utf-8")
    out.print(f"wrote {len(entries)} pictures, {folder / 'atlas.png'} and {folder / 'index.html'}", markup=False)
    if len(entries) < len(names):
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("dream")(dream_cmd)
    app.command("layers")(layers_cmd)
    app.command("atlas")(atlas_cmd)
