"""Writing results: checked up front, written to a temp file beside the target, then renamed.

A dream can run for an hour; the output path is checked before it starts, and a failure while
writing leaves no partial file behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from zoo import formats
from zoo.errors import UserError
from zoo.io import atomic_path

__all__ = ["FORMATS", "STILLS", "atomic_path", "check_writable", "to_uint8", "write_image"]

FORMATS, STILLS = formats.WRITERS, formats.STILLS
DESCRIPTION = 0x010E  # EXIF/TIFF ImageDescription: where JPEG, WebP and TIFF carry the recipe JSON
SOFTWARE = 0x0131


def check_writable(path: str | Path, formats: dict[str, str] = FORMATS) -> Path:
    """Fail early, with one line, if `path` cannot be written or has an unknown extension."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: cannot write, it is a folder")
    if path.suffix.lower() not in formats:
        raise UserError(f"{path}: unsupported output type; use one of {', '.join(formats)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{path}: cannot write, folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UserError(f"{path}: cannot write, permission denied")
    return path


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB 0..255 to uint8, rounded half to even, clipped (one float temporary)."""
    tmp = np.rint(rgb)
    np.clip(tmp, 0, 255, out=tmp)
    return tmp.astype(np.uint8)


def write_image(path: str | Path, rgb: np.ndarray, info: object = None, *, quality: int = 92) -> Path:
    """Write an RGB image atomically, carrying its recipe in every format.

    `info` is a Recipe (or, from older callers, a PngInfo, PNG only). PNG: text chunks; JPEG and
    WebP: the EXIF ImageDescription (Pillow's own EXIF writer); TIFF: 16 bits a channel, the recipe
    in the ImageDescription tag (written with tifffile, as Pillow has no 16-bit RGB).
    """
    from zoo.dream.recipe import Recipe, png_info

    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unsupported output type; use one of {', '.join(FORMATS)}")
    recipe = info if isinstance(info, Recipe) else None
    try:
        with atomic_path(path) as tmp:
            if fmt == "TIFF":
                _write_tiff16(tmp, rgb, recipe)
                return path
            im = Image.fromarray(to_uint8(rgb) if rgb.dtype != np.uint8 else rgb, "RGB")
            kwargs: dict[str, object] = {}
            if fmt == "PNG" and info is not None:
                kwargs["pnginfo"] = png_info(recipe) if recipe is not None else info
            if fmt in ("JPEG", "WEBP"):
                kwargs["quality"] = quality
                if recipe is not None:
                    exif = Image.Exif()
                    exif[DESCRIPTION] = recipe.to_json()
                    exif[SOFTWARE] = f"zoo {recipe.version}"
                    kwargs["exif"] = exif
            im.save(tmp, format=fmt, **kwargs)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
    return path


def _write_tiff16(tmp: Path, rgb: np.ndarray, recipe: object) -> None:
    try:
        import tifffile
    except ImportError:
        raise UserError("16-bit TIFF output needs tifffile: pip install 'zoo[tiff]'") from None
    if rgb.dtype == np.uint8:
        data = rgb.astype(np.uint16) * 257
    else:
        data = np.clip(np.rint(rgb.astype(np.float64) * 257.0), 0, 65535).astype(np.uint16)
    desc = recipe.to_json() if recipe is not None else None  # type: ignore[attr-defined]
    tifffile.imwrite(tmp, data, photometric="rgb", description=desc, software="zoo", metadata=None)
