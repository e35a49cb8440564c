"""Training on sounds: class folders of audio files become spectrogram pictures, augmented as sound.

Every clip is decoded once (mono, RATE Hz) into the picture zoo dream makes of a sound with
`--n-fft N_FFT --hop HOP` (dream/spectrogram.py: log magnitude, DB_RANGE dB under the clip's top
level on 0..255, highest frequency on top), so a brain trained here hears the pictures it is later
dreamt with. The augmentations act on those pictures, where each is exact or nearly so: a random
crop in time (SIDE columns), gain (a shift in dB is a shift of pixels), a small pitch shift (resampling scales
every frequency, so the rows stretch about 0 Hz), added noise (levels add as powers), and
SpecAugment's time and frequency masks. The net sees the lowest `side` rows and `side` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import ImageList

RATE, N_FFT, HOP = 22050, 512, 128  # zoo dream SOUND --n-fft 512 --hop 128 on 22050 Hz sounds
MAX_SECONDS = 30.0  # a training clip's first seconds
SIDE = 128  # the crop the net sees: 128 frames (0.74 s) of the lowest 128 rows (0 to 5.5 kHz); a third of 224²'s work
AUDIBLE = 255 * 0.5  # a column with no pixel this bright (40 dB under the clip's top) counts as silence


def picture(path, side: int) -> np.ndarray:
    """The clip's spectrogram picture as RGB uint8 (rows x frames x 3), at least `side` frames wide."""
    from zoo.dream import audio_io
    from zoo.dream import spectrogram as spec

    track = audio_io.probe(path)
    x = audio_io.read(track, RATE).mean(axis=0)[: int(MAX_SECONDS * RATE)]
    g = spec.Geometry(N_FFT, HOP)
    gray = spec.picture(spec.to_db(spec.stft(x, g)), g, RATE, spec.top_db(float(np.abs(x).max()), g))
    loud = np.flatnonzero(gray.max(axis=0) >= AUDIBLE)  # leading and trailing silence (a decay's tail) cut
    if loud.size:
        gray = gray[:, loud[0]:loud[-1] + 1]
    if gray.shape[1] < side:  # short clips: silence after them
        gray = np.pad(gray, ((0, 0), (0, side - gray.shape[1])))
    return np.repeat(np.rint(gray).astype(np.uint8)[:, :, None], 3, axis=2)


def transforms(source, spec: str, size: tuple[int, int]):
    """(train, eval) transforms for a source: the sound ones for a SoundSource, else the images' (augment.build)."""
    from . import augment

    if isinstance(source, SoundSource):
        side = min(SIDE, *size)
        return (SoundAugment(side) if spec != "none" else SoundEval(side)), SoundEval(side)
    return augment.build(spec, size), augment.build_eval(size)


class SoundSource:
    """Spectrogram pictures of the clips, decoded once, by index (what FolderSource is for images)."""

    def __init__(self, clips: ImageList, side: int):
        self.root, self.classes = clips.root, list(clips.classes)
        self.paths = [p for p, _ in clips.items]
        self.labels = np.array([c for _, c in clips.items], dtype=np.int64)
        self.pictures = [picture(self.root / p, side) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.pictures[i]


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _int(gen: torch.Generator, hi: int) -> int:
    return int(torch.randint(0, max(1, hi), (), generator=gen))


def pitch(gray: torch.Tensor, factor: float) -> torch.Tensor:
    """Rows stretched by `factor` about the bottom row (0 Hz): every frequency times `factor`."""
    rows = gray.shape[0]
    up = gray.flip(0)[None, None]  # lowest frequency first
    scaled = F.interpolate(up, size=(max(1, round(rows * factor)), gray.shape[1]), mode="bilinear",
                           align_corners=False)[0, 0]
    out = torch.zeros_like(gray.flip(0))
    n = min(rows, scaled.shape[0])
    out[:n] = scaled[:n]
    return out.flip(0)


def add_noise(gray: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Noise at `level` (pixels, per position) added as power: dB levels combine by log-sum-exp."""
    k = float(np.log(10.0) / 10.0 * 80.0 / 255.0)  # pixels -> natural log of power
    return torch.logaddexp(gray * k, level * k) / k


def crop(gray: torch.Tensor, side: int, left: int) -> torch.Tensor:
    """The lowest `side` rows and `side` columns from `left` (padded with silence if short)."""
    g = gray[-side:, left:left + side]
    if g.shape[0] < side or g.shape[1] < side:
        g = F.pad(g, (0, side - g.shape[1], side - g.shape[0], 0))
    return g


@dataclass(frozen=True)
class SoundAugment:
    """The training augmentation of a picture (3xHxW BGR 0..255, grey): one seeded draw of each."""

    side: int
    gain_db: float = 6.0
    pitch: float = 0.06
    noise: float = 50.0  # highest noise level, in pixels above the floor
    mask: int = 24  # widest time / frequency mask, in pixels

    def __call__(self, img: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        gray = img[0]
        gray = pitch(gray, _uniform(gen, 1 - self.pitch, 1 + self.pitch))
        gray = gray + _uniform(gen, -self.gain_db, self.gain_db) * 255.0 / 80.0
        level = _uniform(gen, 0.0, self.noise) + 6.0 * torch.randn(gray.shape, generator=gen)
        gray = add_noise(gray.clamp(0, 255), level.clamp(0, 255))
        gray = crop(gray, self.side, _int(gen, gray.shape[1] - self.side + 1))
        t, f = _int(gen, self.mask + 1), _int(gen, self.mask + 1)
        t0, f0 = _int(gen, self.side - t + 1), _int(gen, self.side - f + 1)
        gray = gray.clone()
        gray[:, t0:t0 + t] = 0.0
        gray[f0:f0 + f, :] = 0.0
        return gray.clamp(0, 255)[None].expand(3, -1, -1).contiguous()


@dataclass(frozen=True)
class SoundEval:
    """The held-out view: the middle `side` columns of the lowest `side` rows, nothing drawn."""

    side: int

    def __call__(self, img: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        gray = img[0]
        return crop(gray, self.side, max(0, (gray.shape[1] - self.side) // 2))[None].expand(3, -1, -1).contiguous()
