"""Memory checked before decoding: what a decoder is about to allocate, from the header alone,
against the memory that is free, in one place for every reader (images, animations, video, audio).

A 420 KB PNG can declare 12000x12000 pixels (2.3 GB once decoded to float) and a 12 KB mp4 two
billion frames, so the size a file declares is hostile until this says it fits. `check_fits(what,
nbytes)` is the one test; `available_bytes()` is the one reading of free memory: the kernel's
MemAvailable, the cgroup's limit when the process runs in one, and $ZOO_MEMORY_LIMIT (bytes, or
with a K/M/G suffix) when the user caps zoo on a shared machine, whichever is least.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from zoo.errors import UserError
from zoo.io import regular_file

MAX_PIXELS = 20000 * 20000  # the largest picture any reader accepts (print sizes are the point)
MAX_FRAMES = 1_000_000  # frames a clip may select: 9 hours at 30 fps; a bigger count is a hostile header
DECODE_BYTES_PER_PIXEL = 8  # a decoded frame in its own mode (up to 4 bytes) and its RGB copy
SHARE = 0.9  # of the free memory one decode may take (the rest is the program itself)


class NotEnoughMemory(UserError):
    """What a file declares would not fit in the memory that is free."""


def parse_bytes(text: str) -> int | None:
    """"1500000", "512M", "2G" -> bytes; None when it is not such a number."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not m:
        return None
    return int(float(m.group(1)) * 1024 ** " KMGT".index(m.group(2).upper() or " "))


def _meminfo(path: str = "/proc/meminfo") -> int | None:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup(root: str = "/sys/fs/cgroup") -> int | None:
    """What the cgroup (v2) still allows: memory.max less memory.current; None when unlimited."""
    try:
        limit = Path(root, "memory.max").read_text().strip()
        used = int(Path(root, "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" or not limit.isdigit() else max(0, int(limit) - used)


def available_bytes() -> int:
    """The memory a decode may count on now (see the module's docstring); 1 TiB when unknown."""
    found = [v for v in (_meminfo(), _cgroup(), parse_bytes(os.environ.get("ZOO_MEMORY_LIMIT", "") or "-"))
             if v is not None]
    return min(found) if found else 1 << 40


def fits(need: int, available: int, share: float = SHARE) -> bool:
    """Whether `need` bytes fit in `share` of `available` (pure: the rule every check applies)."""
    return 0 <= need <= available * share


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_fits(what: str, nbytes: int, available: int | None = None, hint: str = "") -> None:
    """Refuse in one line, naming `what`, a decode of `nbytes` that does not fit in free memory.
    Call it with the size computed from a header, before anything is allocated."""
    avail = available_bytes() if available is None else available
    if not fits(nbytes, avail):
        raise NotEnoughMemory(f"{what}: needs about {_gib(nbytes)} of memory, {_gib(avail)} is free"
                              + (f"; {hint}" if hint else ""))


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares before any pixel is decoded."""

    width: int
    height: int
    frames: int  # 1 for a still
    format: str
    turned: bool = False  # EXIF orientation 5-8: shown a quarter turned, so height and width swap

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright(self) -> tuple[int, int]:
        """(height, width) as the picture is shown, after its EXIF orientation."""
        return (self.width, self.height) if self.turned else (self.height, self.width)


def check_has_pixels(path: str | Path, im) -> None:
    """Refuse an opened PIL image that declares no pixels: PIL's HDF5 stub opens any file that starts
    with HDF5's magic as 0x0 (a width of 0 then divides sizes by zero)."""
    w, h = im.size
    if w < 1 or h < 1:
        raise UserError(f"{path}: declares {w}x{h} pixels ({im.format or 'unknown'}), not a picture")


def image_header(path: str | Path) -> ImageHeader:
    """Size, frame count, format and EXIF quarter turn from the header (PIL's open reads no pixel
    data); one line if the file is no image or declares more than MAX_PIXELS. The one header reader:
    dream starts, uploads and decode checks all ask here."""
    import warnings

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL's own bomb check then sits just above ours
    path = regular_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                check_has_pixels(path, im)
                if w * h > MAX_PIXELS:
                    raise UserError(f"{path}: declares {w}x{h} pixels (at most 20000x20000 are read)")
                frames = int(getattr(im, "n_frames", 1) or 1)  # GIF: counted by skipping blocks, not decoding
                turned = _quarter_turned(im)
                return ImageHeader(w, h, frames, im.format or "", turned)
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - refuse_image gives the one-line reason or re-raises
        refuse_image(path, e)
    raise AssertionError


# What PIL raises on a file that is no picture, a broken one, or one declaring a bomb's size: every
# caller that opens a user's file catches these (a bomb escaped `is_clip_recipe` as a traceback).
DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, MemoryError, struct.error,
                 Image.DecompressionBombError)  # struct.error: EXIF with a field cut short


def _quarter_turned(im) -> bool:
    """Whether EXIF orientation (5-8) shows the picture a quarter turned, read without decoding: a PNG's
    getexif() loads every pixel to look for an eXIf chunk after them, so only one before them counts."""
    if im.format == "PNG":
        raw = im.info.get("exif")
        if not raw:
            return False
        exif = Image.Exif()
        exif.load(raw)
    else:
        exif = im.getexif()
    return exif.get(0x0112, 1) in (5, 6, 7, 8)


def refuse_image(path: str | Path, e: BaseException) -> None:
    """Raise the one-line UserError for what a decoder raised on `path` (a bug re-raises as itself)."""
    if isinstance(e, FileNotFoundError):
        raise UserError(f"{path}: no such file") from None
    if isinstance(e, IsADirectoryError):
        raise UserError(f"{path}: is a folder, not an image") from None
    if isinstance(e, Image.DecompressionBombError):
        raise UserError(f"{path}: declares more than {MAX_PIXELS // 10**6} million pixels "
                        "(at most 20000x20000 are read)") from None
    if isinstance(e, DECODE_ERRORS):
        raise UserError(f"{path}: cannot decode as an image ({type(e).__name__})") from None
    raise e


def check_image(path: str | Path, per_pixel: int = DECODE_BYTES_PER_PIXEL, max_pixels: int = MAX_PIXELS,
                available: int | None = None) -> ImageHeader:
    """The header of an image, after proving that decoding one frame of it (`per_pixel` bytes a
    pixel) fits in free memory and that it has at most `max_pixels` (a caller's own cap)."""
    head = image_header(path)
    if head.pixels > max_pixels:
        raise UserError(f"{path}: {head.width}x{head.height} is larger than the {max_pixels // 10**6} million "
                        "pixels read here")
    check_fits(f"{path}: decoding {head.width}x{head.height}", head.pixels * per_pixel, available)
    return head
