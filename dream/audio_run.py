"""Dream a sound: its spectrogram as a picture through any brain, chunk by chunk, and back to sound.

A track is decoded once (its declared length checked against memory first), cut into chunks of
`chunk` seconds that overlap by `overlap` seconds, and every chunk of every channel is dreamt as a
picture by `run.run` (the same octaves, tiles, objectives and progress as a still), turned back into
samples with the original or a rebuilt phase, and cross-faded into the output. Memory stays bounded
by the samples (in and out) plus one chunk's pictures, whatever the length. Stereo is dreamt per
channel with one shared random draw per chunk, or as mid and side (`stereo="midside"`). The output
keeps the input's RMS and peak (within 1 dB) without clipping, and carries a SoundJob record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from zoo.dream import audio_io, pipeline, run
from zoo.dream import phase as phases
from zoo.dream import spectrogram as spec
from zoo.dream.brain import Brain, load_brain
from zoo.dream.presets import DreamParams
from zoo.dream.recipe import Recipe, file_sha256

from zoo import memory
from zoo.errors import UserError

SOUND_KEY = "zoo:sound"
STEREO = ("channels", "midside")
# The default dream for sound: lighter than a still's (a minute of sound is a picture ~5000 px wide).
SOUND_PARAMS = DreamParams(octaves=3, octave_scale=1.4, iterations=6, step=1.5, jitter=16)
PICTURE_SCALE = 0.5  # the dream's change is made on the picture at half size and scaled back up
GUIDE_SECONDS = 10.0  # a guide sound's first seconds make its features


@dataclass(frozen=True)
class SoundOptions:
    """Everything about a sound dream besides the Recipe (brain, layers, octaves, seed)."""

    n_fft: int = 1024
    hop: int = 512
    freq_scale: str = "linear"
    phase: str = "original"
    gl_iterations: int = phases.ITERATIONS
    mix: float = 1.0
    stereo: str = "channels"
    chunk: float = 10.0  # seconds
    overlap: float = 0.5  # seconds
    loudness: bool = True
    rounds: int = 1  # dream, resynthesise, dream again at full size: features that survive resynthesis
    picture_scale: float = PICTURE_SCALE  # the spectrogram is dreamt at this fraction of its size

    @property
    def geometry(self) -> spec.Geometry:
        return spec.Geometry(self.n_fft, self.hop, self.freq_scale)

    def check(self) -> SoundOptions:
        problems = {
            "--n-fft": not (32 <= self.n_fft <= 16384), "--hop": not (1 <= self.hop <= self.n_fft // 2),
            "--freq-scale": self.freq_scale not in spec.FREQ_SCALES, "--phase": self.phase not in phases.PHASES,
            "--gl-iterations": not (1 <= self.gl_iterations <= 1000), "--mix": not (0.0 <= self.mix <= 1.0),
            "--stereo": self.stereo not in STEREO, "--chunk": not (0.1 <= self.chunk <= 3600),
            "--overlap": not (0.0 <= self.overlap < self.chunk / 2), "--rounds": not (1 <= self.rounds <= 100),
            "--picture-scale": not (0.05 <= self.picture_scale <= 1.0),
        }
        for flag, bad in problems.items():
            if bad:
                raise UserError(f"{flag}: {_HELP[flag]}")
        return self


def sound_options(values: Mapping[str, Any]) -> SoundOptions:
    """The SoundOptions of the SOUND group's values (zoo dream's options, a studio request; None or absent:
    the declared default), so every door maps them the same way."""
    from zoo.dream.options import SOUND

    v = SOUND.values(dict(values))
    return SoundOptions(n_fft=v["n_fft"], hop=v["hop"], freq_scale=v["freq_scale"], phase=v["phase"],
                        gl_iterations=v["gl_iterations"], mix=v["mix"], stereo=v["stereo"], chunk=v["chunk"],
                        overlap=min(0.5, v["chunk"] / 4), loudness=not v["no_loudness"], rounds=v["rounds"],
                        picture_scale=v["picture_scale"])


def sound_params(params: Mapping[str, Any], preset: str | None) -> dict[str, Any]:
    """A sound dream's picture parameters: those not given take SOUND_PARAMS (unless a preset gives them)."""
    if preset is not None:
        return dict(params)
    base = SOUND_PARAMS.to_dict()
    return {k: (base[k] if v is None and k in base else v) for k, v in params.items()}


