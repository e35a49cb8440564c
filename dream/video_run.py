"""Library entry for clip dreams: from a Recipe, a source clip and VideoOptions to a written clip.

The same preparation and run as `zoo dream` on a still (dream/run.py, once per clip, then once per
frame); progress and messages go to callbacks and a stop event, so the CLI and a web front end drive
it alike. Under torchrun it shares each step's tiles over the ranks, or (with `chunks`) gives each
rank a part of the clip.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from zoo.dream import distributed, geometry, run, starts, video
from zoo.dream.recipe import Recipe

from zoo.errors import UserError

# a still's buffers (starts.BYTES_PER_PIXEL) plus the previous frame, its flow field and the blend
CLIP_BYTES_PER_PIXEL = starts.BYTES_PER_PIXEL + 32


@dataclass
class ClipRun:
    job: video.ClipJob
    folder: Path
    result: video.ClipResult
    octaves: int


def plan_clip(rec: Recipe, source: Path, opts: video.VideoOptions) -> tuple[video.Clip, list[int], object, tuple]:
    """Probe the source and pick its frames, rate and size (fails before any brain loads)."""
    clip = video.open_clip(source, opts.fps)
    rate = None if clip.kind == "folder" else opts.fps  # a folder has no rate of its own: --fps sets it
    try:
        frames, fps = video.select_frames(clip.count, clip.fps, opts.start_frame, opts.end_frame, rate)
    except UserError as e:
        raise UserError(f"{source}: {e}") from None
    size = clip.size
    if rec.size:
        size = geometry.size_option(size[0], size[1], rec.size)
    starts.check_memory(size, f"{source}: frames at", CLIP_BYTES_PER_PIXEL)
    return clip, frames, fps, size


def run_clip(
    rec: Recipe,
    source: Path,
    target: Path,
    opts: video.VideoOptions,
    *,
    say: Callable[[str], None] = lambda s: None,
    on_start: Callable[[video.ClipJob, int, int], None] | None = None,
    on_frame: Callable[[int, int, str], None] | None = None,
    on_progress: Callable[[run.Update], None] | None = None,
    stop: threading.Event | None = None,
    reproduce: bool = False,
) -> ClipRun:
    """Dream a clip; returns what ran. `on_start(job, octaves, frames_to_dream)` comes before frame one.

    The clip is prepared once by `run.prepare` (brain, objective, tile plan, all checks) and every
    frame runs through `run.run` with its own start and seed, as a still would; `stop` ends the run
    after the current step (finished frames stay, a rerun resumes). With `reproduce` (--recipe) the
    brain's weights must be the recipe's.
    """
    ranks = distributed.setup(rec.device, share_tiles=not opts.chunks)
    tile_given = rec.params.tile
    clip, frames, fps, size = plan_clip(rec, source, opts)
    blank = np.zeros((*size, 3), np.float32)  # frames bring their own starts; only the size counts here

    def prepared(r: Recipe, brain=None) -> run.Prepared:
        return run.prepare(r, start=blank, brain=brain, reproduce=reproduce, say=say)

    prep = prepared(rec)
    for note in prep.notes:
        say(note)
    tile = distributed.broadcast_int(prep.plan.tiles.tile)  # rank 0's tile everywhere (free memory differs)
    where = str(source.resolve())
    job = video.ClipJob(prep.recipe.with_(params=prep.recipe.params.with_(tile=tile)), opts, where, tuple(frames),
                        fps, size, world=ranks.world)
    folder = video.frames_folder(target)
    if tile_given is None:  # a resumed run keeps the tile its frames were made with (free memory varies)
        tile = video.earlier_tile(folder, job) or tile
    if tile != prep.plan.tiles.tile:
        prep = prepared(rec.with_(params=rec.params.with_(tile=tile)), prep.brain)
        job = video.ClipJob(prep.recipe, opts, where, tuple(frames), fps, size, world=ranks.world)
    video.prepare_folder(folder, job, ranks.master, say)
    first_params = prep.recipe.params
    later = first_params.with_(iterations=opts.later_iterations(first_params.iterations))
    if on_start is not None:
        a, b, chain = video.my_range(job, ranks)
        on_start(job, prep.octaves, b - chain)

    def dream_frame(start: np.ndarray, k: int, first: bool) -> tuple[np.ndarray, run.DreamRun]:
        frame = replace(prep, start=start, recipe=prep.recipe.with_(seed=rec.seed + k,
                                                                    params=first_params if first else later))
        done = run.run(frame, None, on_progress=on_progress, stop=stop)
        return done.image, done

    result = video.dream_clip(job, clip, folder, dream_frame, on_frame=on_frame)
    if not result.interrupted:
        distributed.barrier()
        if ranks.master:
            _write(prep.recipe, clip, job, target, folder, (say, on_progress, stop))
    return ClipRun(job, folder, result, prep.octaves)


def _write(rec: Recipe, clip: video.Clip, job: video.ClipJob, target: Path, folder: Path, calls: tuple) -> None:
    """The finished frames into the target, with the soundtrack copied or (--audio dream) dreamt."""
    with tempfile.TemporaryDirectory(prefix="zoo-soundtrack-") as tmp:
        sound = dreamt_soundtrack(rec, clip, job, target, Path(tmp), *calls) if job.options.audio == "dream" else None
        video.write_output(target, folder, job, clip, sound)


SOUNDTRACK_SUFFIX = {".webm": ".ogg", ".avi": ".mp3"}  # what the container takes; else AAC in .m4a


def dreamt_soundtrack(rec: Recipe, clip: video.Clip, job: video.ClipJob, target: Path, tmp: Path, say,
                      on_progress, stop) -> video.Clip | None:
    """The clip's audio dreamt with the first frame's recipe (brain, layers, octaves, steps) and the sound
    defaults, cut to the dreamt frames, in a file the target's container can take; None without audio."""
    if clip.kind != "video" or not clip.has_audio or target.suffix.lower() not in video.VIDEO_SUFFIXES:
        return None
    from zoo.dream import audio_io, audio_run

    track, x = audio_run.load(clip.path)
    a, b = (int(round(float(f / clip.fps) * track.rate)) for f in (job.frames[0], job.frames[-1] + 1))
    x = x[:, a:min(b, x.shape[1])]
    setup = audio_run.plan_sound(rec, x, track.rate, audio_run.SoundOptions(), say=say)
    say(f"dreaming the soundtrack: {x.shape[1] / track.rate:.1f} s, {len(setup.spans)} chunk(s)")
    y, _, interrupted = audio_run.dream_samples(setup, x, track.rate, audio_run.SoundOptions(), rec.seed,
                                                on_progress=on_progress, stop=stop)
    if interrupted:
        raise UserError("interrupted while dreaming the soundtrack; run the same command again")
    path = tmp / f"soundtrack{SOUNDTRACK_SUFFIX.get(target.suffix.lower(), '.m4a')}"
    audio_io.write(path, y, track.rate)
    return video.Clip(path, "video", clip.fps, clip.count, clip.size, True)
