"""A phase for a dreamt magnitude: the input's own (DeepDreamEffect's way) or one rebuilt for it.

`griffin_lim` is the fast Griffin-Lim of Perraudin, Balazs and Søndergaard (2013): the usual
projection between consistent spectrograms and the wanted magnitude, with an inertial step
(momentum 0.99) that converges in a fraction of the plain algorithm's iterations. It starts from
the input's phase, which is already consistent wherever the dream changed nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from zoo.dream.spectrogram import Geometry, istft, stft

PHASES = ("original", "griffinlim")
MOMENTUM = 0.99
ITERATIONS = 32


def original(magnitude: np.ndarray, phase_of: np.ndarray, g: Geometry, length: int) -> np.ndarray:
    """The dreamt magnitude with the input STFT's phase, back to samples."""
    unit = phase_of / np.maximum(np.abs(phase_of), 1e-20)
    unit[np.abs(phase_of) == 0] = 1.0
    return istft(magnitude * unit, g, length)


def griffin_lim(magnitude: np.ndarray, start: np.ndarray, g: Geometry, length: int, *,
                iterations: int = ITERATIONS, momentum: float = MOMENTUM) -> np.ndarray:
    """Samples whose STFT magnitude is near `magnitude`, by fast Griffin-Lim from `start`'s phase."""
    unit = start / np.maximum(np.abs(start), 1e-20)
    x = magnitude * unit
    previous = np.zeros_like(x)
    for _ in range(iterations):
        t = stft(istft(x, g, length), g)[:, :x.shape[1]]
        c = t + momentum * (t - previous)
        previous = t
        x = magnitude * (c / np.maximum(np.abs(c), 1e-20))
    return istft(x, g, length)


RESYNTH: dict[str, Callable[..., np.ndarray]] = {
    "original": lambda mag, spec, g, n, iterations: original(mag, spec, g, n),
    "griffinlim": lambda mag, spec, g, n, iterations: griffin_lim(mag, spec, g, n, iterations=iterations),
}
