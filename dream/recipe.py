"""The full recipe of a dream, carried in its PNG's text chunks and read back to reproduce it.

One JSON text chunk (`zoo:recipe`) holds everything that decides the pixels; `Software` and
`Description` are for people and other tools.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError
from zoo.dream.presets import DreamParams

import zoo
from zoo.errors import UserError
from zoo.io import file_digest, regular_file

KEY = "zoo:recipe"
FORMAT = 1


@dataclass(frozen=True)
class Recipe:
    """What made an image: brain, targets, start, parameters, seed and versions."""

    model: str
    weights_sha256: str
    layers: tuple[str, ...]
    params: DreamParams
    seed: int = 0
    weights: tuple[float, ...] = ()
    init: str = "image"
    input: str | None = None
    input_sha256: str | None = None
    guide: str | None = None
    guide_sha256: str | None = None
    size: str | None = None
    frames: int = 1
    zoom: float = 1.0
    rotate: float = 0.0
    device: str = "cpu"
    compile: bool = False  # made through torch.compile (`--compile`); kept out of the JSON when False
    preset: str | None = None
    version: str = field(default=zoo.__version__)
    interrupted: bool = False
    steps_done: int | None = None  # for an interrupted still: how many steps it got (reproduced exactly)

    def to_json(self) -> str:
        data = asdict(self)
        if not data["compile"]:  # recipes of the default path stay byte for byte what they were
            del data["compile"]
        data["format"] = FORMAT
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "recipe") -> Recipe:
        """Parse and validate a recipe field by field: a tampered one gets one line naming the field."""
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            raise UserError(f"{source}: recipe text chunk is not valid JSON (or nested too deeply)") from None
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise UserError(f"{source}: recipe format is not {FORMAT}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UserError(f"{source}: recipe has unknown keys: {', '.join(sorted(unknown))}")
        for key in ("model", "weights_sha256", "layers", "params"):
            if key not in data:
                raise UserError(f"{source}: recipe is incomplete (no field {key!r})")
        for key, check in _CHECKS.items():
            if key in data:
                problem = check(data[key])
                if problem:
                    raise UserError(f"{source}: recipe field {key!r} {problem}")
        params = data["params"]
        for key, check in _PARAM_CHECKS.items():
            if key in params:
                problem = check(params[key])
                if problem:
                    raise UserError(f"{source}: recipe field 'params.{key}' {problem}")
        try:
            data["params"] = DreamParams.from_dict(params)
        except UserError as e:
            raise UserError(f"{source}: {e}") from None
        data["layers"] = tuple(data["layers"])
        data["weights"] = tuple(float(w) for w in data.get("weights", ()))
        return cls(**data)

    def with_(self, **changes: object) -> Recipe:
        return replace(self, **changes)

    def command(self, output: str | None = None) -> str:
        """A `zoo dream` command line that states this recipe (for people; --recipe is exact)."""
        p = self.params
        args = ["zoo", "dream"]
        if self.input:
            args.append(self.input)
        if output:
            args += ["-o", output]
        args += ["--model", self.model]
        for layer in self.layers:
            args += ["--layer", layer]
        for w in self.weights:
            args += ["--weight", f"{w:g}"]
        if self.guide:
            args += ["--guide", self.guide]
        if self.init != "image":
            args += ["--init", self.init]
        if self.size:
            args += ["--size", self.size]
        args += ["--octaves", str(p.octaves), "--octave-scale", f"{p.octave_scale:g}"]
        args += ["--iterations", str(p.iterations), "--step", f"{p.step:g}", "--jitter", str(p.jitter)]
        if p.tile:
            args += ["--tile", str(p.tile)]
        if self.frames > 1:
            args += ["--frames", str(self.frames), "--zoom", f"{self.zoom:g}", "--rotate", f"{self.rotate:g}"]
        args += ["--seed", str(self.seed)]
        if self.compile:
            args.append("--compile")
        return shlex.join(args)


# --- field checks: each returns None when the value is fine, else what is wrong with it -------------

def _int(lo: int, hi: int) -> Callable[[object], str | None]:
    def check(v: object) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be a whole number, not {_show(v)}"
        return None if lo <= v <= hi else f"must be between {lo} and {hi}, not {v}"
    return check


def _num(lo: float, hi: float, *, above: bool = False) -> Callable[[object], str | None]:
    def check(v: object) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return f"must be a finite number, not {_show(v)}"
        if (v <= lo if above else v < lo) or v > hi:
            return f"must be {'above' if above else 'at least'} {lo:g} and at most {hi:g}, not {v:g}"
        return None
    return check


def _text(optional: bool = False, limit: int = 4096) -> Callable[[object], str | None]:
    def check(v: object) -> str | None:
        if v is None and optional:
            return None
        if not isinstance(v, str):
            return f"must be text, not {_show(v)}"
        return None if len(v) <= limit else f"is longer than {limit} characters"
    return check


def _list_of(item: Callable[[object], str | None], limit: int = 64) -> Callable[[object], str | None]:
    def check(v: object) -> str | None:
        if not isinstance(v, list) or len(v) > limit:
            return f"must be a list of at most {limit} items"
        return next((f"item {i} {p}" for i, p in ((i, item(x)) for i, x in enumerate(v)) if p), None)
    return check


def _choice(*options: object) -> Callable[[object], str | None]:
    return lambda v: None if v in options and type(v) is type(options[0]) else f"must be one of {options}"


def _optional(check: Callable[[object], str | None]) -> Callable[[object], str | None]:
    return lambda v: None if v is None else check(v)


def _size(v: object) -> str | None:
    if v is None:
        return None
    if not isinstance(v, str) or not re.fullmatch(r"\d{1,6}(x\d{1,6})?", v.strip().lower()):
        return f"must be W or WxH in pixels, not {_show(v)}"
    if any(int(p) < 1 or int(p) > MAX_SIDE for p in v.lower().split("x")):
        return f"{v!r} is out of range (1 to {MAX_SIDE} pixels a side)"
    return None


def _show(v: object) -> str:
    text = json.dumps(v) if not isinstance(v, (dict, list)) else type(v).__name__
    return text if len(text) < 40 else text[:37] + "..."


MAX_SIDE = 20_000  # a recipe side beyond this is refused outright; memory is checked before dreaming
_sha = _optional(_text(limit=64))
_CHECKS: dict[str, Callable[[object], str | None]] = {
    "model": _text(limit=200), "weights_sha256": _text(limit=64), "layers": _list_of(_text(limit=500)),
    "params": lambda v: None if isinstance(v, dict) else "must be a table of parameters",
    "seed": _int(-(2**63), 2**63 - 1), "weights": _list_of(_num(-1e6, 1e6)), "init": _text(limit=200),
    "input": _text(optional=True), "input_sha256": _sha, "guide": _text(optional=True), "guide_sha256": _sha,
    "size": _size, "frames": _int(1, 100_000), "zoom": _num(0.1, 10.0), "rotate": _num(-360.0, 360.0),
    "device": _choice("cpu", "cuda"), "preset": _optional(_text(limit=100)), "version": _text(limit=100),
    "interrupted": _choice(False, True), "compile": _choice(False, True), "steps_done": _optional(_int(0, 10**9)),
}
_PARAM_CHECKS: dict[str, Callable[[object], str | None]] = {
    "octaves": _int(1, 32), "octave_scale": _num(1.0, 4.0, above=True), "iterations": _int(1, 100_000),
    "step": _num(0.0, 1000.0), "jitter": _int(0, 10_000), "tile": _optional(_int(16, 1 << 16)),
    "clip": _choice(True, False),
}


def png_info(recipe: Recipe) -> PngImagePlugin.PngInfo:
    """Text chunks for a PNG: the recipe as JSON, plus human-readable Software and Description.

    Nothing in them depends on where the file is written, so a reproduction is byte-identical.
    """
    info = PngImagePlugin.PngInfo()
    info.add_itxt(KEY, recipe.to_json())
    info.add_text("Software", f"zoo {recipe.version}")
    info.add_itxt("Description", recipe.command())
    return info


def read_recipe(path: str | Path) -> Recipe:
    """The recipe stored in an image written by `zoo dream`: a PNG text chunk, or the EXIF/TIFF
    ImageDescription of a JPEG, WebP or TIFF."""
    path = regular_file(path)
    try:
        with Image.open(path) as im:
            text = getattr(im, "text", {}).get(KEY) if im.format == "PNG" else None
            if im.format == "PNG" and text is None:
                im.load()  # text chunks after the image data
                text = getattr(im, "text", {}).get(KEY)
            if text is None and im.format != "PNG":
                desc = im.getexif().get(0x010E)
                text = desc if isinstance(desc, str) and desc.startswith("{") else None
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not an image") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UserError(f"{path}: cannot decode as an image") from None
    if text is None:
        raise UserError(f"{path}: carries no zoo recipe (only images written by `zoo dream` do)")
    if len(text) > 1 << 20:
        raise UserError(f"{path}: its recipe is larger than 1 MiB; refusing it")
    return Recipe.from_json(text, str(path))


def _is_file(path: Path) -> bool:
    """Path.is_file for names a file wrote: an overlong name or a NUL byte is no file, not a crash."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def locate(stored: str | None, image: str | Path, role: str, sha256: str | None = None) -> Path | None:
    """Where a recipe's input or guide is now: its stored path, else relative to the image that
    carries the recipe, else a file of that name beside it (a folder moved as a whole).

    A recipe is hostile until checked: a file outside the image's folder (an absolute path, `..`,
    a symlink out) is taken only when its sha256 is the one the recipe records, so a recipe can
    make zoo read nothing whose content it does not already know."""
    if stored is None:
        return None
    p, folder = Path(stored), Path(image).resolve().parent
    refused = None
    for candidate in (p if p.is_absolute() else folder / p, folder / p.name):
        if not _is_file(candidate):
            continue
        if folder in candidate.resolve().parents or (sha256 and file_sha256(candidate) == sha256):
            return candidate
        refused = candidate
    flag = "give it as INPUT" if role == "input" else "give it with --guide"
    if refused is not None:
        raise UserError(f"{image}: the recipe's {role} {stored} lies outside the picture's folder and does not "
                        f"match the recipe's checksum; refusing to read it ({flag})")
    raise UserError(f"{image}: the recipe's {role} {stored} is not found ({flag})")


def file_sha256(path: str | Path) -> str:
    """Checksum of a file, streamed (weights and print-size images are large)."""
    return file_digest(path, "sha256")
