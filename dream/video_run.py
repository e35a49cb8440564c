"""Library entry for clip dreams: from a Recipe, a source clip and VideoOptions to a written clip.

The same brain, objective and tile plan as `zoo dream` on a still (pipeline.py); progress and
messages go to callbacks, so the CLI and a web front end drive it alike. Under torchrun it shares
each step's tiles over the ranks, or (with `chunks`) gives each rank a part of the clip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from zoo.dream import distributed, geometry, pipeline, render, starts, video
from zoo.dream.recipe import Recipe, file_sha256

from zoo.errors import UserError


@dataclass
class ClipRun:
    job: video.ClipJob
    folder: Path
    result: video.ClipResult
    octaves: int


def plan_clip(rec: Recipe, source: Path, opts: video.VideoOptions) -> tuple[video.Clip, list[int], object, tuple]:
    """Probe the source and pick its frames, rate and size (fails before any brain loads)."""
    clip = video.open_clip(source, opts.fps)
    if clip.kind == "folder":  # a folder has no rate of its own: --fps sets it, nothing is dropped
        frames, fps = video.select_frames(clip.count, clip.fps, opts.start_frame, opts.end_frame)
    else:
        frames, fps = video.select_frames(clip.count, clip.fps, opts.start_frame, opts.end_frame, opts.fps)
    size = clip.size
    if rec.size:
        try:
            size = geometry.scaled_size(size[0], size[1], rec.size)
        except ValueError as e:
            raise UserError(f"--size: {e}") from None
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
    on_progress: Callable[[render.Progress], None] | None = None,
) -> ClipRun:
    """Dream a clip; returns what ran. `on_start(job, octaves, frames_to_dream)` comes before frame one."""
    from zoo.dream.brain import load_brain

    ranks = distributed.setup(rec.device, share_tiles=not opts.chunks)
    tile_given = rec.params.tile
    clip, frames, fps, size = plan_clip(rec, source, opts)
    brain = load_brain(rec.model or None)
    targets = pipeline.targets_for(brain, list(rec.layers))
    blobs = list(dict.fromkeys(t.blob for t in targets))
    pipeline.check_fits(brain, blobs, size, str(source))
    guide_feats = None
    if rec.guide:
        if rec.guide_sha256 and file_sha256(rec.guide) != rec.guide_sha256:
            raise UserError(f"{rec.guide}: not the guide this recipe was made from (sha256 differs)")
        g = starts.load_image(rec.guide)
        guide_feats = {b: pipeline.guide_features(brain, g, b, rec.device) for b in blobs}
    objective = pipeline.build_objective(brain, targets, rec.weights, guide_blobs=guide_feats)
    plan = pipeline.plan_for(brain, objective.blobs, rec.params, rec.device)
    tile = distributed.broadcast_int(plan.tiles.tile) if not opts.chunks else plan.tiles.tile
    if tile != plan.tiles.tile:
        plan = pipeline.plan_for(brain, objective.blobs, rec.params.with_(tile=tile), rec.device)
    rec = rec.with_(model=brain.name, weights_sha256=brain.weights_sha256,
                    layers=tuple(str(t) for t in targets), params=rec.params.with_(tile=plan.tiles.tile))
    job = video.ClipJob(rec, opts, str(source), tuple(frames), fps, size, world=ranks.world)
    folder = video.frames_folder(target)
    if tile_given is None:  # a resumed run keeps the tile its frames were made with (free memory varies)
        old = video.earlier_tile(folder, job)
        if old is not None and old != plan.tiles.tile:
            plan = pipeline.plan_for(brain, objective.blobs, rec.params.with_(tile=old), rec.device)
            rec = rec.with_(params=rec.params.with_(tile=plan.tiles.tile))
            job = video.ClipJob(rec, opts, str(source), tuple(frames), fps, size, world=ranks.world)
    video.prepare_folder(folder, job, ranks.master, say)
    later = rec.params.with_(iterations=opts.later_iterations(rec.params.iterations))
    n_oct = len(render.usable_octaves(*size, rec.params, (plan.min_side, plan.min_side)))
    if on_start is not None:
        a, b, chain = video.my_range(job, ranks)
        on_start(job, n_oct, b - chain)

    def dream_frame(start: np.ndarray, k: int, first: bool):
        return pipeline.dream_rgb(brain, start, objective, rec.params if first else later, seed=rec.seed + k,
                                  device=rec.device, plan=plan, on_progress=on_progress)

    result = video.dream_clip(job, clip, folder, dream_frame, on_frame=on_frame)
    if not result.interrupted:
        distributed.barrier()
        if ranks.master:
            video.write_output(target, folder, job, clip)
    return ClipRun(job, folder, result, n_oct)
