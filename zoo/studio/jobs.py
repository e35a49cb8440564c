"""The one adapter between the studio and the library: each job kind is a function run in the worker.

Every job calls the functions the CLI calls (zoo.dream.run for dreams and atlases, zoo.cache,
zoo.train, zoo.registry), with the library's own progress callbacks turned into events and the
library's own stop flag (a threading.Event the worker sets when the user presses Stop). Nothing
here renders, trains or converts on its own. A job function gets its spec (already checked by the
server), an `emit(event)` and a `Context`, and returns a result dict.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Emit = Callable[[dict], None]
PREVIEW_SIDE = 512  # previews are JPEGs fitted in this square
PREVIEW_EVERY = 0.1  # seconds between previews (the first step and each octave's last always send one)
PROGRESS_EVERY = 0.25  # seconds between progress events inside a step (tiles of a big image)


@dataclass
class Context:
    """What a running job can ask the worker: the Stop flag (set when the user presses Stop) and where to write."""

    stop: threading.Event
    job_dir: Path

    def stopped(self) -> bool:
        return self.stop.is_set()


def jpeg_data_url(rgb, side: int = PREVIEW_SIDE) -> str:
    """A small JPEG of an RGB float/uint8 image as a data: URL (what the browser shows as the preview)."""
    import numpy as np
    from PIL import Image

    arr = np.clip(np.rint(rgb), 0, 255).astype(np.uint8) if rgb.dtype != np.uint8 else rgb
    im = Image.fromarray(arr, "RGB")
    f = side / max(im.size)
    if f < 1:
        im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class _Reporter:
    """zoo.dream.run's callbacks as studio events: progress (counts, ETA, where in the dream) and,
    after a step, a JPEG preview of exactly what it made (throttled, but never the first step or an
    octave's last)."""

    def __init__(self, emit: Emit):
        self.emit, self.last_preview, self.last_progress, self.latest = emit, 0.0, 0.0, None

    @staticmethod
    def fields(u) -> dict:
        return {"done": u.done, "total": u.total, "percent": u.percent, "elapsed_s": u.elapsed_s, "eta_s": u.eta_s,
                "octave": u.octave, "octaves": u.octaves, "step": u.step, "steps": u.steps, "tile": u.tile,
                "tiles": u.tiles, "blob": u.blob, "index": u.index, "blobs": u.blobs}

    def progress(self, u) -> None:  # a step (or tile) begins its gradient
        self.latest = u
        now = time.perf_counter()
        if u.tiles > 1 and now - self.last_progress >= PROGRESS_EVERY:
            self.last_progress = now
            self.emit({"type": "progress", **self.fields(u)})

    def step(self, u) -> None:  # a step was made
        self.latest = u
        now = time.perf_counter()
        event = {"type": "progress", **self.fields(u)}
        if u.done <= 1 or u.step == u.steps or now - self.last_preview >= PREVIEW_EVERY:
            self.last_preview = now
            event["preview"] = jpeg_data_url(u.preview())
        self.last_progress = now
        self.emit(event)


def _ref(path: Path) -> str | None:
    from zoo.studio.paths import ref_of

    try:
        return ref_of(path)
    except ValueError:
        return None


_BRAIN: dict[str, tuple[tuple, Any]] = {}  # the last brain the worker loaded, reused while its files are unchanged


def load_brain(name: str | None):
    """dream.brain.load_brain, kept warm between jobs: the second dream on a brain starts at once."""
    from zoo import api
    from zoo.dream.brain import load_brain as load

    if not name:
        return load(None)
    card, paths = api.resolve(name)
    stamp = tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths.values()))
    hit = _BRAIN.get(card.name)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    _BRAIN.clear()  # one brain in memory at a time
    brain = load(card.name)
    _BRAIN[card.name] = (stamp, brain)
    return brain


