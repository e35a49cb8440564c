"""The studio's jobs for sounds, stroke dreams and journeys, run in the worker like every job (see
zoo/studio/jobs.py): each calls the function the CLI calls (audio_run.run_sound, paint.run_strokes,
journey.run_journey) with the library's callbacks turned into events and the worker's Stop flag, and
writes what `zoo dream` writes, so `zoo dream --recipe` reproduces the studio's output. Decoding a
sound and rendering an SVG happen here, never in the web server.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import numpy as np

from zoo.studio import media
from zoo.studio.jobs import Context, Emit, _ref, _Reporter, jpeg_data_url, load_brain, recipe_of

VIEW_WIDTH = 2048  # a spectrogram's view is at most this many columns wide (a minute of sound has 5168)
PREVIEW_EVERY = 0.5  # seconds between previews of the chunk being dreamt


def write_view(gray: np.ndarray, target: Path) -> str | None:
    """A grey spectrogram picture (rows x columns, 0..255) as a PNG for the page, narrowed (by averaging
    columns) to VIEW_WIDTH; returns its studio reference."""
    from PIL import Image

    from zoo.io import write_bytes_atomic

    im = Image.fromarray(np.clip(np.rint(gray), 0, 255).astype(np.uint8), "L")
    if im.width > VIEW_WIDTH:
        im = im.resize((VIEW_WIDTH, im.height), Image.BOX)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    target.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(target, buf.getvalue())
    return _ref(target)


# --- sound ----------------------------------------------------------------------------------------


def spectrogram(spec: dict, emit: Emit, ctx: Context) -> dict:
    """The picture a sound dream starts from (the first channel, or the mid), at the sound options' STFT."""
    from zoo import memory
    from zoo.dream import audio_run
    from zoo.dream import spectrogram as sp

    opts = audio_run.sound_options(spec).check()
    emit({"type": "log", "message": "decoding the sound"})
    source = Path(spec["input"])
    track, x = audio_run.load(source)
    g = opts.geometry
    columns = g.frames(x.shape[1])  # the STFT (complex), its dB and the picture's copies: 24 bytes a pixel
    memory.check_fits(f"{source.name}: its spectrogram", g.bins * columns * 24,
                      hint=f"{g.bins}x{columns} at --n-fft {g.n_fft} --hop {g.hop}")
    top = sp.top_db(float(np.abs(x).max()), g)  # as the dream's: the loudest channel's peak
    gray = sp.picture(sp.to_db(sp.stft(audio_run.split_channels(x, opts.stereo)[0], g)), g, track.rate, top)
    ref = write_view(gray, Path(spec["output"]))
    return {"ref": ref, "rate": track.rate, "channels": int(x.shape[0]), "samples": int(x.shape[1]),
            "rows": int(gray.shape[0]), "columns": int(gray.shape[1])}


class _SoundProgress:
    """run_sound's callbacks as events: steps over every chunk, channel and round, a preview of the
    spectrogram being dreamt now and then."""

    def __init__(self, emit: Emit):
        self.emit, self.done, self.total, self.where, self.last = emit, 0, 1, (1, 1), 0.0
        self.t0 = time.perf_counter()

    def start(self, job, setup) -> None:
        self.total = setup.total
        self.emit({"type": "start", "model": job.recipe.model, "layers": list(job.recipe.layers), "done": 0,
                   "total": self.total, "percent": 0.0, "chunks": len(setup.spans), "rate": job.rate,
                   "channels": job.channels, "seconds": round(job.samples / job.rate, 3)})

    def chunk(self, k: int, n: int) -> None:
        self.where = (k + 1, n)

    def step(self, u) -> None:
        if u.tile != u.tiles:
            return
        self.done += 1
        now = time.perf_counter()
        elapsed = now - self.t0
        event = {"type": "progress", "done": self.done, "total": self.total,
                 "percent": round(100.0 * self.done / max(1, self.total), 1), "octave": u.octave,
                 "octaves": u.octaves, "step": u.step, "steps": u.steps, "tile": u.tile, "tiles": u.tiles,
                 "chunk": self.where[0], "chunks": self.where[1], "elapsed_s": round(elapsed, 2),
                 "eta_s": round(elapsed * (self.total - self.done) / self.done, 1)}
        if self.done == 1 or now - self.last >= PREVIEW_EVERY:
            self.last = now
            event["preview"] = jpeg_data_url(u.preview())
        self.emit(event)


def sound(spec: dict, emit: Emit, ctx: Context) -> dict:
    """A sound dream as `zoo dream voice.wav -o dreamt.wav` runs it: the WAV carries its record (so
    `zoo dream --recipe` makes it again, bit for bit on the CPU); the spectrograms before and after are
    kept beside it for the page."""
    from zoo.dream import audio_io, audio_run, pipeline

    opts = audio_run.sound_options(spec).check()
    source, target = Path(spec["input"]), Path(spec["output"])
    audio_io.check_writable(target)
    rec = recipe_of(spec, params=audio_run.sound_params(_params(spec), spec.get("preset")))
    rec = rec.with_(device=pipeline.check_device(rec.device))
    emit({"type": "log", "message": "decoding the sound"})
    decoded = audio_run.load(source)
    progress = _SoundProgress(emit)
    result = audio_run.run_sound(rec, source, target, opts, say=lambda s: emit({"type": "log", "message": s}),
                                 on_start=progress.start, on_chunk=progress.chunk, on_progress=progress.step,
                                 stop=ctx.stop, decoded=decoded, brain=load_brain(rec.model or None))
    if result.interrupted:
        return {"stopped": True, "interrupted": True}  # a sound is written whole: nothing was
    emit({"type": "progress", "done": progress.total, "total": progress.total, "percent": 100.0, "eta_s": 0.0})
    before, after = media.sound_views(target)
    job = result.job
    return {"sound": str(target), "ref": _ref(target), "input_ref": _ref(source),
            "spectrogram_in": write_view(result.pictures[0], before),
            "spectrogram_out": write_view(result.pictures[1], after),
            "recipe": json.loads(job.to_json()), "rate": job.rate, "channels": job.channels,
            "samples": job.samples, "command": f"zoo dream --recipe {target} -o again.wav", "interrupted": False,
            "stopped": False}


