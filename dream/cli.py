"""`zoo dream`, `zoo layers`, `zoo labels` and `zoo atlas`: thin commands over dream's library.

Options become a Recipe and `zoo.dream.run` runs it (so `--recipe OUT.png` runs the same code);
the progress bar is a callback handed to it from here. Torch loads only inside the commands
(function-local imports), so `zoo --help` stays fast.
"""

from __future__ import annotations

import contextlib
import enum
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Any

import typer
from rich.console import Console
from zoo.dream.options import ATLAS, DREAM, OUT_TYPES, PARAMS
from zoo.dream.presets import DreamParams, Legible, describe
from zoo.dream.recipe import Recipe, file_sha256, locate, read_recipe

from zoo import formats
from zoo.cli_output import err_console, make_progress, print_json, print_table
from zoo.errors import UserError
from zoo.options import typer_parameter

out = Console(highlight=False, soft_wrap=True)  # piped lines stay whole for grep
err = err_console()

Device = enum.Enum("Device", {"cpu": "cpu", "cuda": "cuda"}, type=str)
IMAGE_TYPES = (*formats.STILL_INPUTS, ".svg", ".svgz")  # and SVG drawings (dream/svg.py renders them)


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
            bar.update(task, description=where, advance=1 if u.tile == u.tiles else 0, total=u.total)

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


def output_paths(inputs: list[Path], output: Path | None, fmt: str | None, frames: int) -> list[Path]:
    """Where each input's dream goes: `-o FILE` for one input, `-o FOLDER` (made if needed) for many."""
    ext = OUT_TYPES[fmt] if fmt else (".webp" if frames > 1 else ".png")
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


def dream_cmd(ctx: typer.Context, inputs: list[Path] | None = None, **raw: Any) -> None:
    """Dream on images or clips with any brain of the zoo, at any size. With the legible look,
    --iterations is the total number of steps (default 128)."""
    from zoo.dream import video_cli

    a = SimpleNamespace(**DREAM.from_cli(raw))  # every value checked here: one line, exit 2
    if (a.nproc or 1) > 1 and not video_cli.distributed.launched():
        video_cli.relaunch(ctx, a.nproc)
    given = list(inputs or [])
    clip = _clip(a, given)
    if clip is not None:
        return clip()
    jobs = _reproduction(a, given) if a.recipe is not None else _new_dreams(a, given)
    _run_jobs(jobs, reproduce=a.recipe is not None, quality=a.quality)


INPUTS = inspect.Parameter("inputs", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=Annotated[
    list[Path] | None, typer.Argument(metavar="INPUT...", show_default=False, help="start image(s) or folder(s) "
                                      "(optional with --init noise|gradient|color, or with --recipe)")])
CLI_DEFAULTS = {**{o.name: None for o in PARAMS}, "device": None}  # None: the preset's value, or cuda if present
dream_cmd.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
    inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context), INPUTS,
    *(typer_parameter(o, CLI_DEFAULTS.get(o.name, o.default)) for o in DREAM)])


def _device(a: SimpleNamespace, recorded: str | None = None) -> str:
    from zoo.dream import pipeline

    return pipeline.check_device(a.device or recorded or pipeline.default_device())


def _clip(a: SimpleNamespace, given: list[Path]) -> Callable[[], None] | None:
    """The command these options name when it is no still (a stroke, clip or sound record with --recipe; a
    sound, a stroke dream or journey, or a clip as INPUT), or None."""
    from zoo.dream import vector_cli, video, video_cli

    sound = _Sound(a)
    if a.recipe is not None:
        if a.recipe.suffix.lower() == ".svg":  # a stroke dream: painted again
            return lambda: vector_cli.reproduce_strokes(a.recipe, a.output, a.device, out, err, progress_bar)
        if video.is_clip_recipe(a.recipe) and vector_cli.is_journey(a.recipe):  # a journey's: its frames again
            return lambda: vector_cli.reproduce_journey(a.recipe, given, a.output, a.device, out, err)
        if video.is_clip_recipe(a.recipe):  # a clip's record: the whole clip again
            return lambda: video_cli.reproduce_cmd(a.recipe, given, a.output, a.device, out, err)
        if sound.is_recipe(a.recipe):  # a sound's record: the same sound dream again
            return lambda: sound.cli.reproduce_cmd(a.recipe, given, a.output, a.device, out, err)
        return None
    if len(given) == 1 and sound.is_input(given[0]):
        return lambda: sound.cli.sound_cmd(sound.recipe(a, given[0]), given[0], a.output, sound.options, out, err)
    if (a.layer_path is not None or a.strokes is not None or a.underlay or a.hold is not None
            or (a.output is not None and a.output.suffix.lower() == ".svg")):
        return lambda: _vector(a, given)
    if len(given) == 1 and _is_clip(video, given[0], a.output):
        opts = video.VideoOptions(a.blend, "none" if a.no_flow else a.flow, a.frame_iterations, a.start_frame,
                                  a.end_frame, a.fps, a.crf, a.codec, a.chunks, a.warmup, a.audio)
        return lambda: video_cli.clip_cmd(_new_recipe(a, given[0], clip=True), given[0], a.output, opts, out, err)
    return None


