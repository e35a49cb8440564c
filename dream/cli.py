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
from zoo.dream.presets import PARAM_KINDS, PRESETS, TRANSFORM_SETS, DreamParams, Legible, describe
from zoo.dream.recipe import Recipe, file_sha256, locate, read_recipe

from zoo import formats
from zoo.cli_output import err_console, make_progress, print_json, print_table
from zoo.errors import UserError
from zoo.seeds import SEED_MAX

out = Console(highlight=False)
err = err_console()

Device = enum.Enum("Device", {"cpu": "cpu", "cuda": "cuda"}, type=str)
PresetName = enum.Enum("PresetName", {name: name for name in PRESETS}, type=str)
IMAGE_TYPES = (*formats.STILL_INPUTS, ".svg", ".svgz")  # and SVG drawings (dream/svg.py renders them)
OUT_TYPES = {"png": ".png", "jpg": ".jpg", "webp": ".webp", "tiff": ".tif"}
Format = enum.Enum("Format", {k: k for k in OUT_TYPES}, type=str)
Look = enum.Enum("Look", {k: k for k in ("auto", "classic", "legible")}, type=str)
ParamKind = enum.Enum("ParamKind", {k: k for k in PARAM_KINDS}, type=str)
TransformSet = enum.Enum("TransformSet", {k: k for k in TRANSFORM_SETS}, type=str)


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
    size: Annotated[str | None, typer.Option("--size", help="W or WxH: scale the input first; or a print size, "
                                             "W[xH]UNIT@DPI, e.g. 18x18in@300 (UNIT in, cm, mm)")] = None,
    dpi: Annotated[int | None, typer.Option("--dpi", min=1, max=100000, help="print resolution written into the "
                                            "file (PNG, TIFF, JPEG), so it opens at its print size")] = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="zoom/rotate feedback frames")] = 1,
    zoom: Annotated[float, typer.Option("--zoom", min=0.1, max=10.0, help="zoom per frame")] = 1.05,
    rotate: Annotated[float, typer.Option("--rotate", min=-360.0, max=360.0, help="degrees per frame")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX)] = 0,
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
    audio: Annotated[str, typer.Option("--audio", help="clips: the soundtrack, copy or dream")] = "copy",
    n_fft: Annotated[int, typer.Option("--n-fft", min=32, max=16384, help="sound: STFT window in samples")] = 1024,
    hop: Annotated[int, typer.Option("--hop", min=1, max=8192, help="sound: STFT hop in samples")] = 512,
    freq_scale: Annotated[str, typer.Option("--freq-scale", help="sound: picture rows, linear or mel")] = "linear",
    phase: Annotated[str, typer.Option("--phase", help="sound: original or griffinlim (rebuilt)")] = "original",
    gl_iterations: Annotated[int, typer.Option("--gl-iterations", min=1, max=1000,
                                               help="sound: fast Griffin-Lim iterations")] = 32,
    mix: Annotated[float, typer.Option("--mix", min=0.0, max=1.0, help="sound: dry 0 .. wet 1")] = 1.0,
    stereo: Annotated[str, typer.Option("--stereo", help="sound: channels or midside")] = "channels",
    chunk: Annotated[float, typer.Option("--chunk", min=0.1, max=3600.0, help="sound: seconds per chunk")] = 10.0,
    loudness: Annotated[bool, typer.Option("--loudness/--no-loudness",
                                           help="sound: keep the input's RMS and peak")] = True,
    rounds: Annotated[int, typer.Option("--rounds", min=1, max=100, help="sound: dream, resynthesise, dream "
                                        "again (features that survive resynthesis)")] = 1,
    nproc: Annotated[int | None, typer.Option("--nproc", min=1, help="processes through torchrun")] = None,
    compile_: Annotated[bool, typer.Option(
        "--compile", help="run the net through torch.compile (opt-in; the first run per size compiles for a "
        "minute or more, later runs load it from the cache, compile/ in $ZOO_HOME)")] = False,
    look: Annotated[Look, typer.Option(
        "--look", metavar="LOOK", help="auto, classic or legible; auto: class targets (prob:goldfish) legible, "
        "the rest classic DeepDream (see docs/legible.md)")] = Look.auto,
    param: Annotated[ParamKind | None, typer.Option("--param", metavar="KIND", help="legible: fft (default), "
                                                    "laplacian or pixels")] = None,
    transforms: Annotated[TransformSet | None, typer.Option("--transforms", metavar="SET", help="legible: crops "
                                                            "(classes), standard, light or none")] = None,
    rgb: Annotated[bool, typer.Option("--rgb", help="legible: optimise plain RGB, not the training data's "
                                      "decorrelated colours")] = False,
    diversity: Annotated[int | None, typer.Option("--diversity", min=1, max=64, help="legible: N different "
                                                  "pictures side by side")] = None,
    strokes: Annotated[int | None, typer.Option(
        "--strokes", min=1, max=20000, help="paint the dream in N Bézier strokes and write an SVG (-o X.svg; "
        "default 400 for an .svg output; --iterations steps, default 200)")] = None,
    underlay: Annotated[bool, typer.Option("--underlay", help="strokes: paint over the photo, not its mean colour")]
    = False,
    layer_path: Annotated[str | None, typer.Option(
        "--layer-path", help="a journey: cross-fade the objective along BLOB,BLOB,... (or all: shallow to deep) "
        "over --frames of zoom; -o a video, .gif/.webp or folder; --fps its rate (default 24)")] = None,
) -> None:
    """Dream on images or clips with any brain of the zoo, at any size. With the legible look,
    --iterations is the total number of steps (default 128)."""
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
    sound = _sound_options(n_fft, hop, freq_scale, phase, gl_iterations, mix, stereo, chunk, loudness, rounds)
    if recipe is not None and sound.is_recipe(recipe):  # a sound's record: the same sound dream again
        return sound.cli.reproduce_cmd(recipe, given, output_, device.value if device else None, out, err)
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

        settings = _legible(iterations, param, transforms, False if rgb else None, diversity)
        if weight and len(weight) == 1 and layer and len(layer) > 1:
            raise typer.BadParameter(f"one --weight for {len(layer)} layers: give one per --layer, in order",
                                     param_hint="--weight")

        def new_recipe(path: Path | None, clip: bool = False, params: dict = params) -> Recipe:
            return run.new_recipe(model=model, layers=layer or (), weights=weight or (), preset=preset.value if preset
                                  else None, params=params, init=init, input_path=path, guide_path=guide, size=size,
                                  seed=seed, frames=frames, zoom=zoom, rotate=rotate, device=dev,
                                  compile=compile_, dpi=dpi, look="classic" if clip else look.value,
                                  legible=settings)

        if len(given) == 1 and sound.is_input(given[0]):
            return sound.cli.sound_cmd(sound.recipe(new_recipe, given[0], params, preset), given[0], output_,
                                       sound.options, out, err)
        if layer_path is not None or strokes is not None or underlay or (output_ and output_.suffix.lower() == ".svg"):
            return _vector(new_recipe(given[0] if len(given) == 1 else None), given, output_, strokes, underlay,
                           layer_path, (fps, codec, crf), iterations)
        if guide is not None:
            starts.image_size(guide)  # a missing or undecodable guide fails before the brain loads
        if audio not in ("copy", "dream"):
            raise UserError(f"--audio {audio!r}: choose copy or dream")
        if len(given) == 1 and _is_clip(video, given[0], output_):
            opts = video.VideoOptions(blend, "none" if no_flow else flow, frame_iterations, start_frame, end_frame,
                                      fps, crf, codec, chunks, warmup, audio)
            return video_cli.clip_cmd(new_recipe(given[0], clip=True), given[0], output_, opts, out, err)
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


