"""Every neuron's picture: each channel of a blob rendered from noise with the legible loop, many
channels per forward pass (one batch row per channel), cached per brain and weights under
$ZOO_HOME/atlas so each picture is made once, and a page to browse them.

A local Microscope: what OpenAI's shows for a few fixed models, for any brain of the zoo. A run
that is killed keeps every finished batch (each PNG is written atomically) and resumes there.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from zoo.dream import channel_files, output, robust
from zoo.dream.brain import Brain
from zoo.dream.channel_files import SETTINGS, picture, safe, settings_key
from zoo.dream.objectives import channel_per_row
from zoo.dream.presets import Legible

from zoo import memory

BATCH = 16  # channels per forward pass: rows are cheap next to the per-pass overhead on a CPU


@dataclass(frozen=True)
class Done:
    """One channel's picture is on disk (i of n channels of this blob)."""

    blob: str
    channel: int
    path: Path
    index: int
    total: int


__all__ = ["BATCH", "SETTINGS", "Done", "blobs_for", "folder", "page", "picture", "render", "safe", "sheet",
           "write_pages"]


def folder(cache: Path, brain: Brain, blob: str, size: int, settings: Legible, seed: int) -> Path:
    """Where a blob's channel pictures live: per brain and weights, blob, and what made them."""
    key = settings_key(size, settings.steps, settings.param, settings.transforms, seed)
    if settings.param == "fft" and settings.decay not in (None, 1.0):  # the atlas's own decay (1) adds nothing
        key += f"-d{settings.decay:g}"
    return channel_files.folder(cache, brain.name, brain.weights_sha256, blob, key)


def render(brain: Brain, blob: str, cache: Path, *, size: int = 128, settings: Legible = SETTINGS, seed: int = 0,
           batch: int = BATCH, device: str = "cpu", channels: Sequence[int] | None = None,
           on_done: Callable[[Done], None] | None = None,
           on_step: Callable[[int, int], None] | None = None) -> Path:
    """Render every channel of `blob` not yet cached, `batch` at a time; returns the folder."""
    where = folder(cache, brain, blob, size, settings, seed)
    where.mkdir(parents=True, exist_ok=True)
    chans = list(range(brain.channels[blob])) if channels is None else list(channels)
    if settings.colour is None:  # the brain's training colours (ImageNet's for ImageNet brains)
        colour, source = robust.colour_for(brain)
        settings = settings.with_(colour=tuple(tuple(float(v) for v in row) for row in colour), colour_from=source)
    _write_settings(where, brain, blob, size, settings, seed)
    todo = [c for c in chans if not picture(where, c).exists()]
    done = len(chans) - len(todo)
    if todo and device == "cpu":
        check_batch_fits(brain, blob, size, batch, rows=min(batch, len(todo)))
    for k in range(0, len(todo), batch):
        group = todo[k:k + batch]
        rgb = _batch(brain, blob, group, size, settings, seed + group[0], device, on_step)
        for c, pic in zip(group, rgb):
            output.write_image(picture(where, c), pic)
            done += 1
            if on_done is not None:
                on_done(Done(blob, c, picture(where, c), done, len(chans)))
    return where


def check_batch_fits(brain: Brain, blob: str, size: int, batch: int, rows: int | None = None,
                     available: int | None = None) -> None:
    """Refuse in one line, before the first pass, a batch whose activations do not fit in free memory
    (each row holds a whole net's activations and their gradients: 32 rows of block7 at 128 px peak
    near 1.3 GB). Shrinking it silently would change the pictures: a channel's seed and diversity
    come from its batch."""
    from zoo.dream.pipeline import ACTIVATION_FACTOR, activation_per_pixel

    rows = batch if rows is None else rows  # a blob with fewer channels than --batch runs them all at once
    row = int(activation_per_pixel(brain, [blob], size) * ACTIVATION_FACTOR * size * size)
    avail = memory.available_bytes() if available is None else available
    if memory.fits(rows * row, avail):
        return
    room = int(avail * memory.SHARE) // max(row, 1)
    hint = f"at most {room} fit: try --batch {room}" if room >= 1 else "try a smaller --size"
    memory.check_fits(f"--batch {batch}: {rows} channels of {blob} a pass at {size} px", rows * row, avail, hint)


