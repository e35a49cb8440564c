"""Writing results: checked up front, written to a temp file beside the target, then renamed.

A dream can run for an hour; the output path is checked before it starts, and a failure while
writing leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from zoo.errors import UserError

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF"}


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it into place only if the block succeeds."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float RGB 0..255 to uint8, rounded half to even, clipped (one float temporary)."""
    tmp = np.rint(rgb)
    np.clip(tmp, 0, 255, out=tmp)
    return tmp.astype(np.uint8)


def write_image(path: str | Path, rgb: np.ndarray, info: PngImagePlugin.PngInfo | None = None) -> Path:
    """Write an RGB image atomically; PNGs carry `info` (the recipe)."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unsupported output type; use one of {', '.join(FORMATS)}")
    im = Image.fromarray(to_uint8(rgb) if rgb.dtype != np.uint8 else rgb, "RGB")
    kwargs: dict[str, object] = {}
    if fmt == "PNG" and info is not None:
        kwargs["pnginfo"] = info
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = 92
    try:
        with atomic_path(path) as tmp:
            im.save(tmp, format=fmt, **kwargs)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror or e})") from None
    return path