def _params(spec: dict) -> dict:
    from zoo.dream.options import PARAMS

    return {o.name: spec.get(o.name) for o in PARAMS}


# --- vectors --------------------------------------------------------------------------------------


def strokes(spec: dict, emit: Emit, ctx: Context) -> dict:
    """A stroke dream as `zoo dream IN -o dream.svg --strokes N [--underlay]` paints it: the SVG carries
    its recipe in <metadata>."""
    from zoo.dream import output, paint, pipeline, run

    target = Path(spec["output"])
    output.check_writable(target, {".svg": "SVG"})
    rec = recipe_of(spec)
    if spec.get("iterations") is None:
        rec = rec.with_(params=rec.params.with_(iterations=paint.STEPS))
    rec = rec.with_(device=pipeline.check_device(rec.device))
    opts = paint.StrokeOptions(**({"count": spec["strokes"]} if spec.get("strokes") else {}),
                               underlay=bool(spec.get("underlay"))).check()
    emit({"type": "log", "message": f"loading {rec.model or 'the default brain'}"})
    prep = run.prepare(rec, brain=load_brain(rec.model or None))
    h, w = prep.start.shape[:2]
    emit({"type": "start", "model": prep.brain.name, "layers": list(prep.recipe.layers), "width": w, "height": h,
          "strokes": opts.count, "done": 0, "total": rec.params.iterations, "percent": 0.0,
          "preview": jpeg_data_url(prep.start)})
    rep = _Reporter(emit)
    done = paint.run_strokes(rec, opts, target, on_progress=rep.step, stop=ctx.stop, prep=prep)
    return {"svg": str(target), "ref": _ref(target), "recipe": json.loads(done.recipe.to_json()),
            "strokes": opts.count, "bytes": len(done.text.encode()), "interrupted": done.interrupted,
            "stopped": done.interrupted, "command": f"zoo dream --recipe {target} -o again.svg"}


def journey(spec: dict, emit: Emit, ctx: Context) -> dict:
    """The journey through the layers as `zoo dream IN -o journey.webp --frames N --zoom Z --layer-path
    A,B,C` makes it; the latest finished frame is the preview, each frame's start an event."""
    from zoo.dream import journey as jr
    from zoo.dream import pipeline, video
    from zoo.dream.options import DREAM

    target = Path(spec["output"])
    v = DREAM.values(spec)
    rec = recipe_of(spec, frames=int(v["frames"]), zoom=float(v["zoom"]))
    rec = rec.with_(device=pipeline.check_device(rec.device))
    fps = float(spec.get("fps") or jr.FPS)
    hold = spec.get("hold")  # None: the journey's own default
    emit({"type": "log", "message": f"loading {rec.model or 'the default brain'}"})
    brain, _ = jr.check(rec, spec["layer_path"], target, load_brain(rec.model or None))
    folder, state = video.frames_folder(target), {"k": 0}

    def latest(k: int) -> str:
        return jpeg_data_url(video.load_png(video.frame_path(folder, k)))

    def on_frame(k: int, n: int, blobs) -> None:
        state["k"] = k
        event = {"type": "frame", "frame": k + 1, "frames": n, "blobs": list(blobs),
                 "percent": round(100.0 * k / n, 1)}
        if k > 0:
            event["preview"] = latest(k - 1)
        emit(event)

    def on_progress(u) -> None:
        if u.tile == u.tiles:
            k, n = state["k"], rec.frames
            emit({"type": "progress", "frame": k + 1, "frames": n, "octave": u.octave, "octaves": u.octaves,
                  "step": u.step, "steps": u.steps, "done": k * u.total + u.done, "total": n * u.total,
                  "percent": round(100.0 * (k + u.done / max(1, u.total)) / n, 1)})

    done = jr.run_journey(rec, spec["layer_path"], target, fps=fps, hold=hold,
                          say=lambda s: emit({"type": "log", "message": s}), on_frame=on_frame,
                          on_progress=on_progress, stop=ctx.stop, brain=brain)
    if not done.interrupted:
        emit({"type": "progress", "frame": rec.frames, "frames": rec.frames, "percent": 100.0,
              "preview": latest(rec.frames - 1)})
    path = ",".join(done.job.path)
    return {"video": str(target), "ref": _ref(target) if target.is_file() else None, "frames": rec.frames,
            "written": done.written, "path": list(done.job.path), "fps": fps,
            "recipe": json.loads(done.job.to_json()), "interrupted": done.interrupted, "stopped": done.interrupted,
            "command": (f"{done.job.recipe.command(str(target))} --layer-path {path} --fps {fps:g} "
                        f"--hold {done.job.hold:g}")}


KINDS = {"spectrogram": spectrogram, "sound": sound, "strokes": strokes, "journey": journey}