def _new_recipe(a: SimpleNamespace, path: Path | None, clip: bool = False, params: dict | None = None) -> Recipe:
    """The Recipe the options describe, for one input (clips and sounds keep the classic look)."""
    from zoo.dream import run

    _check_weights(a)
    return run.new_recipe(model=a.model, layers=a.layers or (), weights=a.weights or (), preset=a.preset,
                          params=params or {o.name: getattr(a, o.name) for o in PARAMS}, init=a.init,
                          input_path=path, guide_path=a.guide, size=a.size, seed=a.seed, frames=a.frames, zoom=a.zoom,
                          rotate=a.rotate, device=_device(a), compile=a.compile, dpi=a.dpi,
                          look="classic" if clip else a.look, legible=_legible(a))


class _Sound:
    """What `zoo dream` needs of sound (the --n-fft ... --rounds options), imported only when asked."""

    def __init__(self, a: SimpleNamespace):
        from zoo.dream import audio_io, audio_run, sound_cli

        self.io, self.run, self.cli = audio_io, audio_run, sound_cli
        self.options = audio_run.sound_options(vars(a))

    def is_recipe(self, path: Path) -> bool:
        return self.run.is_sound_recipe(path)

    def is_input(self, path: Path) -> bool:
        return self.io.is_audio_path(path)

    def recipe(self, a: SimpleNamespace, path: Path) -> Recipe:
        """The options' recipe; parameters not given take the sound defaults (unless a preset gives them)."""
        from zoo.dream import starts

        starts.parse_init(a.init)
        params = self.run.sound_params({o.name: getattr(a, o.name) for o in PARAMS}, a.preset)
        return _new_recipe(a, path, clip=True, params=params)  # the classic loop, as for a clip


def _vector(a: SimpleNamespace, given: list[Path]) -> None:
    """Stroke dreams and journeys: one start each (an image, or --init), handed to dream/vector_cli.py."""
    from zoo.dream import paint, starts, vector_cli

    starts.parse_init(a.init)
    # a journey is a zoom sequence: the classic look, its layers unbalanced (each frame weighs its own)
    rec = _new_recipe(a, given[0] if len(given) == 1 else None, clip=a.layer_path is not None)
    if len(given) > 1:
        raise UserError("strokes and journeys dream one start at a time; give at most one INPUT")
    if a.hold is not None and a.layer_path is None:
        raise UserError("--hold: rests a journey on its blobs; give the journey with --layer-path")
    if a.layer_path is not None:
        if a.strokes is not None or a.underlay:
            raise UserError("--layer-path makes a zoom film; --strokes and --underlay make an SVG: choose one")
        return vector_cli.journey_cmd(rec, a.layer_path, a.output, a.fps, a.codec, a.crf, out, err, hold=a.hold)
    if a.output is not None and a.output.suffix.lower() != ".svg":
        raise UserError(f"{a.output}: strokes are written as SVG; use -o NAME.svg")
    if rec.frames > 1:
        raise UserError("--strokes paints one picture; drop --frames")
    if a.iterations is None:
        rec = rec.with_(params=rec.params.with_(iterations=paint.STEPS))
    return vector_cli.strokes_cmd(rec, paint.StrokeOptions(count=a.strokes or 400, underlay=a.underlay), a.output,
                                  out, err, progress_bar)


