"""Which files are pictures: the one table of image suffixes that every reader and writer uses.

Why one table: the dream's input folders, a clip's frames folder, a training set and the writers
must agree on what counts as an image, and a suffix added here reaches all of them.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGES", "STILL_INPUTS", "STILLS", "WRITERS", "is_image"]

# suffix -> the Pillow format it is written in (GIF: animations only)
WRITERS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
           ".gif": "GIF"}
STILLS = {k: v for k, v in WRITERS.items() if v != "GIF"}  # what a still dream can be written as
IMAGES = frozenset({*WRITERS, ".bmp", ".ppm"})  # every suffix read as a picture
STILL_INPUTS = tuple(sorted(IMAGES - {".gif"}))  # a folder of inputs: a GIF is an animation, not a still


def is_image(path: str | Path, suffixes: frozenset[str] | tuple[str, ...] = IMAGES) -> bool:
    """Whether the file name says picture (the case of the suffix does not matter)."""
    return Path(path).suffix.lower() in suffixes
