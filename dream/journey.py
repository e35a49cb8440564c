"""The journey through the layers: a zoom sequence whose objective moves from blob to blob.

Each frame dreams on a zoomed (and turned) copy of the frame before it, as dream/sequence.py does,
with the objective walked along a path of blobs (`--layer-path A,B,C`, or `all`: every dreamable
blob, shallow to deep): resting on each blob for a share of the frames, cross-faded between them, so
the film starts in the first blob and ends in the last. Each blob's term is divided by its own pull
on the start (the mean absolute gradient it gives the start image, as dream/legible.py balances
several layers), recorded in the recipe's `balance`: unscaled, a shallow blob's large activations
would outpull a deep one through every cross-fade. Frames are written as numbered PNGs the moment
they are finished, beside a run.json, and the next frame starts from the written 8-bit frame: a
rerun of the same command skips what is there and ends with the same frames as an uninterrupted run
(dream/video.py's frames folder and encoder are reused). The video carries the run's record, so
`--recipe journey.mp4` dreams it again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from zoo.dream import legible, pipeline, run, sequence, video
from zoo.dream.brain import Brain, load_brain
from zoo.dream.objectives import parse_target
from zoo.dream.output import to_uint8, write_image
from zoo.dream.recipe import Recipe

from zoo.errors import UserError

FPS = 24.0  # frames a second of a journey when --fps is not given
DEEP_STEPS = 8  # the path's last frame gets this many times the steps of its first (--iterations: the mean)
HOLD = 0.4  # share of a new journey's frames spent resting on a blob (a record without `hold` reads as 0)


def layer_weights(frame: int, frames: int, layers: int, hold: float = 0.0) -> list[float]:
    """Each layer's weight at `frame` (from 0) of `frames`: the path is walked at an even pace and
    each weight is a tent around its layer's moment, so neighbours cross-fade and weights sum to 1.
    With `hold` > 0 that share of the frames rests on the blobs themselves (hold/layers each), the
    rest cross-fades: a deep blob needs frames of its own to show (measured on the journey)."""
    if layers == 1 or frames == 1:
        return [1.0] + [0.0] * (layers - 1)
    t = path_position(frame / (frames - 1), layers, hold)
    return [max(0.0, 1.0 - abs(t - i)) for i in range(layers)]


def path_position(u: float, layers: int, hold: float) -> float:
    """Where on the path (0 .. layers-1) the share `u` (0 .. 1) of the frames stands: stations of
    hold/layers each, joined by even fades."""
    rest, fade = hold / layers, (1.0 - hold) / (layers - 1)
    i = min(layers - 1, int(u // (rest + fade)))
    return min(layers - 1.0, i + max(0.0, u - i * (rest + fade) - rest) / fade)


def frame_iterations(frame: int, frames: int, layers: int, iterations: int) -> int:
    """Steps an octave for `frame`: rising evenly along the path, the last frame getting DEEP_STEPS
    times the first's, `iterations` on average (so the film costs what a constant one would). A deep
    blob moves the picture far less a step than a shallow one, and a shallow blob's texture, once
    grown, stays (measured: with 2 steps a frame throughout it stayed in charge till the last frames)."""
    if layers == 1 or frames == 1:
        return iterations
    share = 2 * (1 + (DEEP_STEPS - 1) * frame / (frames - 1)) / (1 + DEEP_STEPS)
    return max(1, round(iterations * share))


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
    """A journey's record (run.json and the video's comment): the recipe (its `balance` holds each
    blob's scale, in path order), the path, the frame rate and the encoder's settings."""

    recipe: Recipe
    path: tuple[str, ...]
    fps: float
    codec: str | None = None
    crf: int = 18
    hold: float = HOLD

    def to_json(self) -> str:
        journey = {"path": list(self.path), "fps": self.fps, "codec": self.codec, "crf": self.crf, "hold": self.hold}
        return json.dumps({"recipe": json.loads(self.recipe.to_json()), "journey": journey}, sort_keys=True)

    def frame_recipe(self, k: int) -> Recipe:
        """Frame k's own recipe: the blobs it dreams on with their weights and scales, its steps and seed."""
        n, layers = self.recipe.frames, len(self.path)
        w = layer_weights(k, n, layers, self.hold)
        params = self.recipe.params.with_(iterations=frame_iterations(k, n, layers, self.recipe.params.iterations))
        scales = self.recipe.balance or (1.0,) * len(self.path)
        on = [(b, x, s) for b, x, s in zip(self.path, w, scales) if x > 0]
        return self.recipe.with_(layers=tuple(b for b, _, _ in on), weights=tuple(round(x, 6) for _, x, _ in on),
                                 balance=tuple(s for _, _, s in on) if self.recipe.balance else (),
                                 seed=self.recipe.seed + k, frames=1, params=params)


def is_record(path: Path) -> bool:
    """Whether `--recipe PATH` names a journey: a video, run.json, frames folder or animation whose
    run record has a `journey` part (a clip's record is reproduced by dream/video_cli.py)."""
    if not video.is_clip_recipe(path):
        return False
    try:
        data = json.loads(video.read_video_recipe(path) or "null")
    except (UserError, ValueError, RecursionError, OSError):
        return False
    return isinstance(data, dict) and "journey" in data


def _checked(part: dict, source: str) -> dict:
    """A record's `journey` part, each field checked (one line naming the first bad one)."""
    part = {"codec": None, "crf": 18, "hold": 0.0, **part}  # records from before `hold` walked without rests
    ok = {"path": lambda v: isinstance(v, list) and 0 < len(v) <= 10_000 and all(isinstance(b, str) and b for b in v),
          "fps": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.01 <= v <= 1e4,
          "codec": lambda v: v is None or (isinstance(v, str) and 0 < len(v) < 64),
          "crf": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 63,
          "hold": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1}
    if set(part) != set(ok):
        raise UserError(f"{source}: journey recipe field 'journey' must hold {', '.join(ok)}")
    for key, good in ok.items():
        if not good(part[key]):
            raise UserError(f"{source}: journey recipe field 'journey.{key}' is not valid ({part[key]!r})")
    return part


def read_job(path: Path) -> JourneyJob:
    """The journey a video (or its run.json, frames folder or animation) records, every field checked."""
    text = video.read_video_recipe(path)
    try:
        data = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict) or set(data) != {"recipe", "journey"} or not isinstance(data["journey"], dict):
        raise UserError(f"{path}: carries no zoo journey recipe (recipe and journey)")
    part = _checked(data["journey"], str(path))
    rec = Recipe.from_json(json.dumps(data["recipe"]), str(path))
    if list(rec.layers) != part["path"]:
        raise UserError(f"{path}: journey recipe's layers differ from its path")
    return JourneyJob(rec, tuple(part["path"]), float(part["fps"]), part["codec"], part["crf"],
                      float(part["hold"]))


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