class _Sound:
    """What `zoo dream` needs of sound, imported only when a sound is given."""

    def __init__(self, options):
        from zoo.dream import audio_io, audio_run, sound_cli

        self.options, self.io, self.run, self.cli = options, audio_io, audio_run, sound_cli

    def is_recipe(self, path: Path) -> bool:
        return self.run.is_sound_recipe(path)

    def is_input(self, path: Path) -> bool:
        return self.io.is_audio_path(path)

    def recipe(self, new_recipe, path: Path, params: dict, preset) -> Recipe:
        """The options' recipe; parameters not given take the sound defaults (unless a preset gives them)."""
        if preset is None:
            base = self.run.SOUND_PARAMS.to_dict()
            params = {k: (base[k] if v is None and k in base else v) for k, v in params.items()}
        return new_recipe(path, clip=True, params=params)  # the classic loop, as for a clip


def _sound_options(n_fft: int, hop: int, freq_scale: str, phase: str, gl_iterations: int, mix: float,
                   stereo: str, chunk: float, loudness: bool, rounds: int) -> _Sound:
    from zoo.dream.audio_run import SoundOptions

    return _Sound(SoundOptions(n_fft=n_fft, hop=hop, freq_scale=freq_scale, phase=phase,
                               gl_iterations=gl_iterations, mix=mix, stereo=stereo, chunk=chunk,
                               overlap=min(0.5, chunk / 4), loudness=loudness, rounds=rounds))


