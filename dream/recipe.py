"""The full recipe of a dream, carried in its PNG's text chunks and read back to reproduce it.

One JSON text chunk (`zoo:recipe`) holds everything that decides the pixels; `Software` and
`Description` are for people and other tools.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from PIL import Image, PngImagePlugin
from zoo.dream.options import DREAM, PARAMS, RECIPE_FIELDS, pixel_size
from zoo.dream.presets import DreamParams, Legible

import zoo
from zoo import memory
from zoo.errors import UserError
from zoo.io import file_digest, regular_file
from zoo.options import Option
from zoo.seeds import check_seed

KEY = "zoo:recipe"
FORMAT = 1
OPTIONAL_KEYS = {"compile": False, "dpi": None, "threads": None, "look": "classic", "legible": None, "balance": (),
                 "guide_mode": "match"}  # left out of the JSON at these values


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
    dpi: int | None = None  # print resolution written into the file (`--dpi`, `--size 18x18in@300`)
    threads: int | None = None  # torch's CPU threads per process under --nproc: the sums' order follows them
    look: str = "classic"  # classic | legible | auto (new recipes: legible for a class target)
    legible: Legible | None = None  # the legible loop (zoo.dream.robust); None: classic DeepDream
    balance: tuple[float, ...] = ()  # each layer's term divided by this scale (its pull on the start)
    guide_mode: str = "match"  # match: the notebook's best match; layout: the guide's features in place

    def __post_init__(self) -> None:
        check_seed(self.seed)

    def to_json(self) -> str:
        data = asdict(self)
        for key in OPTIONAL_KEYS:  # recipes of the default path stay byte for byte what they were
            if data[key] == OPTIONAL_KEYS[key]:
                del data[key]
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
        data["balance"] = tuple(float(w) for w in data.get("balance", ()))
        if data.get("legible") is not None:
            data["legible"] = Legible.from_dict(data["legible"], source)
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
        if self.dpi:
            args += ["--dpi", str(self.dpi)]
        if self.legible is None:
            args += ["--octaves", str(p.octaves), "--octave-scale", f"{p.octave_scale:g}"]
            args += ["--iterations", str(p.iterations), "--step", f"{p.step:g}", "--jitter", str(p.jitter)]
            if p.tile:
                args += ["--tile", str(p.tile)]
        if self.frames > 1:
            args += ["--frames", str(self.frames), "--zoom", f"{self.zoom:g}", "--rotate", f"{self.rotate:g}"]
        args += ["--seed", str(self.seed)] + self._legible_args()
        if self.compile:
            args.append("--compile")
        return shlex.join(args)


    def _legible_args(self) -> list[str]:
        g = self.legible
        if g is None:
            return []
        args = ["--look", "legible", "--iterations", str(g.steps), "--param", g.param, "--transforms", g.transforms]
        args += [] if g.decorrelate else ["--rgb"]
        return args + (["--diversity", str(g.diversity)] if g.diversity > 1 else [])


# --- field checks: each returns None when the value is fine, else what is wrong with it -------------
# The fields that are options of `zoo dream` are checked by their one declaration (zoo.dream.options):
# a recipe refuses what the CLI and the studio refuse, in the same words.

def _text(optional: bool = False, limit: int = 4096) -> Callable[[object], str | None]:
    return Option("text", str, max_len=limit, required=not optional).problem


def _choice(*options: object) -> Callable[[object], str | None]:
    return lambda v: None if v in options and type(v) is type(options[0]) else f"must be one of {options}"


_sha = _text(optional=True, limit=64)
_CHECKS: dict[str, Callable[[object], str | None]] = {
    **{o.name: o.problem for o in DREAM.pick(RECIPE_FIELDS)},
    "model": _text(limit=200), "weights_sha256": _text(limit=64),
    "params": lambda v: None if isinstance(v, dict) else "must be a table of parameters",
    "input": _text(optional=True), "input_sha256": _sha, "guide": _text(optional=True), "guide_sha256": _sha,
    "size": Option("size", str, rule=pixel_size).problem, "version": _text(limit=100),
    "interrupted": _choice(False, True), "compile": _choice(False, True),
    "steps_done": Option("steps_done", int, lo=0, hi=10**9).problem,
    "threads": Option("threads", int, lo=1, hi=4096).problem,
    "look": replace(DREAM["look"], required=True).problem,  # a stored look is never empty
    "balance": Option("balance", float, many=True, lo=1e-30, hi=1e30, above=True, required=True).problem,
    "guide_mode": Option("guide_mode", str, choices=("match", "layout"), required=True).problem,
}
_PARAM_CHECKS: dict[str, Callable[[object], str | None]] = {
    **{o.name: o.problem for o in PARAMS}, "clip": _choice(True, False),
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
    except memory.DECODE_ERRORS as e:  # one line: no file, a folder, a bomb's size, or no picture
        memory.refuse_image(path, e)
    if text is None:
        raise UserError(f"{path}: carries no zoo recipe (only images written by `zoo dream` do)")
    if len(text) > 1 << 20:
        raise UserError(f"{path}: its recipe is larger than 1 MiB; refusing it")
    return Recipe.from_json(text, str(path))


LAYOUT_DEPTH = 6  # how many folders up, and how many trailing parts of the stored path, are searched


def _is_file(path: Path) -> bool:
    """Path.is_file for names a file wrote: an overlong name or a NUL byte is no file, not a crash."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def layout_candidates(stored: str, image: str | Path) -> list[Path]:
    """Where a recipe's file may be now, nearest first: its stored path; beside the picture; then the
    layout it had, moved with the picture: the stored path's last parts under each folder above the
    picture (project/in/photo.jpg and project/out/dream.png moved together as another/...)."""
    p, folder = Path(stored), Path(image).resolve().parent
    found = [p if p.is_absolute() else folder / p, folder / p.name]
    tails = [Path(*p.parts[-k:]) for k in range(2, min(len(p.parts), LAYOUT_DEPTH) + 1) if p.parts[-k] != p.anchor]
    for above in [folder, *folder.parents][:LAYOUT_DEPTH]:
        found += [above / tail for tail in tails]
    return list(dict.fromkeys(found))


