"""Sound as a picture and back: STFT, log magnitude in the brain's 0..255 pixel range, mel rows.

The picture of a chunk is its log-magnitude spectrogram: one column per STFT frame, one row per
frequency (the highest on top, as people draw spectrograms), `db_range` dB below the track's top
level mapped onto 0..255. With `freq_scale="mel"` the rows are spaced evenly in mel instead of Hz
(interpolated from the linear bins). A dream changes pixels; `dreamt_db` turns the change back into
decibels on the input's own bins, so a picture that was not changed gives its input back exactly
(also below the floor and above the top, which the picture clips), whatever the row spacing.
Pure functions over numpy arrays, with torch.stft doing the transforms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

FREQ_SCALES = ("linear", "mel")
EPS = 1e-10  # magnitude floor before the log (-200 dB)


@dataclass(frozen=True)
class Geometry:
    """The STFT and the picture mapping: every number that decides how a sound becomes pixels."""

    n_fft: int = 1024
    hop: int = 512
    freq_scale: str = "linear"
    db_range: float = 80.0

    @property
    def bins(self) -> int:
        return self.n_fft // 2 + 1

    def frames(self, samples: int) -> int:
        """STFT frames (columns) of `samples` samples, centred frames as torch.stft makes them."""
        return 1 + samples // self.hop


def window(n_fft: int) -> torch.Tensor:
    """The periodic Hann window (what scipy.signal.stft's 'hann' is)."""
    return torch.hann_window(n_fft, periodic=True, dtype=torch.float64).float()


def stft(x: np.ndarray, g: Geometry) -> np.ndarray:
    """Complex STFT (bins x frames) of a mono float signal, centred frames, reflect-padded ends.

    Signals shorter than half a window are zero-padded first (reflection needs that many samples)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.numel() <= g.n_fft // 2:
        t = torch.nn.functional.pad(t, (0, g.n_fft // 2 + 1 - t.numel()))
    s = torch.stft(t, g.n_fft, g.hop, window=window(g.n_fft), center=True, pad_mode="reflect",
                   return_complex=True)
    return s[:, :g.frames(x.shape[-1])].numpy()


def istft(spec: np.ndarray, g: Geometry, length: int) -> np.ndarray:
    """The signal of `length` samples whose STFT is nearest `spec` (least squares overlap-add)."""
    s = torch.from_numpy(np.ascontiguousarray(spec, dtype=np.complex64))
    frames_needed = g.frames(max(length, g.n_fft // 2 + 1))
    if s.shape[1] < frames_needed:
        s = torch.nn.functional.pad(s, (0, frames_needed - s.shape[1]))
    n = max(length, g.n_fft // 2 + 1)
    y = torch.istft(s, g.n_fft, g.hop, window=window(g.n_fft), center=True, length=n)
    return y[:length].numpy()


def top_db(peak: float, g: Geometry) -> float:
    """The level mapped to pixel 255: a constant signal at the track's peak amplitude (no bin of the
    track can be louder), so the picture's brightness follows the track, not its loudness setting."""
    return float(20.0 * np.log10(max(peak, 1e-6) * float(window(g.n_fft).sum())))


def to_db(spec: np.ndarray) -> np.ndarray:
    return (20.0 * np.log10(np.maximum(np.abs(spec), EPS))).astype(np.float32)


def mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_positions(bins: int, rate: int) -> np.ndarray:
    """For each mel row (lowest first), its fractional linear bin: rows evenly spaced in mel from 0 Hz
    to Nyquist, as many as there are bins."""
    top = mel(rate / 2)
    hz = 700.0 * (10.0 ** (np.linspace(0.0, top, bins) / 2595.0) - 1.0)
    return hz / (rate / 2) * (bins - 1)


def _interp_rows(a: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Rows of `a` (rows x columns) at fractional row positions, linearly interpolated."""
    lo = np.clip(np.floor(positions).astype(np.int64), 0, a.shape[0] - 1)
    hi = np.minimum(lo + 1, a.shape[0] - 1)
    f = (positions - lo).astype(np.float32)[:, None]
    return a[lo] * (1.0 - f) + a[hi] * f


def to_rows(lin: np.ndarray, g: Geometry, rate: int) -> np.ndarray:
    """Linear-bin rows to the picture's rows (mel or linear), still lowest frequency first."""
    return _interp_rows(lin, mel_positions(lin.shape[0], rate)) if g.freq_scale == "mel" else lin


def from_rows(rows: np.ndarray, g: Geometry, rate: int) -> np.ndarray:
    """The inverse of to_rows: the picture's rows back onto linear bins (lowest first)."""
    if g.freq_scale != "mel":
        return rows
    pos = mel_positions(rows.shape[0], rate)  # increasing: the bin of each mel row
    where = np.interp(np.arange(rows.shape[0], dtype=np.float64), pos, np.arange(rows.shape[0], dtype=np.float64))
    return _interp_rows(rows, where)


def picture(db: np.ndarray, g: Geometry, rate: int, top: float) -> np.ndarray:
    """The grey picture (rows x frames, float 0..255, highest frequency on top) of a dB spectrogram."""
    p = (to_rows(db, g, rate) - (top - g.db_range)) * np.float32(255.0 / g.db_range)
    np.clip(p, 0.0, 255.0, out=p)
    return np.ascontiguousarray(p[::-1], dtype=np.float32)


def scaled(shape: tuple[int, int], scale: float) -> tuple[int, int]:
    """The (rows, columns) of a picture dreamt at `scale` of its size (at least one of each)."""
    return max(1, int(round(shape[0] * scale))), max(1, int(round(shape[1] * scale)))


def resized(gray: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A grey picture resampled to `shape`: bilinear, antialiased when shrinking (the same numbers on
    every CPU run). The picture itself when it has that shape already."""
    if gray.shape == tuple(shape):
        return gray
    t = torch.from_numpy(np.ascontiguousarray(gray, dtype=np.float32))[None, None]
    shrink = shape[0] < gray.shape[0] or shape[1] < gray.shape[1]
    out = torch.nn.functional.interpolate(t, size=tuple(shape), mode="bilinear", align_corners=False, antialias=shrink)
    return out[0, 0].numpy()


def to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def from_rgb(rgb: np.ndarray) -> np.ndarray:
    return rgb.mean(axis=2, dtype=np.float32)


def dreamt_db(db_in: np.ndarray, before: np.ndarray, after: np.ndarray, g: Geometry, rate: int, top: float,
              mix: float = 1.0) -> np.ndarray:
    """The input's dB spectrogram changed by what the dream did to its picture (`before` -> `after`).

    The change is taken in dB on the picture's rows and carried back to the linear bins; bins the
    picture clipped keep their own level plus the change (a bin under the floor that the dream lit
    starts from the floor). `mix` scales the change: the dry/wet mix, in dB."""
    delta_rows = (after[::-1] - before[::-1]) * np.float32(g.db_range / 255.0 * mix)
    delta = from_rows(delta_rows, g, rate)
    floor = top - g.db_range
    lit = (db_in < floor) & (delta > 1e-3)
    return np.where(lit, floor, db_in) + delta


def resynth_magnitude(db: np.ndarray) -> np.ndarray:
    return (10.0 ** (db.astype(np.float64) / 20.0)).astype(np.float32)