def _legible(steps: int | None, param, transforms, decorrelate: bool | None, diversity: int | None) -> Legible | None:
    """The legible loop's settings the options change (None: all defaults)."""
    given = dict(steps=steps, param=param.value if param else None, transforms=transforms.value if transforms
                 else None, decorrelate=decorrelate, diversity=diversity)
    return Legible().with_(**given) if any(v is not None for v in given.values()) else None


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
        how = (f"{plural(prep.octaves, 'octave')} × {plural(rec.params.iterations, 'step')}{frames}, {tiles}"
               if rec.legible is None else f"legible, {plural(rec.legible.steps, 'step')}")
        err.print(f"dreaming {which}{w}x{h} on {prep.brain.name} {', '.join(rec.layers)}: {how}, "
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
    size: Annotated[int | None, typer.Option("--size", min=16, max=20000, help="side of each picture "
                                             "(default 256; with --channels 128)")] = None,
    octaves: Annotated[int, typer.Option("--octaves", min=1, max=32)] = 3,
    iterations: Annotated[int | None, typer.Option("--iterations", min=1, help="steps per octave (default 10); "
                                                   "with --channels, legible steps (default 64)")] = None,
    step: Annotated[float, typer.Option("--step", min=0.0, max=1000.0)] = 1.5,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX)] = 0,
    columns: Annotated[int | None, typer.Option("--columns", min=1)] = None,
    device: Annotated[Device | None, typer.Option("--device")] = None,
    channels: Annotated[list[str] | None, typer.Option(
        "--channels", help="BLOB (repeatable) or all: every channel's picture, grown from noise with the legible "
        "look, cached in $ZOO_HOME/atlas; a page per blob")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, max=512, help="with --channels: channels per forward "
                                       "pass")] = 16,
) -> None:
    """Render the same start through every dreamable blob: a labelled contact sheet and a web page.
    With --channels: every channel of a blob, as a browsable page (a local Microscope)."""
    from zoo.dream import pipeline, run

    dev = pipeline.check_device(device.value if device else pipeline.default_device())
    folder = output_ or Path(f"atlas-{model}")
    if channels:
        return _channel_atlas(model, channels, folder, size or 128, iterations, seed, batch, dev)
    size, iterations = size or 256, iterations or 10
    params = DreamParams(octaves=octaves, iterations=iterations, step=step)
    total = len(blobs) * octaves * iterations if blobs else None
    with progress_bar(total, f"atlas {model}") as update:  # type: ignore[arg-type]
        result = run.dream_atlas(model, folder, blobs=blobs or (), start=start, size=size, params=params, seed=seed,
                                 columns=columns, device=dev, on_progress=update)
    out.print(f"wrote {plural(len(result.entries), 'picture')}, {folder / 'atlas.png'} and "
              f"{folder / 'index.html'}", markup=False)
    if not result.complete:
        raise typer.Exit(130)


def _channel_atlas(model: str, blobs: list[str], folder: Path, size: int, steps: int | None, seed: int, batch: int,
                   device: str) -> None:
    """zoo atlas --channels: one bar over every channel; a kill keeps each finished batch."""
    from zoo.dream import channels
    from zoo.dream.brain import load_brain

    from zoo.registry import zoo_home

    brain = load_brain(model)
    names = channels.blobs_for(brain, blobs)
    settings = channels.SETTINGS.with_(steps=steps)
    total = sum(brain.channels[b] for b in names)
    err.print(f"channel atlas of {brain.name}: {plural(total, 'channel')} in {', '.join(names)}, {size} px, "
              f"{plural(settings.steps, 'step')}, {batch} a pass (cached in $ZOO_HOME/atlas)", markup=False)
    with make_progress(err) as bar:
        task = bar.add_task(names[0], total=total)

        def done(d) -> None:
            bar.update(task, advance=1, description=f"{d.blob} {d.index}/{d.total}")

        try:
            pages = channels.write_pages(brain, names, folder, zoo_home() / "atlas", size=size, settings=settings,
                                         seed=seed, batch=batch, device=device, on_done=done)
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