_HELP = {"--n-fft": "between 32 and 16384 samples", "--hop": "between 1 and half of --n-fft",
         "--freq-scale": f"one of {', '.join(spec.FREQ_SCALES)}", "--phase": f"one of {', '.join(phases.PHASES)}",
         "--gl-iterations": "between 1 and 1000", "--mix": "between 0 (dry) and 1 (wet)",
         "--stereo": f"one of {', '.join(STEREO)}", "--chunk": "between 0.1 and 3600 seconds",
         "--overlap": "at least 0 and under half of --chunk", "--rounds": "between 1 and 100",
         "--picture-scale": "between 0.05 and 1 (the spectrogram's size)"}


@dataclass(frozen=True)
class SoundJob:
    """One sound dream: the picture recipe, the sound options and what was read from the source."""

    recipe: Recipe
    options: SoundOptions
    source: str
    rate: int
    channels: int
    samples: int

    def to_json(self) -> str:
        return json.dumps({"recipe": json.loads(self.recipe.to_json()), "sound": asdict(self.options),
                           "source": self.source, "rate": self.rate, "channels": self.channels,
                           "samples": self.samples}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, where: str) -> SoundJob:
        """Parse a sound record field by field (a tampered one gets one line naming the field)."""
        if text is None:
            raise UserError(f"{where}: carries no zoo sound recipe (only sounds written by `zoo dream` do)")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise UserError(f"{where}: its sound recipe is not valid JSON") from None
        if not isinstance(data, dict) or set(data) != {"recipe", "sound", "source", "rate", "channels", "samples"}:
            raise UserError(f"{where}: its sound recipe lacks recipe, sound, source, rate, channels or samples")
        rec = Recipe.from_json(json.dumps(data["recipe"]), where)
        opts = data["sound"]
        if isinstance(opts, dict) and "picture_scale" not in opts:  # a record from before --picture-scale
            opts = {**opts, "picture_scale": 1.0}
        names = set(SoundOptions.__dataclass_fields__)
        if not isinstance(opts, dict) or set(opts) != names:
            raise UserError(f"{where}: sound recipe field 'sound' must hold {', '.join(sorted(names))}")
        kinds = {k: type(v) for k, v in asdict(SoundOptions()).items()}
        for k, v in opts.items():
            if not isinstance(v, kinds[k]) and not (kinds[k] is float and isinstance(v, int)) or isinstance(v, bool) \
                    != (kinds[k] is bool):
                raise UserError(f"{where}: sound recipe field 'sound.{k}' is not valid ({v!r})")
        try:
            options = SoundOptions(**opts).check()
        except UserError as e:
            raise UserError(f"{where}: sound recipe field 'sound': {e}") from None
        for k in ("rate", "channels", "samples"):
            if not isinstance(data[k], int) or isinstance(data[k], bool) or data[k] < 0:
                raise UserError(f"{where}: sound recipe field {k!r} is not valid")
        if not isinstance(data["source"], str):
            raise UserError(f"{where}: sound recipe field 'source' is not valid")
        return cls(rec, options, data["source"], data["rate"], data["channels"], data["samples"])


# --- pure plans ---------------------------------------------------------------------------------


def chunk_plan(n: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, stop) sample spans of equal `size` (the last one moved back to end at n) covering n
    samples, neighbours overlapping by at least `overlap`; one span of n when n <= size."""
    if n <= size:
        return [(0, n)]
    step = size - overlap
    spans, a = [], 0
    while a + size < n:
        spans.append((a, a + size))
        a += step
    spans.append((n - size, n))
    return spans


def fade(spans: list[tuple[int, int]], k: int) -> np.ndarray:
    """Cross-fade weights of span k: linear ramps over its overlaps, so all spans' weights sum to 1."""
    a, b = spans[k]
    w = np.ones(b - a, np.float32)
    if k > 0 and spans[k - 1][1] > a:
        m = spans[k - 1][1] - a
        w[:m] = (np.arange(m, dtype=np.float32) + 0.5) / m
    if k + 1 < len(spans) and spans[k + 1][0] < b:
        m = b - spans[k + 1][0]
        w[b - a - m:] *= (m - 0.5 - np.arange(m, dtype=np.float32)) / m
    return w


def split_channels(x: np.ndarray, stereo: str) -> np.ndarray:
    """The channels that are dreamt: as they are, or mid and side of a stereo pair."""
    if stereo == "midside" and x.shape[0] == 2:
        return np.stack([(x[0] + x[1]) * 0.5, (x[0] - x[1]) * 0.5])
    return x


