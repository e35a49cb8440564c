"""The CLI side of clip dreams and of `--nproc`: re-launch under torchrun, progress, rank-0-only output.

dream/cli.py hands over here when the input or output is a clip, and for `--nproc N`.
"""

from __future__ import annotations

import contextlib
import enum
import tempfile
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from zoo.dream import distributed
from zoo.dream.recipe import Recipe

from zoo.cli_output import make_progress
from zoo.errors import UserError


def argv_from_context(ctx: typer.Context, drop: set[str]) -> list[str]:
    """The command line this command was given (options set on it, not defaults), less `drop`."""
    args: list[str] = []
    tail: list[str] = []
    for p in ctx.command.params:
        if p.name in drop or p.name is None:
            continue
        source = ctx.get_parameter_source(p.name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params.get(p.name)
        if p.param_type_name == "argument":
            tail += [str(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v is not None]
            continue
        if getattr(p, "is_flag", False):
            if value:
                args.append(p.opts[0])
            elif p.secondary_opts:
                args.append(p.secondary_opts[0])
            continue
        for v in (value if getattr(p, "multiple", False) else [value]):
            args += [p.opts[0], str(v.value if isinstance(v, enum.Enum) else v)]  # choices pass by value
    return args + tail


def relaunch(ctx: typer.Context, nproc: int) -> None:
    """Run this same `zoo dream` command in `nproc` processes under torchrun; exits with its code."""
    code = distributed.launch(nproc, argv_from_context(ctx, {"nproc"}))
    raise typer.Exit(code)


@contextlib.contextmanager
def ranked_still(device: str, target: Path, consoles: tuple[Console, ...]) -> Iterator[Path]:
    """Under torchrun, join the ranks for a still (tiles shared); only rank 0 speaks and keeps its file."""
    if not distributed.launched():
        yield target
        return
    ranks = distributed.setup(device, share_tiles=True)
    try:
        if ranks.master:
            yield target
        else:
            for c in consoles:
                c.quiet = True
            with tempfile.TemporaryDirectory(prefix="zoo-rank-") as tmp:
                yield Path(tmp) / target.name
        distributed.barrier()
    finally:
        distributed.teardown()


def default_output(input_: Path) -> Path:
    if input_.is_dir():
        return input_.with_name(f"{input_.name}-dream")
    return input_.with_name(f"{input_.stem}-dream{input_.suffix.lower()}")


def check_target(target: Path, source: Path) -> None:
    from zoo.dream import video

    if target.resolve() == source.resolve():
        raise UserError(f"{target}: is the input; choose another output")
    video.check_output(target, "clip")


def reproduce_cmd(recipe: Path, given: list[Path], target: Path | None, device: str | None, out: Console,
                  err: Console) -> None:
    """`zoo dream --recipe OUT.mp4|run.json|frames/ [CLIP] [-o AGAIN]`: dream the clip again from its record
    (bit-identical on the CPU with the same source, brain and process count)."""
    from zoo.dream import pipeline, video
    from zoo.dream.recipe import file_sha256, locate

    if len(given) > 1:
        raise UserError("--recipe reproduces one clip; give at most one INPUT")
    rec, opts, _ = video.job_from_json(video.read_video_recipe(recipe), str(recipe))
    rec = rec.with_(device=pipeline.check_device(device or rec.device))
    if given:
        source = given[0]
        if not (rec.input_sha256 and source.is_file() and file_sha256(source) == rec.input_sha256):
            rec = rec.with_(input=str(source.resolve()), input_sha256=file_sha256(source) if source.is_file()
                            else None)  # another clip, dreamt the same way
    else:
        source = locate(rec.input, recipe, "input", rec.input_sha256)
        assert source is not None
        if rec.input_sha256 and file_sha256(source) != rec.input_sha256:
            raise UserError(f"{source}: not the clip this recipe was made from (sha256 differs)")
    if target is None and recipe.suffix.lower() in (*video.VIDEO_SUFFIXES, *video.ANIMATION_SUFFIXES):
        target = recipe.with_name(f"{recipe.stem}-again{recipe.suffix}")
    elif target is None:  # a frames folder, its run.json or a frame: frames again, in a folder beside it
        folder = (recipe if recipe.is_dir() else recipe.parent).resolve()
        target = folder.with_name(f"{folder.name.removesuffix('-frames')}-again")
    clip_cmd(rec, source, target, opts, out, err, reproduce=True)


def clip_cmd(rec: Recipe, input_: Path, target: Path | None, opts, out: Console, err: Console, *,
             reproduce: bool = False) -> None:
    """`zoo dream CLIP -o OUT`: dream every frame with a progress bar; rank 0 reports."""
    from zoo.dream import video, video_run

    if opts.flow not in ("dis", "farneback", "none"):
        raise UserError(f"--flow {opts.flow!r}: choose dis or farneback (or --no-flow)")
    target = target or default_output(input_)
    check_target(target, input_)
    master = not distributed.launched() or int(__import__("os").environ.get("RANK", "0")) == 0
    if not master:
        out.quiet = err.quiet = True
    state: dict[str, object] = {"frame": ""}
    video_run.plan_clip(rec, input_, opts)  # a clip that cannot be dreamt is one line, before any bar
    try:
        with make_progress(err) as bar:
            task = bar.add_task("frames", total=None)

            def on_start(job, octaves: int, todo: int) -> None:
                mode = (f", {job.world} ranks, {'chunks' if opts.chunks else 'tiles shared'}"
                        if job.world > 1 else "")
                flow = "no flow" if opts.flow == "none" else f"{opts.flow} flow, blend {opts.blend:g}"
                err.print(f"dreaming {len(job.frames)} frames of {job.size[1]}x{job.size[0]} at {float(job.fps):g} fps "
                          f"on {job.recipe.model} {', '.join(job.recipe.layers)}: {octaves} octaves × "
                          f"{job.recipe.params.iterations} steps, later frames "
                          f"{opts.later_iterations(job.recipe.params.iterations)}; {flow}{mode}; "
                          f"frames in {video.frames_folder(target)}/", markup=False)
                bar.update(task, total=todo)

            def on_frame(k: int, n: int, note: str) -> None:
                if state["frame"]:
                    bar.update(task, advance=1)
                state["frame"] = f"frame {k + 1}/{n}{f' ({note})' if note else ''}"
                bar.update(task, description=str(state["frame"]))

            def on_progress(p) -> None:
                bar.update(task, description=f"{state['frame']} · octave {p.octave}/{p.octaves} · "
                                             f"step {p.step}/{p.steps}")

            run = video_run.run_clip(rec, input_, target, opts, say=lambda s: err.print(s, markup=False),
                                     on_start=on_start, on_frame=on_frame, on_progress=on_progress,
                                     reproduce=reproduce)
            if state["frame"] and not run.result.interrupted:
                bar.update(task, advance=1)
    finally:
        distributed.teardown()
    if run.result.interrupted:
        err.print(f"interrupted: finished frames are in {run.folder}/; run the same command again to resume",
                  markup=False)
        raise typer.Exit(130)
    resumed = f" ({run.result.skipped} were already there)" if run.result.skipped else ""
    out.print(f"wrote {target} ({len(run.job.frames)} frames{resumed})", markup=False)
