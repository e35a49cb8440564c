"""`zoo dream`, `zoo layers`, `zoo labels` and `zoo atlas`: thin commands over dream's library.

Options become a Recipe and `zoo.dream.run` runs it (so `--recipe OUT.png` runs the same code);
the progress bar is a callback handed to it from here. Torch loads only inside the commands
(function-local imports), so `zoo --help` stays fast.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from zoo.dream.presets import PRESETS, DreamParams, describe
from zoo.dream.recipe import Recipe, file_sha256, locate, read_recipe

from zoo import formats
from zoo.cli_output import err_console, make_progress, print_json, print_table
from zoo.errors import UserError

out = Console(highlight=False)
err = err_console()

Device = enum.Enum("Device", {"cpu": "cpu", "cuda": "cuda"}, type=str)
PresetName = enum.Enum("PresetName", {name: name for name in PRESETS}, type=str)
IMAGE_TYPES = (*formats.STILL_INPUTS, ".svg", ".svgz")  # and SVG drawings (dream/svg.py renders them)
OUT_TYPES = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
Format = enum.Enum("Format", {k: k for k in OUT_TYPES}, type=str)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"


@contextlib.contextmanager
def progress_bar(total: int, label: str, console: Console | None = None) -> Iterator[Callable]:
    """One bar over every step of every image, octave and frame; where it is shows in a short text."""
    with make_progress(console or err) as bar:
        task = bar.add_task(label, total=total)

        def update(u, prefix: str = "") -> None:  # a zoo.dream.run.Update
            where = f"{prefix}oct {u.octave}/{u.octaves} step {u.step}/{u.steps}"
            if u.frames > 1:
                where = f"{prefix}frame {u.frame}/{u.frames} {where[len(prefix):]}"
            if u.tiles > 1:
                where += f" tile {u.tile}/{u.tiles}"
            if u.blobs > 1:  # an atlas: which blob of how many
                where = f"blob {u.index}/{u.blobs} {where}"
            bar.update(task, description=where, advance=1 if u.tile == u.tiles else 0)

        yield update


def _abs(path: Path | None) -> str | None:
    return str(path.resolve()) if path is not None else None


def _sha(path: Path | None) -> str | None:
    return file_sha256(path) if path is not None and Path(path).is_file() else None


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given, folders as the images inside them (sorted); a missing path is one line."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_TYPES)
            if not found:
                raise UserError(f"{p}: folder holds no images ({', '.join(IMAGE_TYPES)})")
            files.extend(found)
        elif not p.exists():
            raise UserError(f"{p}: no such file")
        else:
            files.append(p)
    return files


def output_paths(inputs: list[Path], output: Path | None, fmt: Format | None, frames: int) -> list[Path]:
    """Where each input's dream goes: `-o FILE` for one input, `-o FOLDER` (made if needed) for many."""
    ext = OUT_TYPES[fmt.value] if fmt else (".webp" if frames > 1 else ".png")
    many = len(inputs) > 1
    if output is not None and (many or output.is_dir() or (not output.suffix and not output.exists())):
        if output.exists() and not output.is_dir():
            raise UserError(f"{output}: several inputs need a folder for -o, and this is a file")
        if not output.parent.is_dir():
            raise UserError(f"{output}: cannot write, folder {output.parent} does not exist")
        output.mkdir(exist_ok=True)
        targets = [output / f"{p.stem}-dream{ext}" for p in inputs]
    elif output is not None:
        targets = [output]
    else:
        targets = [Path(f"{p.stem}-dream{ext}") for p in inputs] or [Path(f"dream{ext}")]
    if len(set(targets)) != len(targets):
        raise UserError("two inputs have the same name; their dreams would overwrite each other")
    return targets