def warm(model: str | None) -> None:
    """Run at worker start, before any job: import torch and the dream library, load the brain the
    studio dreamt with last (or is about to) and run one tiny step, so that pressing Dream shows its
    first dreamt preview at once instead of after imports, a brain build and the first kernel setup."""
    import os

    from zoo import cache
    from zoo.dream import run
    from zoo.registry import get_card

    if not model:
        return
    with contextlib.suppress(Exception), open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), \
            contextlib.redirect_stderr(quiet):  # warming is an optimisation; a real job reports real errors
        card = get_card(model)
        if not (card.builtin or cache.is_cached(card)):
            return  # never a download the user did not ask for
        brain = load_brain(model)
        rec = run.new_recipe(model=brain.name, init="noise", size="64x64", params={"octaves": 1, "iterations": 1})
        run.run(run.prepare(rec, brain=brain), None)


# --- dream ----------------------------------------------------------------------------------------


def recipe_of(spec: dict, **over):
    """The Recipe a Dream form describes, built as `zoo dream` builds it from its options (`over`: arguments
    of run.new_recipe a job sets itself, such as a sound's parameters or a journey's frames)."""
    from zoo.dream import run

    params = {k: spec.get(k) for k in ("octaves", "octave_scale", "iterations", "step", "jitter", "tile")}
    given = dict(model=spec.get("model"), layers=spec.get("layers") or (), weights=spec.get("weights") or (),
                 preset=spec.get("preset") or None, params=params, init=spec.get("init") or "image",
                 input_path=spec.get("input"), guide_path=spec.get("guide"), size=spec.get("size") or None,
                 seed=int(spec.get("seed") or 0), device=spec.get("device") or "cpu")
    return run.new_recipe(**{**given, **over})


def dream(spec: dict, emit: Emit, ctx: Context) -> dict:
    """One still dream, as `zoo dream` runs it (zoo.dream.run): the result PNG carries the recipe."""
    from zoo.dream import output, pipeline, run

    rec = recipe_of(spec)
    rec = rec.with_(device=pipeline.check_device(rec.device))
    target = Path(spec["output"])
    output.check_writable(target)
    emit({"type": "log", "message": f"loading {rec.model or 'the default brain'}"})
    prep = run.prepare(rec, brain=load_brain(rec.model or None))
    for note in prep.notes:
        emit({"type": "log", "message": note})
    h, w = prep.start.shape[:2]
    emit({"type": "start", "model": prep.brain.name, "layers": list(prep.recipe.layers), "width": w, "height": h,
          "octaves": prep.octaves, "steps": prep.recipe.params.iterations, "done": 0, "total": prep.total,
          "percent": 0.0, "preview": jpeg_data_url(prep.start)})
    rep = _Reporter(emit)
    result = run.run(prep, target, on_progress=rep.progress, on_step=rep.step, stop=ctx.stop)
    last = rep.fields(rep.latest) if rep.latest is not None else {}
    done = prep.total if not result.interrupted else last.get("done", 0)
    emit({"type": "progress", **last, "done": done, "total": prep.total,
          "percent": round(100.0 * done / max(1, prep.total), 1), "eta_s": 0.0 if not result.interrupted else None,
          "preview": jpeg_data_url(result.image)})
    rec = result.recipe
    return {"image": str(target), "ref": _ref(target), "recipe": json.loads(rec.to_json()),
            "command": rec.command(str(target)), "interrupted": result.interrupted, "stopped": result.interrupted}


# --- atlas ----------------------------------------------------------------------------------------


