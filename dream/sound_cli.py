"""The CLI side of sound dreams: `zoo dream voice.wav -o dreamt.wav` and `zoo dream --recipe dreamt.wav`.

dream/cli.py hands over here when the input is a sound file; the work is zoo.dream.audio_run's.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from zoo.dream.recipe import Recipe

from zoo.errors import UserError


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def default_output(source: Path) -> Path:
    suffix = source.suffix.lower() if source.suffix.lower() in (".wav", ".flac") else ".wav"
    return source.with_name(f"{source.stem}-dream{suffix}")


def check_target(target: Path, source: Path) -> None:
    from zoo.dream import audio_io, output

    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise UserError(f"{target}: is the input; choose another output")
    if target.suffix.lower() == ".png":
        output.check_writable(target, {".png": "PNG"})
    else:
        audio_io.check_writable(target)


def sound_cmd(rec: Recipe, source: Path, target: Path | None, opts, out: Console, err: Console, *,
              reproduce: bool = False) -> None:
    """Dream a sound under one progress bar over every chunk, channel, octave and step."""
    from zoo.dream import audio_run

    opts.check()
    target = target or default_output(source)
    check_target(target, source)
    decoded = audio_run.load(source)  # a bad sound is one line, before any progress is drawn
    state: dict[str, object] = {"chunk": ""}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task("starting", total=None)

        def on_start(job, setup) -> None:
            p = job.recipe.params
            err.print(f"dreaming {job.samples / job.rate:.1f} s of {plural(job.channels, 'channel')} at {job.rate} Hz "
                      f"on {job.recipe.model} {', '.join(job.recipe.layers)}: {plural(len(setup.spans), 'chunk')} "
                      f"of {setup.prep.start.shape[1]}x{setup.prep.start.shape[0]} spectrogram pixels, "
                      f"{plural(setup.prep.octaves, 'octave')} × {plural(p.iterations, 'step')}, "
                      f"{opts.phase} phase, seed {job.recipe.seed}", markup=False)
            bar.update(task, total=setup.total)

        def on_chunk(k: int, n: int) -> None:
            state["chunk"] = f"chunk {k + 1}/{n} "

        def on_progress(u) -> None:
            bar.update(task, description=f"{state['chunk']}oct {u.octave}/{u.octaves} step {u.step}/{u.steps}",
                       advance=1 if u.tile == u.tiles else 0)

        result = audio_run.run_sound(rec, source, target, opts, say=lambda s: err.print(s, markup=False),
                                     on_start=on_start, on_chunk=on_chunk, on_progress=on_progress,
                                     reproduce=reproduce, decoded=decoded)
    if result.interrupted:
        err.print("interrupted: nothing written (a sound is written whole)", markup=False)
        raise typer.Exit(130)
    out.print(f"wrote {target}", markup=False)


def reproduce_cmd(recipe: Path, given: list[Path], target: Path | None, device: str | None, out: Console,
                  err: Console) -> None:
    """`zoo dream --recipe DREAMT.wav [SOUND] [-o AGAIN]`: the same dream again, bit for bit on the CPU."""
    from zoo.dream import audio_run, pipeline
    from zoo.dream.recipe import file_sha256, locate

    if len(given) > 1:
        raise UserError("--recipe reproduces one sound; give at most one INPUT")
    if not recipe.is_file():
        raise UserError(f"{recipe}: no such file")
    job = audio_run.SoundJob.from_json(audio_run.read_sound_recipe(recipe), str(recipe))
    rec = job.recipe.with_(device=pipeline.check_device(device or job.recipe.device))
    if given:
        source = given[0]
        if not (rec.input_sha256 and source.is_file() and file_sha256(source) == rec.input_sha256):
            rec = rec.with_(input=str(source.resolve()), input_sha256=file_sha256(source) if source.is_file()
                            else None)
    else:
        source = locate(rec.input, recipe, "input", rec.input_sha256)  # outside its folder: by checksum only
        assert source is not None
        if rec.input_sha256 and file_sha256(source) != rec.input_sha256:
            raise UserError(f"{source}: not the sound this recipe was made from (sha256 differs)")
    if rec.guide:
        rec = rec.with_(guide=str(locate(rec.guide, recipe, "guide", rec.guide_sha256)))
    target = target or recipe.with_name(f"{recipe.stem}-again{recipe.suffix}")
    sound_cmd(rec, source, target, job.options, out, err, reproduce=True)