def dream_cmd(
    ctx: typer.Context,
    inputs: Annotated[list[Path] | None, typer.Argument(
        metavar="INPUT...", help="start image(s) or folder(s) (optional with --init noise|gradient|color, "
        "or with --recipe)", show_default=False)] = None,
    output_: Annotated[Path | None, typer.Option(
        "-o", "--output", help="file (.png .jpg .webp .tif; .gif/.webp with --frames) or, for several inputs, "
        "a folder")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="a zoo model name (see `zoo list`)")] = None,
    layer: Annotated[list[str] | None, typer.Option(
        "--layer", "-l", help="BLOB, BLOB:CH[,CH..], BLOB:LABEL (see `zoo labels`) or BLOB:CH@Y,X (Y,X in the "
        "blob at the final size, see `zoo layers MODEL --size`); repeatable")] = None,
    weight: Annotated[list[float] | None, typer.Option("--weight", "-w", help="one per --layer, default 1")] = None,
    guide: Annotated[Path | None, typer.Option("--guide", help="steer toward this image's features")] = None,
    init: Annotated[str, typer.Option("--init", help="image | noise[:SPREAD] | gradient[:DEG] | color[:#RRGGBB]")]
    = "image",
    octaves: Annotated[int | None, typer.Option("--octaves", min=1, max=32)] = None,
    octave_scale: Annotated[float | None, typer.Option("--octave-scale", min=1.01, max=4.0)] = None,
    iterations: Annotated[int | None, typer.Option("--iterations", min=1)] = None,
    step: Annotated[float | None, typer.Option("--step", min=0.0, max=1000.0, help="ascent step in pixel units")]
    = None,
    jitter: Annotated[int | None, typer.Option("--jitter", min=0)] = None,
    tile: Annotated[int | None, typer.Option(
        "--tile", min=16, help="tile side; images up to 8/7 of it run whole; default: from free memory")] = None,
    size: Annotated[str | None, typer.Option("--size", help="W or WxH: scale the input first")] = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="zoom/rotate feedback frames")] = 1,
    zoom: Annotated[float, typer.Option("--zoom", min=0.1, max=10.0, help="zoom per frame")] = 1.05,
    rotate: Annotated[float, typer.Option("--rotate", min=-360.0, max=360.0, help="degrees per frame")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    preset: Annotated[PresetName | None, typer.Option("--preset", help="named parameter set")] = None,
    device: Annotated[Device | None, typer.Option("--device", help="default: cuda if present")] = None,
    fmt: Annotated[Format | None, typer.Option("--format", help="output type for folders (default png)")] = None,
    quality: Annotated[int, typer.Option("--quality", min=1, max=100, help="JPEG/WebP quality")] = 92,
    recipe: Annotated[Path | None, typer.Option("--recipe", help="reproduce the dream stored in this image")]
    = None,
    blend: Annotated[float, typer.Option("--blend", min=0.0, max=1.0, help="clips: share of the last frame's "
                                         "detail carried along the flow")] = 0.8,
    flow: Annotated[str, typer.Option("--flow", help="clips: optical flow, dis or farneback")] = "dis",
    no_flow: Annotated[bool, typer.Option("--no-flow", help="clips: dream frames independently")] = False,
    frame_iterations: Annotated[int | None, typer.Option("--frame-iterations", min=1, max=100_000,
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
    compile_: Annotated[bool, typer.Option(
        "--compile", help="run the net through torch.compile (opt-in; the first run per size compiles for a "
        "minute or more, later runs load it from $ZOO_HOME/cache/compile)")] = False,
    strokes: Annotated[int | None, typer.Option(
        "--strokes", min=1, max=20000, help="paint the dream in N Bézier strokes and write an SVG (-o X.svg; "
        "default 400 for an .svg output; --iterations steps, default 200)")] = None,
    underlay: Annotated[bool, typer.Option("--underlay", help="strokes: paint over the photo, not its mean colour")]
    = False,
    layer_path: Annotated[str | None, typer.Option(
        "--layer-path", help="a journey: cross-fade the objective along BLOB,BLOB,... (or all: shallow to deep) "
        "over --frames of zoom; -o a video, .gif/.webp or folder; --fps its rate (default 24)")] = None,
) -> None:
    """Dream on images or clips with any brain of the zoo, at any size."""
    from zoo.dream import output, pipeline, sequence, starts, vector_cli, video, video_cli

    if (nproc or 1) > 1 and not video_cli.distributed.launched():
        video_cli.relaunch(ctx, nproc)
    given = list(inputs or [])
    dev = pipeline.check_device(device.value if device else pipeline.default_device())
    jobs: list[tuple[Recipe, Path, dict]] = []
    if recipe is not None and recipe.suffix.lower() == ".svg":  # a stroke dream: painted again
        return vector_cli.reproduce_strokes(recipe, output_, device.value if device else None, out, err,
                                            progress_bar)
    if recipe is not None and video.is_clip_recipe(recipe):  # a clip's record: the whole clip again
        return video_cli.reproduce_cmd(recipe, given, output_, device.value if device else None, out, err)
    if recipe is not None:
        files = expand_inputs(given)
        if len(files) > 1:
            raise UserError("--recipe reproduces one dream; give at most one INPUT")
        rec = read_recipe(recipe)
        rec = rec.with_(device=pipeline.check_device(device.value if device else rec.device))
        if compile_:
            rec = rec.with_(compile=True)
        where: dict = {}
        if files:
            rec, where = _input_for(rec, files[0], where)
        elif rec.input:
            where["input_path"] = locate(rec.input, recipe, "input", rec.input_sha256)
        if guide is not None:
            starts.image_size(guide)
            rec = rec.with_(guide=_abs(guide), guide_sha256=_sha(guide))
        elif rec.guide:
            where["guide_path"] = locate(rec.guide, recipe, "guide", rec.guide_sha256)
        if rec.interrupted:
            err.print(f"note: {recipe} was interrupted; reproducing it to the same step"
                      if rec.frames == 1 and rec.steps_done is not None else
                      f"note: {recipe} was interrupted; this re-runs the whole dream", markup=False)
        ext = ".webp" if rec.frames > 1 else (recipe.suffix.lower() if recipe.suffix.lower() in output.STILLS
                                               else ".png")
        jobs.append((rec, output_ or Path(f"{recipe.stem}-again{ext}"), where))
    else:
        from zoo.dream import run

        params = dict(octaves=octaves, octave_scale=octave_scale, iterations=iterations, step=step, jitter=jitter,
                      tile=tile)
        starts.parse_init(init)
        if guide is not None:
            starts.image_size(guide)  # a missing or undecodable guide fails before the brain loads

        def new_recipe(path: Path | None) -> Recipe:
            return run.new_recipe(model=model, layers=layer or (), weights=weight or (), preset=preset.value if preset
                                  else None, params=params, init=init, input_path=path, guide_path=guide, size=size,
                                  seed=seed, frames=frames, zoom=zoom, rotate=rotate, device=dev,
                                  compile=compile_)

        if layer_path is not None or strokes is not None or underlay or (output_ and output_.suffix.lower() == ".svg"):
            return _vector(new_recipe(given[0] if len(given) == 1 else None), given, output_, strokes, underlay,
                           layer_path, (fps, codec, crf), iterations)
        if len(given) == 1 and _is_clip(video, given[0], output_):
            opts = video.VideoOptions(blend, "none" if no_flow else flow, frame_iterations, start_frame, end_frame,
                                      fps, crf, codec, chunks, warmup)
            return video_cli.clip_cmd(new_recipe(given[0]), given[0], output_, opts, out, err)
        files = expand_inputs(given)
        for path, target in zip(files or [None], output_paths(files, output_, fmt, frames)):
            jobs.append((new_recipe(path), target, {}))
    for rec, target, _ in jobs:
        output.check_writable(target, {k: v for k, v in output.FORMATS.items() if k in sequence.ANIMATIONS}
                              if rec.frames > 1 else output.STILLS)
    if video_cli.distributed.launched():  # under torchrun the ranks share each step's tiles; rank 0 writes
        if len(jobs) != 1:
            raise UserError("--nproc dreams one image (or one clip) at a time; give one INPUT")
        rec, target, where = jobs[0]
        with video_cli.ranked_still(rec.device, target, (out, err)) as ranked:
            _run_jobs([(rec, ranked, where)], reproduce=recipe is not None, quality=quality)
        return
    _run_jobs(jobs, reproduce=recipe is not None, quality=quality)


def _vector(rec: Recipe, given: list[Path], output_: Path | None, strokes: int | None, underlay: bool,
            layer_path: str | None, encoding: tuple, iterations: int | None) -> None:
    """Stroke dreams and journeys: one start each (an image, or --init), handed to dream/vector_cli.py."""
    from zoo.dream import paint, vector_cli

    if len(given) > 1:
        raise UserError("strokes and journeys dream one start at a time; give at most one INPUT")
    if layer_path is not None:
        if strokes is not None or underlay:
            raise UserError("--layer-path makes a zoom film; --strokes and --underlay make an SVG: choose one")
        return vector_cli.journey_cmd(rec, layer_path, output_, *encoding, out, err)
    if output_ is not None and output_.suffix.lower() != ".svg":
        raise UserError(f"{output_}: strokes are written as SVG; use -o NAME.svg")
    if rec.frames > 1:
        raise UserError("--strokes paints one picture; drop --frames")
    if iterations is None:
        rec = rec.with_(params=rec.params.with_(iterations=paint.STEPS))
    return vector_cli.strokes_cmd(rec, paint.StrokeOptions(count=strokes or 400, underlay=underlay), output_,
                                  out, err, progress_bar)


def _is_clip(video, path: Path, output_: Path | None) -> bool:
    """A video file or an animated GIF/WebP is a clip; a folder is a clip of frames only when -o names one
    file (a clip), otherwise it is a batch of photos."""
    if path.is_dir():
        return output_ is not None and output_.suffix.lower() in (*video.VIDEO_SUFFIXES, *video.ANIMATION_SUFFIXES)
    return video.is_clip_path(path)


def _input_for(rec: Recipe, path: Path, where: dict) -> tuple[Recipe, dict]:
    """INPUT with --recipe: the recipe's own input moved (same checksum) or another input (override)."""
    if rec.input_sha256 and file_sha256(path) == rec.input_sha256:
        return rec, {**where, "input_path": path}
    return rec.with_(input=_abs(path), input_sha256=_sha(path)), where


def _run_jobs(jobs: list[tuple[Recipe, Path, dict]], *, reproduce: bool, quality: int) -> None:
    """Prepare every dream first (all errors before any long work), then run them under one bar."""
    from zoo.dream import run
    from zoo.dream.brain import load_brain

    brains: dict[str, object] = {}
    prepared = []
    said: set[str] = set()
    for rec, target, where in jobs:
        key = rec.model
        if key not in brains:
            brains[key] = load_brain(rec.model or None)
        prep = run.prepare(rec, reproduce=reproduce, brain=brains[key], **where)  # type: ignore[arg-type]
        for note in prep.notes:
            if note not in said:  # several inputs of one size: said once
                err.print(note, markup=False)
                said.add(note)
        prepared.append((prep, target))
    first = prepared[0][0]
    if first.recipe.preset:
        err.print(describe(first.recipe.preset, first.brain.name), markup=False)
    total = sum(p.total for p, _ in prepared)
    for i, (prep, _) in enumerate(prepared):
        rec, h, w = prep.recipe, *prep.start.shape[:2]
        tiles = f"tiles of {prep.plan.tiles.tile}" if prep.plan.tiles.splits(h, w) else "untiled"
        which = f"{i + 1}/{len(prepared)} " if len(prepared) > 1 else ""
        frames = f" × {plural(rec.frames, 'frame')}" if rec.frames > 1 else ""
        err.print(f"dreaming {which}{w}x{h} on {prep.brain.name} {', '.join(rec.layers)}: "
                  f"{plural(prep.octaves, 'octave')} × {plural(rec.params.iterations, 'step')}{frames}, {tiles}, "
                  f"{rec.device}{', compiled' if rec.compile else ''}, seed {rec.seed}", markup=False)
    with progress_bar(total, "starting") as update:
        for i, (prep, target) in enumerate(prepared):
            prefix = f"img {i + 1}/{len(prepared)} " if len(prepared) > 1 else ""
            result = run.run(prep, target, on_progress=lambda u, pre=prefix: update(u, pre), quality=quality)
            if result.frames > 1:
                out.print(f"wrote {plural(result.frames, 'frame')} to {run.sequence.frame_dir(target)}/",
                          markup=False)
            if result.interrupted:
                err.print(f"interrupted: wrote the dream so far to {target}", markup=False)
                raise typer.Exit(130)
            out.print(f"wrote {target}", markup=False)


def layers_cmd(
    model: Annotated[str, typer.Argument(help="a zoo model name")],
    size: Annotated[str | None, typer.Option(
        "--size", help="W or WxH: shapes for an image of this size (the coordinates of BLOB:CH@Y,X)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """List a model's dreamable blobs with their shapes and channel counts."""
    from zoo.dream import geometry
    from zoo.dream.brain import load_brain

    brain = load_brain(model)
    shapes, at = brain.dreamable, "the deploy size"
    if size:
        h, w = geometry.size_option(*(brain.input_size or (224, 224)), size)
        shapes, at = brain.shapes_at(h, w), f"a {w}x{h} image"
    rows = [{"blob": blob, "default": blob == brain.default_blob, "channels": brain.channels.get(blob, shape[0]),
             "shape": list(shape), "paints": brain.descriptions.get(blob, "")} for blob, shape in shapes.items()]
    classes = [b for b in brain.labels if b not in brain.dreamable]
    if as_json:
        print_json({"model": brain.name, "at": at, "blobs": rows,
                    "classes": {c: len(brain.labels[c]) for c in classes}})
        return
    print_table(("blob", "channels", "shape", "tends to paint"),
                [(f"{r['blob']} (default)" if r["default"] else r["blob"], r["channels"],
                  "×".join(map(str, r["shape"])), r["paints"]) for r in rows],
                title=f"dreamable blobs of {brain.name} (shape at {at})", right=("channels", "shape"))
    if classes:
        names = brain.labels[classes[0]]
        example = names[1].split(",")[0].strip() if len(names) > 1 else "LABEL"
        out.print(f"class outputs: {', '.join(f'{c}:LABEL' for c in classes)} ({plural(len(names), 'class')}); "
                  f"e.g. --layer {classes[-1]}:{example!r} or {classes[-1]}:INDEX; list them: zoo labels "
                  f"{brain.name}", markup=False)


def labels_cmd(
    model: Annotated[str, typer.Argument(help="a zoo model name")],
    grep: Annotated[str | None, typer.Option("--grep", help="only labels containing this word (any case)")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on stdout")] = False,
) -> None:
    """List a model's class labels: index and names (what --layer BLOB:LABEL accepts)."""
    from zoo.labels import grep_labels, load_labels
    from zoo.registry import get_card

    card = get_card(model)
    try:
        names = load_labels(card.labels, None)
    except UserError:
        from zoo import api

        c, paths = api.resolve(model)
        names = api.labels_for(c, paths)
    rows = grep_labels(names, grep)
    if not rows:
        raise UserError(f"{model}: no label contains {grep!r}")
    if as_json:
        print_json([{"index": i, "label": label} for i, label in rows])
        return
    for i, label in rows:
        out.print(f"{i:>5}  {label}", markup=False)


def atlas_cmd(
    model: Annotated[str, typer.Option("--model", "-m", help="a zoo model name")],
    blobs: Annotated[list[str] | None, typer.Option("--blobs", "-b", help="repeatable; default: every dreamable blob")]
    = None,
    start: Annotated[str, typer.Option("--start", help="noise | gradient | color[:#RRGGBB] | an image file")]
    = "noise",
    output_: Annotated[Path | None, typer.Option("-o", "--output", help="folder (default: atlas-MODEL)")] = None,
    size: Annotated[int, typer.Option("--size", min=16, max=20000, help="side of each picture")] = 256,
    octaves: Annotated[int, typer.Option("--octaves", min=1, max=32)] = 3,
    iterations: Annotated[int, typer.Option("--iterations", min=1)] = 10,
    step: Annotated[float, typer.Option("--step", min=0.0, max=1000.0)] = 1.5,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    columns: Annotated[int | None, typer.Option("--columns", min=1)] = None,
    device: Annotated[Device | None, typer.Option("--device")] = None,
) -> None:
    """Render the same start through every dreamable blob: a labelled contact sheet and a web page."""
    from zoo.dream import pipeline, run

    dev = pipeline.check_device(device.value if device else pipeline.default_device())
    folder = output_ or Path(f"atlas-{model}")
    params = DreamParams(octaves=octaves, iterations=iterations, step=step)
    total = len(blobs) * octaves * iterations if blobs else None
    with progress_bar(total, f"atlas {model}") as update:  # type: ignore[arg-type]
        result = run.dream_atlas(model, folder, blobs=blobs or (), start=start, size=size, params=params, seed=seed,
                                 columns=columns, device=dev, on_progress=update)
    out.print(f"wrote {plural(len(result.entries), 'picture')}, {folder / 'atlas.png'} and "
              f"{folder / 'index.html'}", markup=False)
    if not result.complete:
        raise typer.Exit(130)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("dream")(dream_cmd)
    app.command("layers")(layers_cmd)
    app.command("labels")(labels_cmd)
    app.command("atlas")(atlas_cmd)
