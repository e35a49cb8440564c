"""A layer atlas: the same start dreamt through every dreamable blob, as a contact sheet and a web page.

The guides to the layers that artists made by hand, for any brain. Rendering, the sheet and the
HTML are separate functions; the CLI writes the files.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from zoo.dream import render
from zoo.dream.brain import Brain
from zoo.dream.objectives import blob_l2
from zoo.dream.output import to_uint8
from zoo.dream.pipeline import dream_rgb, plan_for
from zoo.dream.presets import DreamParams

LABEL_HEIGHT = 22


@dataclass(frozen=True)
class Entry:
    blob: str
    file: str  # the blob's own image, relative to the atlas folder
    shape: tuple[int, ...]
    produces: str = ""


def file_name(index: int, blob: str) -> str:
    """A safe, sortable file name for a blob's image ("inception_4c/output" -> 07-inception_4c-output.png)."""
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', blob).strip('-')}.png"


def render_blobs(
    brain: Brain,
    start: np.ndarray,
    blobs: Sequence[str],
    params: DreamParams,
    *,
    seed: int = 0,
    device: str = "cpu",
    on_progress: Callable[[render.Progress], None] | None = None,
    on_step: Callable[[render.Progress], None] | None = None,
) -> Iterator[tuple[str, np.ndarray, render.DreamResult]]:
    """Dream the start through each blob in turn (same seed, same parameters)."""
    for blob in blobs:
        objective = blob_l2(blob)
        plan = plan_for(brain, objective.blobs, params, device)
        rgb, result = dream_rgb(brain, start, objective, params, seed=seed, device=device, plan=plan,
                                on_progress=on_progress, on_step=on_step)
        yield blob, rgb, result
        if result.interrupted:
            return


def contact_sheet(items: Sequence[tuple[str, np.ndarray]], columns: int | None = None, thumb: int | None = None,
                  gap: int = 4) -> np.ndarray:
    """Pictures in a grid, each with its label underneath, on a dark background (RGB uint8).

    Each cell is `thumb` pixels square (default: the largest picture's side, at most 256).
    """
    if not items:
        raise ValueError("an atlas needs at least one image")
    thumb = thumb or min(256, max(max(rgb.shape[:2]) for _, rgb in items))
    columns = columns or min(len(items), max(1, math.ceil(math.sqrt(len(items)))))
    rows = math.ceil(len(items) / columns)
    cell_w, cell_h = thumb + gap, thumb + LABEL_HEIGHT + gap
    sheet = Image.new("RGB", (columns * cell_w + gap, rows * cell_h + gap), (18, 18, 18))
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    for i, (label, rgb) in enumerate(items):
        r, c = divmod(i, columns)
        pic = Image.fromarray(to_uint8(rgb) if rgb.dtype != np.uint8 else rgb, "RGB")
        f = thumb / max(pic.size)
        if f != 1:
            pic = pic.resize((max(1, round(pic.width * f)), max(1, round(pic.height * f))), Image.LANCZOS)
        x0, y0 = gap + c * cell_w, gap + r * cell_h
        sheet.paste(pic, (x0 + (thumb - pic.width) // 2, y0 + (thumb - pic.height) // 2))
        draw.text((x0 + 2, y0 + thumb + 4), _fit(draw, label, font, thumb - 4), fill=(235, 235, 235), font=font)
    return np.asarray(sheet)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """Shorten a label from the left until it fits (the end of a blob name says the most)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength("…" + text, font=font) > width:
        text = text[1:]
    return "…" + text


def html_page(model: str, entries: Sequence[Entry], sheet: str, command: str, note: str = "") -> str:
    """A static page: one figure per blob with its name, shape and what it tends to paint."""
    figs = []
    for e in entries:
        shape = "×".join(map(str, e.shape))
        caption = f"<b>{html.escape(e.blob)}</b> <span>{shape}</span>"
        if e.produces:
            caption += f"<br><i>{html.escape(e.produces)}</i>"
        figs.append(f'<figure><a href="{html.escape(e.file)}"><img src="{html.escape(e.file)}" '
                    f'alt="{html.escape(e.blob)}" loading="lazy"></a><figcaption>{caption}</figcaption></figure>')
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>Layer atlas: {html.escape(model)}</title>\n<style>"
        "body{background:#121212;color:#ddd;font:14px system-ui,sans-serif;margin:2em}"
        "main{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:1em}"
        "figure{margin:0}img{width:100%;height:auto;display:block}span{color:#888}code{color:#9cf}"
        "</style></head><body>\n"
        f"<h1>Layer atlas: {html.escape(model)}</h1>\n"
        f"<p>Each picture is the same start dreamt on one blob. Made with <code>{html.escape(command)}</code>."
        f" {html.escape(note)} Contact sheet: <a href=\"{html.escape(sheet)}\">{html.escape(sheet)}</a>.</p>\n"
        "<main>\n" + "\n".join(figs) + "\n</main></body></html>\n"
    )