def _legible(a: SimpleNamespace) -> Legible | None:
    """The legible loop's settings the options change (None: all defaults); --iterations is its total steps."""
    given = dict(steps=a.iterations, param=a.param, transforms=a.transforms, decorrelate=False if a.rgb else None,
                 diversity=a.diversity)
    return Legible().with_(**given) if any(v is not None for v in given.values()) else None


def _check_weights(a: SimpleNamespace) -> None:
    if a.weights and len(a.weights) == 1 and a.layers and len(a.layers) > 1:
        raise typer.BadParameter(f"one --weight for {len(a.layers)} layers: give one per --layer, in order",
                                 param_hint="--weight")


def _new_dreams(a: SimpleNamespace, given: list[Path]) -> list[tuple[Recipe, Path, dict]]:
    """One job per input (or one from --init alone), each with its output file."""
    from zoo.dream import starts

    starts.parse_init(a.init)
    if a.guide is not None:
        starts.image_size(a.guide)  # a missing or undecodable guide fails before the brain loads
    files = expand_inputs(given)
    return [(_new_recipe(a, path), target, {}) for path, target in
            zip(files or [None], output_paths(files, a.output, a.format, a.frames))]


def _reproduction(a: SimpleNamespace, given: list[Path]) -> list[tuple[Recipe, Path, dict]]:
    """`--recipe IMAGE [INPUT] [--guide G]`: the one dream it stores, with its files found or replaced."""
    from zoo.dream import output, starts

    files = expand_inputs(given)
    if len(files) > 1:
        raise UserError("--recipe reproduces one dream; give at most one INPUT")
    rec = read_recipe(a.recipe)
    rec = rec.with_(device=_device(a, rec.device), compile=rec.compile or a.compile)
    where: dict = {}
    if files:
        rec, where = _input_for(rec, files[0], where)
    elif rec.input:
        where["input_path"] = locate(rec.input, a.recipe, "input", rec.input_sha256)
    if a.guide is not None:
        starts.image_size(a.guide)
        rec = rec.with_(guide=_abs(a.guide), guide_sha256=_sha(a.guide))
    elif rec.guide:
        where["guide_path"] = locate(rec.guide, a.recipe, "guide", rec.guide_sha256)
    if rec.interrupted:
        err.print(f"note: {a.recipe} was interrupted; reproducing it to the same step"
                  if rec.frames == 1 and rec.steps_done is not None else
                  f"note: {a.recipe} was interrupted; this re-runs the whole dream", markup=False)
    suffix = a.recipe.suffix.lower()
    ext = ".webp" if rec.frames > 1 else (suffix if suffix in output.STILLS else ".png")
    return [(rec, a.output or Path(f"{a.recipe.stem}-again{ext}"), where)]


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
    """Check every output, then dream them all (under torchrun: one dream, the ranks share its tiles)."""
    from zoo.dream import output, sequence, video_cli

    for rec, target, _ in jobs:
        output.check_writable(target, {k: v for k, v in output.FORMATS.items() if k in sequence.ANIMATIONS}
                              if rec.frames > 1 else output.STILLS)
    if not video_cli.distributed.launched():
        return _dream_all(jobs, reproduce=reproduce, quality=quality)
    if len(jobs) != 1:
        raise UserError("--nproc dreams one image (or one clip) at a time; give one INPUT")
    rec, target, where = jobs[0]
    with video_cli.ranked_still(rec.device, target, (out, err)) as ranked:  # rank 0 writes
        _dream_all([(rec, ranked, where)], reproduce=reproduce, quality=quality)


def _prepare_all(jobs: list[tuple[Recipe, Path, dict]], reproduce: bool) -> list:
    """Prepare every dream first (all errors before any long work), one brain per model."""
    from zoo.dream import run
    from zoo.dream.brain import load_brain

    brains: dict[str, object] = {}
    prepared = []
    said: set[str] = set()
    for rec, target, where in jobs:
        if rec.model not in brains:
            brains[rec.model] = load_brain(rec.model or None)
        prep = run.prepare(rec, reproduce=reproduce, brain=brains[rec.model], **where)  # type: ignore[arg-type]
        for note in prep.notes:
            if note not in said:  # several inputs of one size: said once
                err.print(note, markup=False)
                said.add(note)
        prepared.append((prep, target))
    return prepared