def locate(stored: str | None, image: str | Path, role: str, sha256: str | None = None) -> Path | None:
    """Where a recipe's input or guide is now (layout_candidates): with `sha256`, the first candidate
    with that checksum, so a same-named stranger is passed over; without, the first inside the folder.

    A recipe is hostile until checked: a file outside the image's folder (an absolute path, `..`,
    a symlink out, a folder above) is taken only when its sha256 is the one the recipe records, so a
    recipe can make zoo read nothing whose content it does not already know."""
    if stored is None:
        return None
    folder = Path(image).resolve().parent
    differs = refused = None
    for candidate in layout_candidates(stored, image):
        if not _is_file(candidate):
            continue
        if sha256 and file_sha256(candidate) == sha256:
            return candidate
        if folder in candidate.resolve().parents:
            if not sha256:
                return candidate
            differs = differs or candidate
        else:
            refused = refused or candidate
    flag = "give it as INPUT" if role == "input" else "give it with --guide"
    if differs is not None:
        raise UserError(f"{differs}: not the {role} the recipe of {image} was made from (sha256 differs; {flag})")
    if refused is not None:
        raise UserError(f"{image}: the recipe's {role} {stored} lies outside the picture's folder and does not "
                        f"match the recipe's checksum; refusing to read it ({flag})")
    raise UserError(f"{image}: the recipe's {role} {stored} is not found ({flag})")


def file_sha256(path: str | Path) -> str:
    """Checksum of a file, streamed (weights and print-size images are large)."""
    return file_digest(path, "sha256")
