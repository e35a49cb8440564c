"""How a legible picture is held while it is optimised: a spatial parametrisation (pixels, a Fourier
spectrum, or a Laplacian pyramid) in a decorrelated colour space, squashed into 0..1 RGB.

Gradient ascent on raw pixels grows high-frequency noise first; a spectrum scaled by 1/frequency
and colours whitened by the training data's covariance make every direction equally easy, so
the optimiser paints shapes and colours the brain saw in training (Olah et al., Distill 2017).
A parametrisation is a small class: `params()` for the optimiser, `rgb()` for the picture, and
`from_rgb` to start from a photo (each one inverts exactly, so a photo start is the photo).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

# ImageNet's RGB covariance (pixels in 0..1), from the eigen decomposition Krizhevsky et al. published
# for AlexNet's colour augmentation (eigenvalues, then eigenvectors as columns).
IMAGENET_EIGVAL = np.array([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])


def sqrt_cov(eigval: np.ndarray, eigvec: np.ndarray) -> np.ndarray:
    """The colour transform that turns white noise into noise of this covariance (C^1/2),
    scaled so its largest column has norm 1 (the optimiser's step sizes stay comparable)."""
    m = eigvec @ np.diag(np.sqrt(np.maximum(eigval, 1e-12))) @ eigvec.T
    return (m / np.linalg.norm(m, axis=0).max()).astype(np.float32)


def imagenet_colour() -> np.ndarray:
    return sqrt_cov(IMAGENET_EIGVAL, IMAGENET_EIGVEC)


def colour_covariance(images: Iterable[np.ndarray], every: int = 7) -> np.ndarray:
    """The RGB covariance (pixels in 0..1, divided by n) of a data set's pixels (HxWx3 arrays,
    0..255), from every `every`-th pixel of each: what `zoo train` records in a brain's card."""
    total, outer, n = np.zeros(3), np.zeros((3, 3)), 0
    for rgb in images:
        px = np.asarray(rgb, np.float64).reshape(-1, 3)[::every] / 255.0
        total += px.sum(0)
        outer += px.T @ px
        n += len(px)
    if n < 2:
        raise ValueError("no pixels to measure a colour covariance on")
    mean = total / n
    return outer / n - np.outer(mean, mean)


def colour_from_covariance(cov: np.ndarray) -> np.ndarray:
    """C^1/2 of a recorded RGB covariance, by its eigen decomposition."""
    val, vec = np.linalg.eigh(np.asarray(cov, np.float64))
    return sqrt_cov(val, vec)


def dataset_colour(images: Iterable[np.ndarray]) -> np.ndarray:
    """C^1/2 of the RGB covariance of a data set's pixels, for brains trained on pictures unlike
    ImageNet's."""
    return colour_from_covariance(colour_covariance(images))


def folder_colour(folder: Path, limit: int = 200) -> np.ndarray:
    """dataset_colour over up to `limit` images of a folder (recursively, sorted)."""
    from zoo.dream.starts import load_image

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))[:limit]
    return dataset_colour(load_image(p) for p in files)


def _logit(p: Tensor) -> Tensor:
    p = p.clamp(1e-3, 1 - 1e-3)
    return torch.log(p / (1 - p))


class Colour:
    """Decorrelated colour: the parametrisation's three channels mixed by C^1/2, then a sigmoid."""

    def __init__(self, matrix: np.ndarray | None):
        self.m = torch.from_numpy(np.asarray(matrix, np.float32)) if matrix is not None else torch.eye(3)
        self.inv = torch.linalg.inv(self.m)

    def to_rgb(self, t: Tensor) -> Tensor:
        return torch.sigmoid(torch.einsum("ck,nkhw->nchw", self.m.to(t), t))

    def from_rgb(self, rgb01: Tensor) -> Tensor:
        return torch.einsum("ck,nkhw->nchw", self.inv.to(rgb01), _logit(rgb01))