def scales(brain: Brain, start: np.ndarray, blobs: Sequence[str], device: str) -> tuple[float, ...]:
    """Each blob's pull on the start image (legible.pulls): what its term is divided by."""
    targets = pipeline.objective_targets(brain, pipeline.targets_for(brain, blobs), start.shape[:2])
    return legible.pulls(brain, start, targets, device)


def plan(rec: Recipe, path_text: str, target: Path, *, fps: float = FPS, codec: str | None = None, crf: int = 18,
         hold: float | None = None, brain: Brain | None = None,
         reproduce: bool = False) -> tuple[run.Prepared, JourneyJob]:
    """The checked journey: its start prepared and its record, with each blob's scale measured on the
    start (or, given in `rec.balance` for the whole path, as recorded); `hold` None is HOLD."""
    brain, blobs = check(rec, path_text, target, brain)
    prep = run.prepare(rec.with_(layers=tuple(blobs), weights=(), balance=()), brain=brain, reproduce=reproduce)
    given = rec.balance if len(rec.balance) == len(blobs) else ()
    if rec.balance and not given:
        raise UserError(f"recipe: {len(rec.balance)} balance scales for a path of {len(blobs)} blobs")
    balance = given or scales(brain, prep.start, blobs, rec.device)
    return prep, JourneyJob(prep.recipe.with_(weights=(), balance=balance), tuple(blobs), float(fps), codec, crf,
                            HOLD if hold is None else float(hold))


def run_journey(rec: Recipe, path_text: str, target: Path, *, fps: float = FPS, codec: str | None = None,
                crf: int = 18, hold: float | None = None, say: Callable[[str], None] = lambda s: None,
                on_frame: Callable[[int, int, Sequence[str]], None] | None = None,
                on_progress: Callable[[run.Update], None] | None = None,
                stop: threading.Event | None = None, brain: Brain | None = None,
                reproduce: bool = False) -> JourneyRun:
    """Dream the journey frame by frame into the frames folder, then encode `target` from it.

    `on_frame(k, n, blobs)` is called before frame k (from 0) is dreamt; `stop` ends the run after
    the current step, keeping the finished frames (a rerun resumes). With `reproduce` (--recipe) the
    brain's weights must be the recipe's."""
    prep, job = plan(rec, path_text, target, fps=fps, codec=codec, crf=crf, hold=hold, brain=brain,
                     reproduce=reproduce)
    brain = prep.brain
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
        write_image(path, out8, frame_info(job, frame_rec))
        prev, written = out8.astype(np.float32), written + 1
    write_output(target, folder, job, prep.start.shape[:2])
    return JourneyRun(job, folder, written, skipped, False)


def frame_info(job: JourneyJob, frame_rec: Recipe):
    """A frame's PNG text: what this frame dreamt (its own recipe) and the journey's record, so that
    `--recipe frame.png` makes the whole film again, as a clip's frame does (a frame's start is the
    zoomed frame before it, which its own recipe cannot say)."""
    from zoo.dream.recipe import png_info

    info = png_info(frame_rec)
    info.add_itxt(video.VIDEO_KEY, job.to_json())
    return info


def write_output(target: Path, folder: Path, job: JourneyJob, size: tuple[int, int]) -> None:
    """The finished frames as a video, an animation, or (a folder target) left as they are."""
    n = job.recipe.frames
    if video.frames_folder(target) == target:
        return
    if target.suffix.lower() in video.ANIMATION_SUFFIXES:
        sequence.write_animation(target, list(video.finished_frames(folder, n)), job.fps)
        return
    video.write_video(target, video.finished_frames(folder, n), Fraction(job.fps).limit_denominator(1001), size,
                      codec=job.codec, crf=job.crf, comment=job.to_json())