def join_channels(y: np.ndarray, stereo: str) -> np.ndarray:
    """Mid and side back to left and right, in place a block at a time (no copy of the track)."""
    if stereo == "midside" and y.shape[0] == 2:
        for k in range(0, y.shape[1], BLOCK):
            mid = y[0, k:k + BLOCK].copy()
            y[0, k:k + BLOCK] += y[1, k:k + BLOCK]
            np.subtract(mid, y[1, k:k + BLOCK], out=y[1, k:k + BLOCK])
    return y


BLOCK = 1 << 16  # samples a block: whole-track sums and scalings go through blocks, never whole copies


def peak(x: np.ndarray) -> float:
    """The largest magnitude of a track (no temporary the size of the track)."""
    return max(float(x.max()), -float(x.min())) if x.size else 0.0


def limit(y: np.ndarray, ceiling: float, knee: float = 0.7) -> np.ndarray:
    """Soft-limit peaks above `knee` x `ceiling` smoothly (tanh) to at most `ceiling`."""
    k = knee * ceiling
    out = y.copy()
    over = np.abs(y) > k
    if over.any():
        mag = np.abs(y[over])
        out[over] = np.sign(y[over]) * (k + (ceiling - k) * np.tanh((mag - k) / (ceiling - k)))
    return out


def _blocks(y: np.ndarray):
    for k in range(0, y.shape[1], BLOCK):
        yield y[:, k:k + BLOCK]


def _rms(y: np.ndarray, gain: float = 1.0, ceiling: float | None = None) -> float:
    """RMS of `y` x `gain` (soft-limited to `ceiling` if given), summed in float64 a block at a time."""
    total = 0.0
    for b in _blocks(y):
        if gain != 1.0:
            b = b * np.float32(gain)
        if ceiling is not None:
            b = limit(b, ceiling)
        total += float(np.sum(np.square(b, dtype=np.float64)))
    return float(np.sqrt(total / max(y.size, 1)))


def keep_loudness(y: np.ndarray, x: np.ndarray, rounds: int = 8) -> np.ndarray:
    """`y` at `x`'s RMS with its peaks soft-limited to `x`'s peak (at most full scale): no clipping.

    The limiter acts only when a peak would pass the input's; it takes a little energy, so the gain
    before it is found by a few fixed-point rounds. `y` is changed in place, a block at a time."""
    rms_x, rms_y = _rms(x), _rms(y)
    if rms_x == 0.0 or rms_y == 0.0:
        return y
    ceiling = min(peak(x), 1.0)
    gain = rms_x / rms_y
    if peak(y) * gain <= ceiling:  # no peak above the input's: scaled, no limiter
        y *= np.float32(gain)
        return y
    for _ in range(rounds):
        now = _rms(y, gain, ceiling)
        if abs(now - rms_x) < 1e-4 * rms_x:
            break
        gain *= rms_x / now
    for b in _blocks(y):
        b[...] = limit(b * np.float32(gain), ceiling)
    return y


# --- the run ------------------------------------------------------------------------------------


@dataclass
class SoundRun:
    job: SoundJob
    samples: np.ndarray  # channels x n, what was written
    pictures: tuple[np.ndarray, np.ndarray]  # channel 0's picture before and after (rows x frames)
    interrupted: bool
    chunks: int


@dataclass
class _Setup:
    prep: run.Prepared
    spans: list[tuple[int, int]]
    chunk_len: int  # samples every chunk is padded to
    top: float
    channels: int = 1
    rounds: int = 1

    @property
    def later(self) -> run.Prepared:
        """The dream of rounds after the first: the same at full size only."""
        p = self.prep
        return replace(p, recipe=p.recipe.with_(params=p.recipe.params.with_(octaves=1)), octaves=1,
                       sizes=p.sizes[-1:], total=p.recipe.params.iterations)

    @property
    def total(self) -> int:
        """Steps over every round, chunk and channel."""
        per_chunk = self.prep.total + (self.rounds - 1) * self.prep.recipe.params.iterations
        return per_chunk * len(self.spans) * self.channels


