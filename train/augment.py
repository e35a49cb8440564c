"""Training augmentations in the model's own input space (3xHxW float, BGR, 0-255), torch only.

Each augmentation is a small callable `aug(img, gen) -> img` that draws its random parameter from an
explicit torch.Generator (`sample`) and applies it with a pure static `apply`, so tests can check
`apply` with exact numbers and a run can be replayed from a seed. `build` turns a CLI spec such as
"crop,mirror,brightness=0.4,lighting=0.1" into one composed callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo.errors import UserError

from .config import DEFAULT_SPEC  # noqa: F401 - the default lives with the other training defaults

Tensor = torch.Tensor
Box = tuple[int, int, int, int]  # top, left, height, width

# Luma weights in BGR order (ITU-R 601, the same as PIL's "L").
GRAY_BGR = (0.114, 0.587, 0.299)
# AlexNet's PCA of ImageNet RGB pixels (0..1 scale): eigenvalues and eigenvectors (columns), rows R, G, B.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC_RGB = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)
# RGB -> YIQ; hue rotates the (I, Q) plane and keeps luma.
YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


# The same constants as float64 tensors, built once (the folded colour path runs per image).
_GRAY64 = torch.tensor(GRAY_BGR, dtype=torch.float64)
_EYE64 = torch.eye(3, dtype=torch.float64)
_YIQ64 = torch.tensor(YIQ, dtype=torch.float64)
_YIQ_INV64 = torch.linalg.inv(_YIQ64)
_PCA_VEC64 = torch.tensor(PCA_EIGVEC_RGB, dtype=torch.float64)
_PCA_VAL64 = torch.tensor(PCA_EIGVAL, dtype=torch.float64)


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))


def gray(img: Tensor) -> Tensor:
    """Per-pixel luma of a BGR image, shape 1xHxW."""
    w = torch.tensor(GRAY_BGR, dtype=img.dtype).view(3, 1, 1)
    return (img * w).sum(0, keepdim=True)


def resize(img: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of a 3xHxW image to (h, w)."""
    if tuple(img.shape[-2:]) == tuple(size):
        return img
    return F.interpolate(img[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


# --- geometry -------------------------------------------------------------------------------------


def crop_box(h: int, w: int, area_frac: float, aspect: float) -> Box | None:
    """A box (at 0, 0) of a given area fraction and aspect (w/h), or None if it does not fit h x w."""
    area = area_frac * h * w
    cw = int(round(math.sqrt(area * aspect)))
    ch = int(round(math.sqrt(area / aspect)))
    if 0 < cw <= w and 0 < ch <= h:
        return (0, 0, ch, cw)
    return None


def center_box(h: int, w: int, size: tuple[int, int]) -> Box:
    """The centred box of `size`, clipped to the image."""
    ch, cw = min(size[0], h), min(size[1], w)
    return ((h - ch) // 2, (w - cw) // 2, ch, cw)


def crop_resize(img: Tensor, box: Box, size: tuple[int, int]) -> Tensor:
    top, left, h, w = box
    return resize(img[:, top : top + h, left : left + w], size)


@dataclass
class RandomResizedCrop:
    """GoogLeNet's crops: 8-100 % of the area, aspect 3/4-4/3, resized to the net's input."""

    size: tuple[int, int]
    min_area: float = 0.08
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def sample(self, h: int, w: int, gen: torch.Generator) -> Box:
        log_lo, log_hi = math.log(self.ratio[0]), math.log(self.ratio[1])
        for _ in range(10):
            frac = _uniform(gen, self.min_area, 1.0)
            aspect = math.exp(_uniform(gen, log_lo, log_hi))
            box = crop_box(h, w, frac, aspect)
            if box is not None:
                _, _, ch, cw = box
                top = int(torch.randint(0, h - ch + 1, (), generator=gen))
                left = int(torch.randint(0, w - cw + 1, (), generator=gen))
                return (top, left, ch, cw)
        side = min(h, w)
        return center_box(h, w, (side, side))

    def __call__(self, img: Tensor, gen: torch.Generator) -> Tensor:
        return crop_resize(img, self.sample(img.shape[1], img.shape[2], gen), self.size)


@dataclass
class CenterCrop:
    """The eval view: the centred input-sized crop (resized down if the image is smaller)."""

    size: tuple[int, int]

    def __call__(self, img: Tensor, gen: torch.Generator | None = None) -> Tensor:
        return crop_resize(img, center_box(img.shape[1], img.shape[2], self.size), self.size)


@dataclass
class Mirror:
    """Left-right flip with probability p."""

    p: float = 0.5

    def sample(self, gen: torch.Generator) -> bool:
        return _uniform(gen, 0.0, 1.0) < self.p

    @staticmethod
    def apply(img: Tensor, flip: bool) -> Tensor:
        return img.flip(-1) if flip else img

    def __call__(self, img: Tensor, gen: torch.Generator) -> Tensor:
        return self.apply(img, self.sample(gen))


# --- photometric (after Andrew Howard, arXiv:1312.5402) ------------------------------------------


@dataclass
class _Factor:
    """A distortion whose parameter is a factor drawn from 1 +- strength."""

    strength: float = 0.4

    def sample(self, gen: torch.Generator) -> float:
        return _uniform(gen, 1.0 - self.strength, 1.0 + self.strength)

    def __call__(self, img: Tensor, gen: torch.Generator) -> Tensor:
        return self.apply(img, self.sample(gen))  # type: ignore[attr-defined]


class Brightness(_Factor):
    """Scale every value: img * f."""

    @staticmethod
    def apply(img: Tensor, f: float) -> Tensor:
        return img * f

    def fold(self, gen: torch.Generator, m: Tensor, b: Tensor, mean0: Tensor) -> tuple[Tensor, Tensor]:
        f = self.sample(gen)
        return f * m, f * b


class Contrast(_Factor):
    """Blend with the image's mean luma: f * img + (1 - f) * mean(gray)."""

    @staticmethod
    def apply(img: Tensor, f: float) -> Tensor:
        return img * f + (1.0 - f) * gray(img).mean()

    def fold(self, gen: torch.Generator, m: Tensor, b: Tensor, mean0: Tensor) -> tuple[Tensor, Tensor]:
        f = self.sample(gen)
        luma = _GRAY64 @ (m @ mean0 + b)  # mean luma of the image so far
        return f * m, f * b + (1.0 - f) * luma


class Saturation(_Factor):
    """Blend with the per-pixel luma: f * img + (1 - f) * gray."""

    @staticmethod
    def apply(img: Tensor, f: float) -> Tensor:
        return img * f + (1.0 - f) * gray(img)

    def fold(self, gen: torch.Generator, m: Tensor, b: Tensor, mean0: Tensor) -> tuple[Tensor, Tensor]:
        f = self.sample(gen)
        s = f * _EYE64 + (1.0 - f) * _GRAY64.expand(3, 3)
        return s @ m, s @ b


def hue_matrix_bgr(turns: float) -> Tensor:
    """3x3 matrix rotating hue by `turns` of a full circle in YIQ, acting on BGR column vectors."""
    a = 2.0 * math.pi * turns
    c, s = math.cos(a), math.sin(a)
    rot = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
    rgb = _YIQ_INV64 @ rot @ _YIQ64
    return rgb.flip(0).flip(1)  # reorder rows and columns to B, G, R


@dataclass
class Hue:
    """Rotate hue by up to +-strength turns (0.5 = half the colour circle); luma is kept."""

    strength: float = 0.05

    def sample(self, gen: torch.Generator) -> float:
        return _uniform(gen, -self.strength, self.strength)

    @staticmethod
    def apply(img: Tensor, turns: float) -> Tensor:
        t = hue_matrix_bgr(turns).to(img.dtype)
        return torch.einsum("ij,jhw->ihw", t, img)

    def __call__(self, img: Tensor, gen: torch.Generator) -> Tensor:
        return self.apply(img, self.sample(gen))

    def fold(self, gen: torch.Generator, m: Tensor, b: Tensor, mean0: Tensor) -> tuple[Tensor, Tensor]:
        t = hue_matrix_bgr(self.sample(gen))
        return t @ m, t @ b


@dataclass
class Lighting:
    """AlexNet PCA lighting noise: add 255 * eigvec @ (alpha * eigval), alpha ~ N(0, strength)."""

    strength: float = 0.1

    def sample(self, gen: torch.Generator) -> tuple[float, float, float]:
        a = torch.randn(3, generator=gen, dtype=torch.float64) * self.strength
        return (float(a[0]), float(a[1]), float(a[2]))

    @staticmethod
    def offset_bgr(alpha: Sequence[float]) -> Tensor:
        val = _PCA_VAL64 * torch.tensor(alpha, dtype=torch.float64)
        return (255.0 * _PCA_VEC64 @ val).flip(0)

    @classmethod
    def apply(cls, img: Tensor, alpha: Sequence[float]) -> Tensor:
        return img + cls.offset_bgr(alpha).to(img.dtype).view(3, 1, 1)

    def __call__(self, img: Tensor, gen: torch.Generator) -> Tensor:
        return self.apply(img, self.sample(gen))

    def fold(self, gen: torch.Generator, m: Tensor, b: Tensor, mean0: Tensor) -> tuple[Tensor, Tensor]:
        return m, b + self.offset_bgr(self.sample(gen))


@dataclass
class Clip:
    """Keep values in the 0-255 range the net saw in training."""

    lo: float = 0.0
    hi: float = 255.0

    def __call__(self, img: Tensor, gen: torch.Generator | None = None) -> Tensor:
        return img.clamp(self.lo, self.hi)


@dataclass
class Compose:
    """Apply callables in order with one generator.

    Runs of photometric steps are all affine in colour (y = M x + b, contrast's b from the mean luma),
    so each run is folded into one 3x3 matrix and offset and applied in a single pass over the
    pixels: the same draws, in the same order, as applying them one by one, at a fraction of the cost.
    """

    steps: list[Callable[[Tensor, torch.Generator], Tensor]]

    def __call__(self, img: Tensor, gen: torch.Generator) -> Tensor:
        run: list = []
        for s in self.steps:
            if hasattr(s, "fold"):
                run.append(s)
                continue
            img = _apply_folded(run, img, gen)
            run = []
            img = s(img, gen)
        return _apply_folded(run, img, gen)


def _apply_folded(run: list, img: Tensor, gen: torch.Generator) -> Tensor:
    if not run:
        return img
    m, b = _EYE64, torch.zeros(3, dtype=torch.float64)
    mean0 = img.mean(dim=(1, 2), dtype=torch.float64)
    for step in run:
        m, b = step.fold(gen, m, b, mean0)
    flat = torch.addmm(b.to(img.dtype)[:, None], m.to(img.dtype), img.reshape(3, -1))
    return flat.reshape(img.shape)


# --- spec parsing ---------------------------------------------------------------------------------

# name -> (default strength, factory(strength, size))
REGISTRY: dict[str, tuple[float, Callable[[float, tuple[int, int]], Callable]]] = {
    "crop": (0.08, lambda s, size: RandomResizedCrop(size, min_area=s)),
    "mirror": (0.5, lambda s, size: Mirror(s)),
    "brightness": (0.4, lambda s, size: Brightness(s)),
    "contrast": (0.4, lambda s, size: Contrast(s)),
    "saturation": (0.4, lambda s, size: Saturation(s)),
    "hue": (0.05, lambda s, size: Hue(s)),
    "lighting": (0.1, lambda s, size: Lighting(s)),
}
ORDER = list(REGISTRY)


def parse_spec(spec: str) -> dict[str, float]:
    """Spec "crop,mirror,hue=0.1" -> {"crop": 0.08, "mirror": 0.5, "hue": 0.1}; "none" -> {}."""
    out: dict[str, float] = {}
    spec = spec.strip()
    if spec in ("", "none"):
        return out
    for item in spec.split(","):
        name, _, value = item.strip().partition("=")
        if name not in REGISTRY:
            raise UserError(f"augmentation {name!r}: unknown (choose from {', '.join(REGISTRY)} or none)")
        try:
            out[name] = float(value) if value else REGISTRY[name][0]
        except ValueError:
            raise UserError(f"augmentation {item!r}: strength must be a number") from None
    return out


def build(spec: str, size: tuple[int, int]) -> Compose:
    """The training transform for a spec: a crop (random or centred), then the rest, then Clip."""
    parsed = parse_spec(spec)
    steps: list[Callable] = [] if "crop" in parsed else [CenterCrop(size)]
    for name in ORDER:
        if name in parsed:
            steps.append(REGISTRY[name][1](parsed[name], size))
    steps.append(Clip())
    return Compose(steps)


def build_eval(size: tuple[int, int]) -> Compose:
    return Compose([CenterCrop(size), Clip()])
