"""Named parameter sets: `classic` is the DeepDream notebook's defaults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

from zoo.errors import UserError


@dataclass(frozen=True)
class DreamParams:
    """Everything the render loop needs besides the net, the objective and the image."""

    octaves: int = 4
    octave_scale: float = 1.4
    iterations: int = 10
    step: float = 1.5
    jitter: int = 32
    tile: int | None = None  # None: chosen from available memory
    clip: bool = True

    def with_(self, **changes: object) -> DreamParams:
        """A copy with the given fields changed; None values leave a field as it is."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DreamParams:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UserError(f"recipe has unknown parameters: {', '.join(sorted(unknown))}")
        return cls(**data)  # type: ignore[arg-type]


PARAM_KINDS = ("pixels", "fft", "laplacian")  # zoo.dream.params.PARAMS
OLD_DECAY = 1.0  # the Fourier decay of legible recipes written before `decay` was recorded
NOISE_DECAY, PHOTO_DECAY = 1.5, 1.0  # the Fourier decay of a new recipe, from noise and from a photo
TRANSFORM_SETS = ("standard", "crops", "zoom", "light", "none")  # zoo.dream.transforms.SETS


@dataclass(frozen=True)
class Legible:
    """How a legible picture is made; recorded in the recipe as `legible`."""

    steps: int = 128
    lr: float = 0.05
    param: str = "fft"  # pixels | fft | laplacian
    decorrelate: bool = True
    transforms: str = "auto"  # auto (classes: zoom from a photo, crops from noise; else standard) | a set
    diversity: int = 1  # pictures in the batch; over 1 a diversity term pushes them apart
    diversity_weight: float = 1.0
    colour: tuple[tuple[float, ...], ...] | None = None  # the C^1/2 used; filled in by prepare
    colour_from: str = ""  # whose colour covariance that is (ImageNet, its training pictures); said, not used
    decay: float | None = None  # the Fourier spectrum falls as 1/frequency**decay; None: by the start (for_start)

    def with_(self, **changes: object) -> Legible:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def for_start(self, photo: bool) -> Legible:
        """The decay filled in for the start, when not given: from noise a steeper spectrum (1.5) grows
        shapes before texture; a photo has its shapes and takes lucid's 1/frequency, so the class's
        detail can be painted over it (measured with the judge: docs/legible.md)."""
        return self if self.decay is not None else replace(self, decay=PHOTO_DECAY if photo else NOISE_DECAY)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object, source: str = "recipe") -> Legible:
        """Checked field by field (a recipe is hostile until checked): one line naming the field."""
        if not isinstance(data, dict):
            raise UserError(f"{source}: recipe field 'legible' must be a table")
        names = {f.name for f in fields(cls)}
        unknown = ", ".join(sorted(set(data) - names))
        if unknown:
            raise UserError(f"{source}: recipe field 'legible' has unknown keys: {unknown}")
        for key, check in _CHECKS.items():
            if key in data and not check(data[key]):
                raise UserError(f"{source}: recipe field 'legible.{key}' is out of range or of the wrong type")
        data = dict(data)
        data.setdefault("decay", OLD_DECAY)  # written before the field: they ran with 1/frequency
        if data.get("colour") is not None:
            data["colour"] = tuple(tuple(float(v) for v in row) for row in data["colour"])
        return cls(**data)


def _int(lo: int, hi: int) -> Callable[[object], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _num(lo: float, hi: float) -> Callable[[object], bool]:
    return lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi


def _matrix(v: object) -> bool:
    return v is None or (isinstance(v, list) and len(v) == 3 and all(
        isinstance(r, list) and len(r) == 3 and all(_num(-10.0, 10.0)(x) for x in r) for r in v))


_CHECKS: dict[str, Callable[[object], bool]] = {
    "steps": _int(1, 100_000), "lr": _num(1e-6, 10.0), "param": lambda v: v in PARAM_KINDS,
    "decorrelate": lambda v: isinstance(v, bool), "transforms": lambda v: v in (*TRANSFORM_SETS, "auto"),
    "diversity": _int(1, 64), "diversity_weight": _num(0.0, 1e6), "colour": _matrix,
    "colour_from": lambda v: isinstance(v, str) and len(v) <= 4096, "decay": lambda v: v is None or _num(0.0, 4.0)(v),
}



@dataclass(frozen=True)
class Preset:
    """Parameters plus the model and blob they were made for (None: the model's default)."""

    params: DreamParams
    model: str | None = None
    layer: str | None = None
    description: str = ""


PRESETS: dict[str, Preset] = {
    "classic": Preset(
        DreamParams(octaves=4, octave_scale=1.4, iterations=10, step=1.5, jitter=32),
        model="bvlc_googlenet",
        layer="inception_4c/output",
        description="the DeepDream notebook's defaults",
    ),
    "quick": Preset(
        DreamParams(octaves=3, octave_scale=1.4, iterations=5, step=1.5, jitter=32),
        description="a fast preview: 3 octaves of 5 steps",
    ),
    "deep": Preset(
        DreamParams(octaves=6, octave_scale=1.4, iterations=20, step=1.5, jitter=32),
        description="more octaves and steps: larger, stronger structures",
    ),
}


def get_preset(name: str) -> Preset:
    """Look a preset up by name; the error lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise UserError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}") from None


def describe(name: str, model: str) -> str:
    """One line saying what preset `name` changes against the defaults when dreaming on `model`."""
    p = get_preset(name)
    base = DreamParams()
    changed = [f"{f.name} {getattr(base, f.name)} -> {getattr(p.params, f.name)}" for f in fields(DreamParams)
               if getattr(p.params, f.name) != getattr(base, f.name)]
    if p.layer and p.model == model:
        changed.append(f"layer {p.layer}")
    if not changed:
        made = f" (made for {p.model}: {p.layer})" if p.model and p.model != model else ""
        return f"preset {name}: {p.description}; on {model} it equals the defaults{made}"
    return f"preset {name}: {p.description}; changes {', '.join(changed)}"