def plan_sound(rec: Recipe, x: np.ndarray, rate: int, opts: SoundOptions, *, brain: Brain | None = None,
               reproduce: bool = False, say: Callable[[str], None] = lambda s: None) -> _Setup:
    """Prepare the dream of every chunk: brain, objective and tiles at the chunk's picture size."""
    g = opts.geometry
    n = x.shape[1]
    brain = brain or load_brain(rec.model or None)
    blobs = [t.blob for t in pipeline.objective_targets(brain, pipeline.targets_for(brain, list(rec.layers)),
                                                        (g.bins, 512))]
    need = pipeline.min_side(brain, blobs)
    rows = spec.scaled((g.bins, 1), opts.picture_scale)[0]
    if rows < need:
        raise UserError(f"--n-fft {g.n_fft}: {rows} rows (at --picture-scale {opts.picture_scale:g}) are too few for "
                        f"{brain.name} at {', '.join(blobs)}; use --n-fft {2 * (int(need / opts.picture_scale) - 1)} "
                        "or more")
    size = max(min(int(round(opts.chunk * rate)), n), int(np.ceil((need / opts.picture_scale + 1) * g.hop)))
    spans = chunk_plan(n, size, int(round(opts.overlap * rate)))
    blank = np.zeros((*spec.scaled((g.bins, g.frames(size)), opts.picture_scale), 3), np.float32)
    prep = run.prepare(rec.with_(guide=None, guide_sha256=None), start=blank, brain=brain, reproduce=reproduce,
                       say=say)
    prep = replace(prep, recipe=prep.recipe.with_(guide=rec.guide, guide_sha256=rec.guide_sha256))
    top = spec.top_db(peak(x), g)
    if rec.guide:
        prep = replace(prep, objective=_guided(prep, Path(rec.guide), rec, opts))
    return _Setup(prep, spans, size, top, x.shape[0], opts.rounds)


def _guided(prep: run.Prepared, guide: Path, rec: Recipe, opts: SoundOptions):
    """The objective toward a guide sound's features (its first GUIDE_SECONDS, channels mixed)."""
    if rec.guide_sha256 and file_sha256(guide) != rec.guide_sha256:
        raise UserError(f"{guide}: not the guide this recipe was made from (sha256 differs)")
    track = audio_io.probe(guide)
    g = opts.geometry
    y = audio_io.read(track).mean(axis=0)[: int(GUIDE_SECONDS * track.rate)]
    y = np.pad(y, (0, max(0, prep.start.shape[1] * g.hop - y.shape[0])))
    gray = spec.picture(spec.to_db(spec.stft(y, g)), g, track.rate, spec.top_db(peak(y), g))
    pic = spec.to_rgb(spec.resized(gray, spec.scaled(gray.shape, opts.picture_scale)))
    placed = pipeline.objective_targets(prep.brain, pipeline.targets_for(prep.brain, list(prep.recipe.layers)),
                                        pic.shape[:2])
    feats = {b: pipeline.guide_features(prep.brain, pic, b, rec.device) for b in {t.blob for t in placed}}
    return pipeline.build_objective(prep.brain, placed, rec.weights, guide_blobs=feats)


