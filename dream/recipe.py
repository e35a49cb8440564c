"""The full recipe of a dream, carried in its PNG's text chunks and read back to reproduce it.

One JSON text chunk (`zoo:recipe`) holds everything that decides the pixels; `Software` and
`Description` are for people and other tools.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError
from zoo.dream.presets import DreamParams

import zoo
from zoo.errors import UserError

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
    preset: str | None = None
    version: str = field(default=zoo.__version__)
    interrupted: bool = False

    def to_json(self) -> str:
        data = asdict(self)
        data["format"] = FORMAT
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "recipe") -> Recipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise UserError(f"{source}: recipe text chunk is not valid JSON") from None
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise UserError(f"{source}: recipe format is not {FORMAT}")
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UserError(f"{source}: recipe has unknown keys: {', '.join(sorted(unknown))}")
        try:
            data["params"] = DreamParams.from_dict(data["params"])
            data["layers"] = tuple(data["layers"])
            data["weights"] = tuple(data.get("weights", ()))
            return cls(**data)
        except (KeyError, TypeError) as e:
            raise UserError(f"{source}: recipe is incomplete ({e})") from None

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
        return shlex.join(args)


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
    """The recipe stored in a PNG written by `zoo dream`."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            text = getattr(im, "text", {}).get(KEY)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError):
        raise UserError(f"{path}: cannot decode as an image") from None
    if text is None:
        raise UserError(f"{path}: carries no zoo recipe (only PNGs written by `zoo dream` do)")
    return Recipe.from_json(text, str(path))


def file_sha256(path: str | Path) -> str:
    """Checksum of a file, streamed (weights and print-size images are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
