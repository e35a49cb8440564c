"""The CLI side of stroke dreams (`-o dream.svg --strokes N`) and journeys (`--layer-path A,B,C`).

dream/cli.py hands over here; the work is in dream/paint.py and dream/journey.py, which report
through callbacks, so this only draws the bar and says what was written.
"""

from __future__ import annotations

from pathlib import Path

import typer
from zoo.dream.recipe import Recipe

from zoo.errors import UserError


def strokes_cmd(rec: Recipe, opts, target: Path | None, out, err, progress_bar, reproduce: bool = False) -> None:
    """`zoo dream IN -o dream.svg --strokes N [--underlay]`: paint the dream in strokes, write the SVG.
    `progress_bar(total, label)` is dream/cli.py's bar (handed down: this module is below the CLI)."""
    from zoo.dream import output, paint

    target = target or Path(f"{Path(rec.input).stem if rec.input else 'dream'}-strokes.svg")
    output.check_writable(target, {".svg": "SVG"})
    opts.check()
    prep = paint.prepare(rec, reproduce=reproduce)
    err.print(f"painting {opts.count} strokes on {rec.model or 'the default brain'} "
              f"{', '.join(rec.layers) or '(default blob)'}: {rec.params.iterations} steps"
              f"{', over the photo' if opts.underlay else ''}, {rec.device}, seed {rec.seed}", markup=False)
    with progress_bar(rec.params.iterations, "starting") as update:
        done = paint.run_strokes(rec, opts, target, on_progress=update, prep=prep)
    if done.interrupted:
        err.print(f"interrupted: wrote the strokes so far to {target}", markup=False)
        raise typer.Exit(130)
    out.print(f"wrote {target} ({opts.count} strokes, {len(done.text.encode()) // 1024} KiB)", markup=False)


def journey_cmd(rec: Recipe, path_text: str, target: Path | None, fps: float | None, codec: str | None, crf: int,
                out, err, reproduce: bool = False, hold: float | None = None) -> None:
    """`zoo dream IN -o journey.mp4 --frames N --zoom Z --layer-path A,B,C|all`: the journey, resumable."""
    from zoo.dream import journey

    from zoo.cli_output import make_progress

    if target is None:
        raise UserError("--layer-path: give the journey's output with -o (.mp4, .webm, .gif, .webp or a folder)")
    brain, _ = journey.check(rec, path_text, target)
    with make_progress(err) as bar:
        task = bar.add_task("journey", total=rec.frames)
        state = {"where": ""}

        def on_frame(k: int, n: int, blobs) -> None:
            state["where"] = f"frame {k + 1}/{n} {'+'.join(b.rsplit('/', 1)[0] for b in blobs)}"
            bar.update(task, completed=k, description=state["where"])

        def on_progress(u) -> None:
            bar.update(task, description=f"{state['where']} oct {u.octave}/{u.octaves} step {u.step}/{u.steps}")

        done = journey.run_journey(rec, path_text, target, fps=fps or journey.FPS, codec=codec, crf=crf,
                                   hold=hold,
                                   say=lambda s: err.print(s, markup=False), on_frame=on_frame,
                                   on_progress=on_progress, brain=brain, reproduce=reproduce)
        if not done.interrupted:
            bar.update(task, completed=rec.frames)
    if done.interrupted:
        err.print(f"interrupted: finished frames are in {done.folder}/; run the same command again to resume",
                  markup=False)
        raise typer.Exit(130)
    again = f" ({done.skipped} were already there)" if done.skipped else ""
    out.print(f"wrote {target} ({rec.frames} frames through {', '.join(done.job.path)}{again})", markup=False)


def reproduce_strokes(recipe: Path, target: Path | None, device: str | None, out, err, progress_bar) -> None:
    """`zoo dream --recipe dream.svg [-o again.svg]`: paint the stroke dream again from its metadata."""
    from zoo.dream import paint, pipeline
    from zoo.dream.recipe import locate

    rec, opts = paint.read_job(recipe)
    rec = rec.with_(device=pipeline.check_device(device or rec.device))
    where = locate(rec.input, recipe, "input") if rec.input else None
    if where is not None:
        rec = rec.with_(input=str(Path(where).resolve()))
    strokes_cmd(rec, opts, target or recipe.with_name(f"{recipe.stem}-again.svg"), out, err, progress_bar,
                reproduce=True)


def is_journey(recipe: Path) -> bool:
    from zoo.dream import journey

    return journey.is_record(recipe)


def reproduce_journey(recipe: Path, given: list[Path], target: Path | None, device: str | None, out, err) -> None:
    """`zoo dream --recipe journey.mp4 [PHOTO] [-o again.mp4]`: the journey again from its record (the
    same frames on the CPU), from its own start photo (found by its checksum) or from PHOTO."""
    from zoo.dream import journey, pipeline
    from zoo.dream.recipe import file_sha256, locate

    if len(given) > 1:
        raise UserError("--recipe reproduces one journey; give at most one INPUT")
    job = journey.read_job(recipe)
    rec = job.recipe.with_(device=pipeline.check_device(device or job.recipe.device))
    if given:
        rec = rec.with_(input=str(given[0].resolve()), input_sha256=file_sha256(given[0]))
    elif rec.input:
        where = locate(rec.input, recipe, "input", rec.input_sha256)
        rec = rec.with_(input=str(Path(where).resolve()))
    if target is None:
        target = recipe.with_name(f"{recipe.stem}-again{recipe.suffix}") if recipe.suffix else \
            recipe.with_name(f"{recipe.name}-again")
    journey_cmd(rec, ",".join(job.path), target, job.fps, job.codec, job.crf, out, err, reproduce=True, hold=job.hold)