def _batch(brain: Brain, blob: str, group: Sequence[int], size: int, settings: Legible, seed: int, device: str,
           on_step: Callable[[int, int], None] | None) -> np.ndarray:
    objective = channel_per_row(blob, group)
    net = brain.net_for([blob], device)
    step = (lambda p: on_step(p.step, p.steps)) if on_step is not None else None
    rgb, result = robust.dream(net, objective, brain.preprocess, (size, size), settings.with_(diversity=len(group)),
                               seed=seed, device=device, on_step=step)
    if result.interrupted:
        raise KeyboardInterrupt
    return rgb


def _write_settings(where: Path, brain: Brain, blob: str, size: int, settings: Legible, seed: int) -> None:
    """What made the pictures, beside them (a channel is rendered in a batch, so it has no recipe)."""
    info = {"model": brain.name, "weights_sha256": brain.weights_sha256, "blob": blob, "size": size, "seed": seed,
            "legible": settings.to_dict(), "note": "rendered BATCH channels per pass, one batch row per channel"}
    path = where / "atlas.json"
    if not path.exists():
        with output.atomic_path(path) as tmp:
            tmp.write_text(json.dumps(info, indent=1), encoding="utf-8")


def page(model: str, blob: str, where: Path, count: int, command: str, prefix: str = "") -> str:
    """A browsable page of a blob's channels: a grid of pictures, each with its number and the
    command that dreams with that channel."""
    figs = []
    for c in range(count):
        src = html.escape(f"{prefix}{picture(where, c).name}")
        layer = html.escape(f"{blob}:{c}")
        figs.append(f'<figure id="ch{c}"><a href="{src}"><img src="{src}" alt="{layer}" loading="lazy"></a>'
                    f'<figcaption>{c} <code>--layer {layer}</code></figcaption></figure>')
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(model)} {html.escape(blob)}: every channel</title>\n<style>"
            "body{background:#121212;color:#ddd;font:13px system-ui,sans-serif;margin:2em}"
            "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:.6em}"
            "figure{margin:0}img{width:100%;height:auto;display:block;image-rendering:auto}code{color:#9cf}"
            "</style></head><body>\n"
            f"<h1>{html.escape(model)} · {html.escape(blob)} · {count} channels</h1>\n"
            f"<p>Each picture is grown from noise to drive one channel (legible look). Made with "
            f"<code>{html.escape(command)}</code>.</p>\n<main>\n" + "\n".join(figs) + "\n</main></body></html>\n")


def blobs_for(brain: Brain, names: Sequence[str]) -> list[str]:
    """`all` is every dreamable blob; other names are checked against the brain (one line if unknown)."""
    from zoo.dream.objectives import parse_target

    if list(names) == ["all"]:
        return list(brain.dreamable)
    for name in names:
        brain.resolve(parse_target(name))
    return list(names)


def write_pages(brain: Brain, blobs: Sequence[str], out: Path, cache: Path, *, size: int = 128,
                settings: Legible = SETTINGS, seed: int = 0, batch: int = BATCH, device: str = "cpu",
                on_done: Callable[[Done], None] | None = None,
                on_step: Callable[[int, int], None] | None = None) -> list[Path]:
    """Render (or find cached) every channel of each blob and write, in `out`, one page per blob with
    its pictures beside it; returns the pages."""
    import shutil

    out.mkdir(parents=True, exist_ok=True)
    pages = []
    for blob in blobs:
        where = render(brain, blob, cache, size=size, settings=settings, seed=seed, batch=batch, device=device,
                       on_done=on_done, on_step=on_step)
        pics = out / f"channels-{safe(blob)}"
        pics.mkdir(exist_ok=True)
        count = brain.channels[blob]
        for c in range(count):
            if not picture(pics, c).exists():
                shutil.copyfile(picture(where, c), picture(pics, c))
        sheet(pics, count, out / f"channels-{safe(blob)}.png")
        command = f"zoo atlas --model {brain.name} --channels {blob} --size {size} --seed {seed}"
        path = out / f"channels-{safe(blob)}.html"
        with output.atomic_path(path) as tmp:
            tmp.write_text(page(brain.name, blob, pics, count, command, prefix=f"{pics.name}/"), encoding="utf-8")
        pages.append(path)
    return pages


def sheet(pics: Path, count: int, target: Path, columns: int | None = None) -> None:
    """Every channel's picture in one labelled grid (for a README or a print)."""
    from PIL import Image
    from zoo.dream.atlas import contact_sheet

    items = []
    for c in range(count):
        with Image.open(picture(pics, c)) as im:
            items.append((str(c), np.asarray(im.convert("RGB"))))
    output.write_image(target, contact_sheet(items, columns or min(count, 10), thumb=items[0][1].shape[0]))
