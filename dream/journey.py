"""The journey through the layers: a zoom sequence whose objective moves from blob to blob.

Each frame dreams on a zoomed (and turned) copy of the frame before it, as dream/sequence.py
does, with the objective's weights cross-faded along a path of blobs (`--layer-path A,B,C`, or
`all`: every dreamable blob, shallow to deep), so the film starts in the first blob and ends in
the last. Frames are written as numbered PNGs the moment they are finished, beside a run.json,
and the next frame starts from the written 8-bit frame: a rerun of the same command skips what is
there and ends with the same frames as an uninterrupted run (dream/video.py's frames folder and
encoder are reused).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from zoo.dream import run, sequence, video
from zoo.dream.brain import Brain, load_brain
from zoo.dream.objectives import parse_target
from zoo.dream.output import to_uint8, write_image
from zoo.dream.recipe import Recipe

from zoo.errors import UserError

FPS = 24.0  # frames a second of a journey when --fps is not given


def layer_weights(frame: int, frames: int, layers: int) -> list[float]:
    """Each layer's weight at `frame` (from 0) of `frames`: the path is walked at an even pace and
    each weight is a tent around its layer's moment, so neighbours cross-fade and weights sum to 1."""
    if layers == 1 or frames == 1:
        return [1.0] + [0.0] * (layers - 1)
    t = frame / (frames - 1) * (layers - 1)
    return [max(0.0, 1.0 - abs(t - i)) for i in range(layers)]


def layer_path(brain: Brain, text: str) -> list[str]:
    """The blobs of `--layer-path`: a comma-separated list, or `all` (every dreamable blob, shallow to
    deep); each is checked against the brain (one line naming the unknown one)."""
    names = list(brain.dreamable) if text.strip() == "all" else [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise UserError("--layer-path: name at least one blob (A,B,C) or all")
    for name in names:
        if parse_target(name).channels or parse_target(name).position:
            raise UserError(f"--layer-path {name!r}: give whole blobs (no :CHANNEL or @Y,X)")
        brain.resolve(parse_target(name))
    return names


@dataclass(frozen=True)
class JourneyJob:
    """A journey's record (run.json and the video's comment): the recipe, its path and frame rate."""

    recipe: Recipe
    path: tuple[str, ...]
    fps: float

    def to_json(self) -> str:
        return json.dumps({"recipe": json.loads(self.recipe.to_json()), "journey": {"path": list(self.path),
                                                                                  "fps": self.fps}}, sort_keys=True)

    def frame_recipe(self, k: int) -> Recipe:
        """Frame k's own recipe: the blobs it dreams on with their weights, and its seed."""
        w = layer_weights(k, self.recipe.frames, len(self.path))
        on = [(b, x) for b, x in zip(self.path, w) if x > 0]
        return self.recipe.with_(layers=tuple(b for b, _ in on), weights=tuple(round(x, 6) for _, x in on),
                                 seed=self.recipe.seed + k, frames=1)


@dataclass
class JourneyRun:
    job: JourneyJob
    folder: Path
    written: int
    skipped: int
    interrupted: bool


def check(rec: Recipe, path_text: str, target: Path, brain: Brain | None = None) -> tuple[Brain, list[str]]:
    """Everything about a journey that can be wrong, checked before any long work: the brain and its path."""
    video.check_output(target, "journey")
    if rec.frames < 2:
        raise UserError("--layer-path needs --frames 2 or more (it moves from blob to blob over the frames)")
    brain = brain or load_brain(rec.model or None)
    return brain, layer_path(brain, path_text)


def run_journey(rec: Recipe, path_text: str, target: Path, *, fps: float = FPS, codec: str | None = None,
                crf: int = 18, say: Callable[[str], None] = lambda s: None,
                on_frame: Callable[[int, int, Sequence[str]], None] | None = None,
                on_progress: Callable[[run.Update], None] | None = None,
                stop: threading.Event | None = None, brain: Brain | None = None) -> JourneyRun:
    """Dream the journey frame by frame into the frames folder, then encode `target` from it.

    `on_frame(k, n, blobs)` is called before frame k (from 0) is dreamt; `stop` ends the run after
    the current step, keeping the finished frames (a rerun resumes)."""
    brain, blobs = check(rec, path_text, target, brain)
    prep = run.prepare(rec.with_(layers=tuple(blobs), weights=()), brain=brain)
    job = JourneyJob(prep.recipe.with_(weights=()), tuple(blobs), float(fps))
    folder = video.frames_folder(target)
    video.prepare_folder(folder, job, True, say)  # type: ignore[arg-type]  # it needs only to_json
    written = skipped = 0
    prev: np.ndarray | None = None
    for k in range(rec.frames):
        path = video.frame_path(folder, k)
        if path.exists():
            prev, skipped = video.load_png(path).astype(np.float32), skipped + 1
            continue
        frame_rec = job.frame_recipe(k)
        if on_frame is not None:
            on_frame(k, rec.frames, frame_rec.layers)
        start = prep.start if prev is None else sequence.zoom_rotate(prev, rec.zoom, rec.rotate)
        frame = run.prepare(frame_rec, start=start, brain=brain)
        done = run.run(frame, None, on_progress=on_progress, stop=stop)
        if done.interrupted:
            return JourneyRun(job, folder, written, skipped, True)
        out8 = to_uint8(done.image)
        write_image(path, out8, frame_rec)
        prev, written = out8.astype(np.float32), written + 1
    write_output(target, folder, job, prep.start.shape[:2], codec, crf)
    return JourneyRun(job, folder, written, skipped, False)


def write_output(target: Path, folder: Path, job: JourneyJob, size: tuple[int, int], codec: str | None,
                 crf: int) -> None:
    """The finished frames as a video, an animation, or (a folder target) left as they are."""
    n = job.recipe.frames
    if video.frames_folder(target) == target:
        return
    if target.suffix.lower() in video.ANIMATION_SUFFIXES:
        sequence.write_animation(target, list(video.finished_frames(folder, n)), job.fps)
        return
    video.write_video(target, video.finished_frames(folder, n), Fraction(job.fps).limit_denominator(1001), size,
                      codec=codec, crf=crf, comment=job.to_json())

