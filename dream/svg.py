"""SVG in and out: drawings rasterised at the asked size to dream on, and stroke dreams written as SVG.

In: the file is read whole (it is text, capped at MAX_BYTES), refused if it points outside itself
(an href or url() that is not `#id` or a data: URI, an entity or DOCTYPE), its declared size read
from width/height/viewBox, and rendered by resvg (PyPI `resvg-py`, the `svg` extra) over white.
Out: strokes as `<path>` elements in a viewBox of the dream's size, so it renders the same at any
size, and the recipe (JSON) in `<metadata>`.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from zoo.errors import UserError
from zoo.io import regular_file

SUFFIXES = (".svg", ".svgz")
MAX_BYTES = 32 << 20  # an SVG larger than this (after gunzip) is refused before parsing
NS = "http://www.w3.org/2000/svg"
ZOO_NS = "https://github.com/zoo/zoo#recipe"
UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([a-z]*)\s*$")
_OUTSIDE = re.compile(rb"""(?:href\s*=\s*["']\s*(?!#|data:)[^"'\s]|url\(\s*["']?\s*(?!#|data:)[^)\s"']"""
                      rb"""|@import|<!ENTITY|<!DOCTYPE|<\?xml-stylesheet)""", re.IGNORECASE)


def is_svg(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SUFFIXES


# --- in -------------------------------------------------------------------------------------------


def read_text(path: str | Path) -> str:
    """The SVG's text, checked: size-capped, self-contained, parseable. One line naming the problem."""
    path = regular_file(path)  # a FIFO or a device would block or read without end
    try:
        if path.stat().st_size > MAX_BYTES:
            raise UserError(f"{path}: larger than {MAX_BYTES >> 20} MiB; refusing this SVG")
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not an SVG") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.open(io.BytesIO(data)) as f:
                data = f.read(MAX_BYTES + 1)
        except (OSError, EOFError):
            raise UserError(f"{path}: not a valid gzip-compressed SVG") from None
        if len(data) > MAX_BYTES:
            raise UserError(f"{path}: unpacks to more than {MAX_BYTES >> 20} MiB; refusing this SVG")
    found = _OUTSIDE.search(data)
    if found:
        what = found.group(0).decode("utf-8", "replace")[:40]
        raise UserError(f"{path}: refers outside itself ({what!r}); only #ids and data: URIs are allowed")
    try:
        text = data.decode("utf-8")
        ET.fromstring(text)
    except (UnicodeDecodeError, ET.ParseError) as e:
        raise UserError(f"{path}: not a valid SVG ({type(e).__name__}: {str(e)[:60]})") from None
    return text


def _length(text: str | None) -> float | None:
    m = _LENGTH.match(text or "")
    if not m or m.group(2) not in UNITS:
        return None
    return float(m.group(1)) * UNITS[m.group(2)]


def declared_size(text: str, source: str = "SVG") -> tuple[float, float]:
    """(height, width) the SVG declares, in CSS pixels: width/height, else its viewBox."""
    root = ET.fromstring(text)
    if root.tag not in (f"{{{NS}}}svg", "svg"):
        raise UserError(f"{source}: its root element is not <svg>")
    w, h = _length(root.get("width")), _length(root.get("height"))
    box = [float(v) for v in re.split(r"[\s,]+", root.get("viewBox", "").strip()) if v] if root.get("viewBox") else []
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        if w is None and h is None:
            w, h = box[2], box[3]
        elif w is None:
            w = h * box[2] / box[3]  # type: ignore[operator]
        elif h is None:
            h = w * box[3] / box[2]
    w, h = w or 100.0, h or 100.0  # SVG's default is the whole viewport; 100 keeps the aspect sane
    if not (0 < w < 1e7 and 0 < h < 1e7):
        raise UserError(f"{source}: declares a size of {w:g}x{h:g}, which is not a picture")
    return h, w


def svg_size(path: str | Path) -> tuple[int, int]:
    """(height, width) in whole pixels that the SVG declares (at least 1), nothing rendered."""
    h, w = declared_size(read_text(path), str(path))
    return max(1, round(h)), max(1, round(w))


def rasterise(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """The SVG rendered at `size` (H, W) over white by resvg: HxWx3 float32 0..255."""
    text = read_text(path)
    return render_text(text, size, str(path))


def _sized(text: str) -> str:
    """The document with its declared size in plain pixels on the root when it lacks one (a width
    alone, a percentage, no size at all): resvg wants both; other renderers guess as declared_size does."""
    root = ET.fromstring(text)
    if _length(root.get("width")) is not None and _length(root.get("height")) is not None:
        return text
    h, w = declared_size(text)
    ET.register_namespace("", NS)
    ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
    root.set("width", f"{w:g}")
    root.set("height", f"{h:g}")
    return ET.tostring(root, encoding="unicode")


def render_text(text: str, size: tuple[int, int], source: str = "SVG") -> np.ndarray:
    """SVG text rendered at `size` (H, W) over white by resvg (the `svg` extra)."""
    from PIL import Image

    try:
        import resvg_py
    except ImportError:
        raise UserError(f"{source}: reading SVG needs resvg: pip install 'zoo[svg]'") from None
    h, w = size
    try:
        png = resvg_py.svg_to_bytes(svg_string=_sized(text), width=w, height=h, background="#ffffff")
    except ValueError as e:
        raise UserError(f"{source}: resvg cannot render it ({str(e)[:80]})") from None
    with Image.open(io.BytesIO(bytes(png))) as im:
        rgb = im.convert("RGB")
        if rgb.size != (w, h):  # rounding of the aspect: a pixel at most
            rgb = rgb.resize((w, h), Image.LANCZOS)
        return np.asarray(rgb, dtype=np.float32)


# --- out ------------------------------------------------------------------------------------------


def _hex(rgb: np.ndarray) -> str:
    r, g, b = (int(round(float(v) * 255)) for v in np.clip(rgb, 0.0, 1.0))
    return f"#{r:02x}{g:02x}{b:02x}"


def stroke_paths(points: np.ndarray, widths: np.ndarray, rgba: np.ndarray) -> list[str]:
    """One `<path>` per stroke: a cubic Bézier with round caps, its colour, opacity and width."""
    out = []
    for p, wd, c in zip(points, widths, rgba):
        d = "M{:.2f} {:.2f}C{:.2f} {:.2f} {:.2f} {:.2f} {:.2f} {:.2f}".format(*p.reshape(-1))
        out.append(f'<path d="{d}" stroke="{_hex(c[:3])}" stroke-opacity="{float(c[3]):.3f}" '
                   f'stroke-width="{float(wd):.2f}"/>')
    return out


def strokes_svg(size: tuple[int, int], paths: list[str], background: str, metadata: str) -> str:
    """The whole document: a viewBox of `size` (H, W) units, the background (a colour, or a data: URI
    of an image), the strokes, and `metadata` (the recipe JSON) escaped inside <metadata>."""
    h, w = size
    if background.startswith("data:"):
        under = f'<image width="{w}" height="{h}" preserveAspectRatio="none" href="{background}"/>'
    else:
        under = f'<rect width="{w}" height="{h}" fill="{background}"/>'
    return "\n".join([
        f'<svg xmlns="{NS}" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
        f'<metadata><recipe xmlns="{ZOO_NS}">{escape(metadata)}</recipe></metadata>',
        under,
        '<g fill="none" stroke-linecap="round" stroke-linejoin="round">',
        *paths,
        "</g>",
        "</svg>",
        "",
    ])


def read_metadata(path: str | Path) -> str | None:
    """The recipe JSON a stroke SVG carries (None if it has none); the file is checked as any SVG is."""
    root = ET.fromstring(read_text(path))
    found = root.find(f"{{{NS}}}metadata/{{{ZOO_NS}}}recipe")
    return found.text if found is not None else None


def recipe_json(path: str | Path) -> dict:
    """The parsed metadata of a stroke SVG; one line if it carries none."""
    text = read_metadata(path)
    if text is None:
        raise UserError(f"{path}: carries no zoo recipe (only stroke dreams written by `zoo dream` do)")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise UserError(f"{path}: its recipe is not valid JSON") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: its recipe is not a JSON object")
    return data