class Pixels:
    """One free value per pixel and colour channel (what classic DeepDream ascends)."""

    def __init__(self, shape: Sequence[int], colour: Colour, gen: torch.Generator, sd: float = 0.01):
        self.colour = colour
        self.t = (torch.randn(tuple(shape), generator=gen) * sd).requires_grad_(True)

    def params(self) -> list[Tensor]:
        return [self.t]

    def rgb(self) -> Tensor:
        return self.colour.to_rgb(self.t)

    def from_rgb(self, rgb01: Tensor) -> None:
        with torch.no_grad():
            self.t.copy_(self.colour.from_rgb(rgb01))


def _freq_scale(h: int, w: int, decay: float = 1.0) -> Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    f = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(f, min=1.0 / max(h, w)) ** decay


class Fourier:
    """A spectrum scaled by 1/frequency**decay: low frequencies (shapes) move as easily as high ones
    at decay 1 (lucid's), and more easily above it (what a class needs to read as one at 300 px)."""

    def __init__(self, shape: Sequence[int], colour: Colour, gen: torch.Generator, sd: float = 0.01,
                 decay: float = 1.0):
        n, c, self.h, self.w = shape
        self.colour = colour
        side = max(self.h, self.w)  # the lowest frequency keeps the same scale whatever the decay
        self.scale = _freq_scale(self.h, self.w, decay) * side ** (1.0 - decay) / 4.0  # with the orthonormal FFT:
        # pixels of unit-ish spread
        spec = torch.randn((n, c, self.h, self.w // 2 + 1, 2), generator=gen) * sd
        self.t = spec.requires_grad_(True)

    def params(self) -> list[Tensor]:
        return [self.t]

    def _spatial(self) -> Tensor:
        spec = torch.view_as_complex(self.t) * self.scale.to(self.t.device)
        return torch.fft.irfft2(spec, s=(self.h, self.w), norm="ortho")

    def rgb(self) -> Tensor:
        return self.colour.to_rgb(self._spatial())

    def from_rgb(self, rgb01: Tensor) -> None:
        spec = torch.fft.rfft2(self.colour.from_rgb(rgb01), norm="ortho") / self.scale.to(rgb01.device)
        with torch.no_grad():
            self.t.copy_(torch.view_as_real(spec))


class Laplacian:
    """A pyramid of ever coarser grids, each upsampled and added: coarse layout moves in few steps."""

    def __init__(self, shape: Sequence[int], colour: Colour, gen: torch.Generator, sd: float = 0.01,
                 levels: int = 5):
        n, c, self.h, self.w = shape
        self.colour = colour
        self.levels = [(torch.randn((n, c, max(1, self.h >> k), max(1, self.w >> k)), generator=gen) * sd)
                       .requires_grad_(True) for k in range(levels)]

    def params(self) -> list[Tensor]:
        return self.levels

    def _spatial(self) -> Tensor:
        out = self.levels[0]
        for t in self.levels[1:]:
            out = out + F.interpolate(t, size=(self.h, self.w), mode="bilinear", align_corners=False)
        return out

    def rgb(self) -> Tensor:
        return self.colour.to_rgb(self._spatial())

    def from_rgb(self, rgb01: Tensor) -> None:
        with torch.no_grad():
            for t in self.levels[1:]:
                t.zero_()
            self.levels[0].copy_(self.colour.from_rgb(rgb01))


Param = Pixels | Fourier | Laplacian
PARAMS: dict[str, Callable[..., Param]] = {"pixels": Pixels, "fft": Fourier, "laplacian": Laplacian}


def make(kind: str, shape: Sequence[int], colour: Colour, gen: torch.Generator, decay: float = 1.0) -> Param:
    """A parametrisation of `kind`; `decay` shapes the Fourier spectrum (the others have none)."""
    return Fourier(shape, colour, gen, decay=decay) if kind == "fft" else PARAMS[kind](shape, colour, gen)