def dream_chunk(setup: _Setup, seg: np.ndarray, rate: int, opts: SoundOptions, seed: int,
                on_progress: Callable[[run.Update], None] | None, stop: threading.Event | None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """One channel of one chunk: (samples, first picture, last dreamt picture, interrupted).

    Each round dreams the picture of the sound so far and resynthesises it with that sound's phase;
    rounds after the first run at full size only (one octave), with their own seed."""
    g = opts.geometry
    n = seg.shape[0]
    y = np.pad(seg, (0, setup.chunk_len - n)) if n < setup.chunk_len else seg
    first = after = None
    for r in range(opts.rounds):
        s = spec.stft(y, g)
        db = spec.to_db(s)
        before = spec.picture(db, g, rate, setup.top)
        small = spec.resized(before, spec.scaled(before.shape, opts.picture_scale))
        base = setup.prep if r == 0 else setup.later
        prep = replace(base, start=spec.to_rgb(small), recipe=base.recipe.with_(seed=seed + 7919 * r))
        done = run.run(prep, None, on_progress=on_progress, stop=stop)
        after = spec.from_rgb(done.image)
        if small is not before:  # the change, made at a smaller size, scaled back onto the picture
            after = before + spec.resized(after - small, before.shape)
        first = before if first is None else first
        mag = spec.resynth_magnitude(spec.dreamt_db(db, before, after, g, rate, setup.top, opts.mix))
        y = phases.RESYNTH[opts.phase](mag, s, g, y.shape[0], opts.gl_iterations)
        if done.interrupted:
            break
    assert first is not None and after is not None
    cols = g.frames(n)
    return y[:n], first[:, :cols], after[:, :cols], done.interrupted


def dream_samples(setup: _Setup, x: np.ndarray, rate: int, opts: SoundOptions, seed: int, *,
                  on_chunk: Callable[[int, int], None] | None = None,
                  on_progress: Callable[[run.Update], None] | None = None,
                  stop: threading.Event | None = None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray], bool]:
    """Dream every chunk of every channel and cross-fade them: (samples, channel 0's pictures, interrupted).

    Memory: the input, one float32 output buffer the chunks are added into, one chunk's pictures
    and channel 0's pictures as uint8 (what a PNG of them holds); no whole-track copy besides."""
    from zoo.dream.output import to_uint8

    out = np.zeros(x.shape, np.float32)
    pics: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
    for k, (a, b) in enumerate(setup.spans):
        if on_chunk is not None:
            on_chunk(k, len(setup.spans))
        w = fade(setup.spans, k)
        chans = split_channels(x[:, a:b], opts.stereo)
        for c in range(chans.shape[0]):
            y, before, after, interrupted = dream_chunk(setup, chans[c], rate, opts, seed + k, on_progress, stop)
            if interrupted:
                return join_channels(out, opts.stereo), _joined(pics), True
            y *= w
            out[c, a:b] += y
            if c == 0:  # the picture output: each chunk's columns from where the previous one's end
                first = 0 if k == 0 else max(0, (setup.spans[k - 1][1] - a) // opts.hop)
                pics[0].append(to_uint8(before[:, first:]))
                pics[1].append(to_uint8(after[:, first:]))
    join_channels(out, opts.stereo)
    return (keep_loudness(out, x) if opts.loudness else out), _joined(pics), False


def _joined(pics: tuple[list[np.ndarray], list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not pics[0]:
        return np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8)
    return np.concatenate(pics[0], axis=1), np.concatenate(pics[1], axis=1)


def run_sound(rec: Recipe, source: Path, target: Path | None, opts: SoundOptions, *,
              say: Callable[[str], None] = lambda s: None,
              on_start: Callable[[SoundJob, _Setup], None] | None = None,
              on_chunk: Callable[[int, int], None] | None = None,
              on_progress: Callable[[run.Update], None] | None = None,
              stop: threading.Event | None = None, reproduce: bool = False,
              decoded: tuple[audio_io.Track, np.ndarray] | None = None, brain: Brain | None = None) -> SoundRun:
    """Dream a sound file and write the dreamt sound (or, for a .png target, its dreamt spectrogram).

    `decoded` is the source's `load` when the caller decoded it already (to fail before showing progress);
    `brain` one the caller keeps loaded (the studio's worker)."""
    opts.check()
    track, x = decoded or load(source)
    setup = plan_sound(rec, x, track.rate, opts, brain=brain, reproduce=reproduce, say=say)
    for note in setup.prep.notes:
        say(note)
    job = SoundJob(setup.prep.recipe, opts, str(source.resolve()), track.rate, x.shape[0], x.shape[1])
    if on_start is not None:
        on_start(job, setup)
    y, pics, interrupted = dream_samples(setup, x, track.rate, opts, rec.seed, on_chunk=on_chunk,
                                         on_progress=on_progress, stop=stop)
    if not interrupted and target is not None:
        write_result(target, job, y, pics[1])
    return SoundRun(job, y, pics, interrupted, len(setup.spans))


def load(source: Path) -> tuple[audio_io.Track, np.ndarray]:
    """Probe (memory checked against the declared length) and decode a sound."""
    track = audio_io.probe(source)
    return track, audio_io.read(track)


def write_result(target: Path, job: SoundJob, y: np.ndarray, picture: np.ndarray) -> None:
    if target.suffix.lower() == ".png":
        write_picture(target, picture, job)
    else:
        audio_io.write(target, y, job.rate, job.to_json())


def write_picture(target: Path, gray: np.ndarray, job: SoundJob | None = None) -> None:
    """A spectrogram picture as a PNG; a dream's carries its recipe and sound record."""
    from zoo.dream import output
    from zoo.dream.recipe import png_info

    info = None
    if job is not None:
        info = png_info(job.recipe)
        info.add_itxt(SOUND_KEY, job.to_json())
    output.write_image(target, spec.to_rgb(gray), info)


def read_sound_recipe(path: Path) -> str | None:
    """The sound record of a dreamt sound file (its comment tag) or of its spectrogram PNG."""
    if path.suffix.lower() == ".png":
        from PIL import Image

        with Image.open(path) as im:
            return getattr(im, "text", {}).get(SOUND_KEY)
    return audio_io.read_comment(path)


def is_sound_recipe(path: Path) -> bool:
    """Whether `--recipe PATH` names a sound dream: a sound file, or a PNG carrying a sound record."""
    if audio_io.is_audio_path(path):
        return True
    if path.suffix.lower() == ".png" and path.is_file():
        try:
            return read_sound_recipe(path) is not None
        except memory.DECODE_ERRORS:  # not a picture zoo can read: the still's reader says why
            return False
    return False