def _say_plan(prepared: list) -> None:
    """One line per dream: size, brain, layers, octaves and steps, tiling, device, seed."""
    first = prepared[0][0]
    if first.recipe.preset:
        err.print(describe(first.recipe.preset, first.brain.name), markup=False)
    for i, (prep, _) in enumerate(prepared):
        rec, h, w = prep.recipe, *prep.start.shape[:2]
        tiles = f"tiles of {prep.plan.tiles.tile}" if prep.plan.tiles.splits(h, w) else "untiled"
        which = f"{i + 1}/{len(prepared)} " if len(prepared) > 1 else ""
        frames = f" × {plural(rec.frames, 'frame')}" if rec.frames > 1 else ""
        how = (f"{plural(prep.octaves, 'octave')} × {plural(rec.params.iterations, 'step')}{frames}, {tiles}"
               if rec.legible is None else f"legible, {plural(rec.legible.steps, 'step')}")
        err.print(f"dreaming {which}{w}x{h} on {prep.brain.name} {', '.join(rec.layers)}: {how}, "
                  f"{rec.device}{', compiled' if rec.compile else ''}, seed {rec.seed}", markup=False)


def _dream_all(jobs: list[tuple[Recipe, Path, dict]], *, reproduce: bool, quality: int) -> None:
    """Prepare them all, then dream them under one bar."""
    from zoo.dream import run

    prepared = _prepare_all(jobs, reproduce)
    _say_plan(prepared)
    with progress_bar(sum(p.total for p, _ in prepared), "starting") as update:
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


def atlas_cmd(**raw: Any) -> None:
    """Render the same start through every dreamable blob: a labelled contact sheet and a web page.
    With --channels: every channel of a blob, as a browsable page (a local Microscope)."""
    from zoo.dream import pipeline, run

    a = SimpleNamespace(**ATLAS.from_cli(raw))  # every value checked here: one line, exit 2
    dev = pipeline.check_device(a.device or pipeline.default_device())
    folder = a.output or Path(f"atlas-{a.model}")
    if a.channels:
        return _channel_atlas(a, folder, dev)
    size, iterations = a.size or 256, a.iterations or 10
    params = DreamParams(octaves=a.octaves, iterations=iterations, step=a.step)
    total = len(a.blobs) * a.octaves * iterations if a.blobs else None
    with progress_bar(total, f"atlas {a.model}") as update:  # type: ignore[arg-type]
        result = run.dream_atlas(a.model, folder, blobs=a.blobs or (), start=a.start, size=size, params=params,
                                 seed=a.seed, columns=a.columns, device=dev, on_progress=update)
    out.print(f"wrote {plural(len(result.entries), 'picture')}, {folder / 'atlas.png'} and "
              f"{folder / 'index.html'}", markup=False)
    if not result.complete:
        raise typer.Exit(130)


atlas_cmd.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [typer_parameter(o, None if o.name == "device" else o.default) for o in ATLAS])


def _channel_atlas(a: SimpleNamespace, folder: Path, device: str) -> None:
    """zoo atlas --channels: one bar over every channel; a kill keeps each finished batch."""
    from zoo.dream import channels
    from zoo.dream.brain import load_brain

    from zoo.registry import zoo_home

    brain = load_brain(a.model)
    names = channels.blobs_for(brain, a.channels)
    settings = channels.SETTINGS.with_(steps=a.iterations)
    size = a.size or 128
    total = sum(brain.channels[b] for b in names)
    err.print(f"channel atlas of {brain.name}: {plural(total, 'channel')} in {', '.join(names)}, {size} px, "
              f"{plural(settings.steps, 'step')}, {a.batch} a pass (cached in $ZOO_HOME/atlas)", markup=False)
    with make_progress(err) as bar:
        task = bar.add_task(names[0], total=total)

        def done(d) -> None:
            bar.update(task, advance=1, description=f"{d.blob} {d.index}/{d.total}")

        try:
            pages = channels.write_pages(brain, names, folder, zoo_home() / "atlas", size=size, settings=settings,
                                         seed=a.seed, batch=a.batch, device=device, on_done=done)
        except KeyboardInterrupt:
            err.print("interrupted: finished channels are cached; run the same command to go on", markup=False)
            raise typer.Exit(130) from None
    for p in pages:
        out.print(f"wrote {p}", markup=False)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.command("dream")(dream_cmd)
    app.command("layers")(layers_cmd)
    app.command("labels")(labels_cmd)
    app.command("atlas")(atlas_cmd)