def atlas(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo atlas` (zoo.dream.run.dream_atlas) into a studio folder, plus atlas.json, the studio's index."""
    from zoo.dream import output, pipeline, run
    from zoo.dream.presets import DreamParams

    folder = Path(spec["output"])
    size, start, seed = int(spec.get("size", 128)), spec.get("start") or "noise", int(spec.get("seed", 0))
    params = DreamParams(octaves=int(spec.get("octaves", 2)), iterations=int(spec.get("iterations", 5)),
                         step=float(spec.get("step", 1.5)))
    brain = load_brain(spec["model"])
    rep = _Reporter(emit)

    def on_blob(entry, i: int, n: int) -> None:
        emit({"type": "blob", "blob": entry.blob, "file": entry.file, "index": i, "blobs": n})

    result = run.dream_atlas(spec["model"], folder, blobs=spec.get("blobs") or (), start=start, size=size,
                             params=params, seed=seed, device=pipeline.check_device(spec.get("device") or "cpu"),
                             on_progress=rep.progress, on_step=rep.step, on_blob=on_blob, stop=ctx.stop,
                             brain=brain)
    model = brain.name
    command = f"zoo atlas --model {model} --start {start} --size {size} --seed {seed}"
    index = {"model": model, "command": command, "size": size, "start": start,
             "entries": [{"blob": e.blob, "file": e.file, "shape": list(e.shape), "produces": e.produces}
                         for e in result.entries]}
    with output.atomic_path(folder / "atlas.json") as tmp:
        tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    return {"folder": str(folder), "entries": len(result.entries), "stopped": not result.complete}


def channels(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo atlas --channels BLOB` for one blob (zoo.dream.channels.render, into the same cache): each
    picture is a `channel` event as soon as it is written; Stop keeps the finished ones, and the next
    job for the blob starts where this one stopped."""
    from zoo.dream import channels as ch
    from zoo.dream import pipeline
    from zoo.registry import zoo_home

    brain = load_brain(spec["model"])
    blob = ch.blobs_for(brain, [spec["blob"]])[0]
    wanted = list(spec.get("channels") or range(brain.channels[blob]))
    settings, size, seed = ch.SETTINGS.with_(steps=spec.get("iterations")), int(spec.get("size", 128)), int(
        spec.get("seed", 0))
    root = zoo_home() / "atlas"
    where = ch.folder(root, brain, blob, size, settings, seed)
    batch = int(spec.get("batch") or ch.BATCH)
    have = {"done": sum(ch.picture(where, c).is_file() for c in wanted)}

    def on_step(step: int, steps: int) -> None:
        if ctx.stopped():
            raise KeyboardInterrupt  # the loop keeps what it made; render then stops before writing
        running = min(batch, len(wanted) - have["done"])
        emit({"type": "progress", "done": have["done"], "total": len(wanted), "step": step, "steps": steps,
              "percent": round(100.0 * (have["done"] + running * step / steps) / max(1, len(wanted)), 1)})

    def on_done(d) -> None:
        have["done"] += 1
        emit({"type": "channel", "blob": blob, "channel": d.channel, "ref": d.path.relative_to(root).as_posix(),
              "done": have["done"], "total": len(wanted)})

    emit({"type": "start", "done": have["done"], "total": len(wanted), "percent": 0.0})
    try:
        ch.render(brain, blob, root, size=size, settings=settings, seed=seed, batch=batch,
                  device=pipeline.check_device(spec.get("device") or "cpu"), channels=wanted, on_done=on_done,
                  on_step=on_step)
    except KeyboardInterrupt:
        return {"blob": blob, "pictures": have["done"], "total": len(wanted), "stopped": True}
    emit({"type": "progress", "done": len(wanted), "total": len(wanted), "percent": 100.0})
    return {"blob": blob, "pictures": have["done"], "total": len(wanted), "stopped": False}


# --- brains ---------------------------------------------------------------------------------------


def fetch(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo fetch NAME`: checksummed download (or build), then the ONNX; progress is the library's own
    download events (bytes of each file), the lines it says as log messages."""
    from zoo import cache, events
    from zoo.registry import get_card

    card = get_card(spec["model"])
    total = sum(int(getattr(f, "size", 0) or 0) for f in card.files.values()) or None
    got: dict[str, int] = {}

    def on_event(e: events.Event) -> None:
        if e.task == "note":
            emit({"type": "log", "message": e.text})
        elif e.task == "download":
            got[e.key] = e.done
            done = sum(got.values())
            emit({"type": "progress", "bytes": done, "total_bytes": total, "file": e.key,
                  "percent": round(min(100.0, 100.0 * done / total), 1) if total else None})

    with events.listening(on_event):
        paths = cache.ensure_model(card)
        cache.ensure_onnx(card, paths)
    emit({"type": "progress", "percent": 100.0})
    return {"model": card.name, "cached": True}


# --- training -------------------------------------------------------------------------------------


def _read_log(csv_path: Path) -> list[dict]:
    import csv

    if not csv_path.is_file():
        return []
    with open(csv_path, newline="") as f:
        return [{k: float(v) for k, v in r.items() if v not in ("", None)} for r in csv.DictReader(f)]


def train(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo train` (fresh or --resume) into a studio run folder; with a name, exported at the end."""
    from dataclasses import fields

    from zoo import events
    from zoo.train.config import TrainConfig
    from zoo.train.loop import start_config
    from zoo.train.loop import train as run_train

    run_dir = Path(spec["out"])
    given = {k: v for k, v in spec.items() if v is not None and k in {f.name for f in fields(TrainConfig)}}
    cfg = TrainConfig(**given)
    cfg, state = start_config(cfg, given, bool(spec.get("resume")))
    rows = _read_log(run_dir / "log.csv") if state is not None else []  # a resumed run's earlier rows
    total = cfg.max_iter

    def on_event(e: events.Event) -> None:  # the loop's own events: its log rows and checkpoint previews
        if e.task == "note":
            emit({"type": "log", "message": e.text})
        elif e.task == "record" and e.data and "row" in e.data:
            rows[:] = [r for r in rows if r.get("iter", 0) < e.done] + [dict(e.data["row"])]  # type: ignore[arg-type]
            emit({"type": "metrics", "rows": rows, "done": e.done, "total": total,
                  "percent": round(100.0 * e.done / total, 1)})
        elif e.task == "record" and e.data and "preview" in e.data:
            name = Path(str(e.data["preview"])).name
            emit({"type": "checkpoint", "image": f"previews/{name}", "iter": e.done})

    # Stop: checkpoint, then return
    result = run_train(cfg, resume_state=state, show=True, stop=ctx.stop, on_event=on_event)
    out: dict[str, Any] = {"run": run_dir.name, "stopped": result.stopped, "iters": result.iters,
                           "val_top1": result.val_top1, "images_per_s": result.images_per_s}
    if spec.get("name") and not result.stopped:
        out["exported"] = export({"run": str(run_dir), "name": spec["name"]}, emit, ctx)["model"]
    return out


def export(spec: dict, emit: Emit, ctx: Context) -> dict:
    """`zoo export RUN --name NAME`: the run's brain into the zoo (it shows in the brain list at once)."""
    from zoo.train.export import export_run

    ex = export_run(Path(spec["run"]), spec["name"])
    emit({"type": "log", "message": f"exported {ex.name}: {ex.prototxt}, {ex.caffemodel}, {ex.onnx}"})
    return {"model": ex.name, "folder": str(ex.folder)}


def _media(kind: str) -> Callable[[dict, Emit, Context], dict]:
    """A job of zoo.studio.media_jobs (sounds, strokes, journeys), imported when one runs."""

    def job(spec: dict, emit: Emit, ctx: Context) -> dict:
        from zoo.studio import media_jobs

        return media_jobs.KINDS[kind](spec, emit, ctx)

    return job


KINDS: dict[str, Callable[[dict, Emit, Context], dict]] = {
    "dream": dream, "atlas": atlas, "channels": channels, "fetch": fetch, "train": train, "export": export,
    **{k: _media(k) for k in ("spectrogram", "sound", "strokes", "journey")},
}
