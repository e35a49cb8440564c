"""Real sounds for the sound tests, made at test time from Debian's packages (never committed), and an
independent spectrogram (scipy's STFT, this file's own dB mapping) to measure dreams with.

CI installs espeak-ng and sound-theme-freedesktop (.ci/run); a machine without them skips with the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from scipy import signal

FREEDESKTOP = Path("/usr/share/sounds/freedesktop/stereo")
DB_RANGE = 80.0


def espeak(path: Path, text: str = "dream a little dream", voice: str = "en") -> Path:
    """Speech from espeak-ng (mono, 22050 Hz WAV)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


def theme_sound(name: str) -> Path:
    """A sound of the freedesktop theme (stereo Ogg Vorbis, 44.1 kHz)."""
    path = FREEDESKTOP / f"{name}.oga"
    if not path.is_file():
        pytest.skip(f"{path} is missing (apt-get install sound-theme-freedesktop)")
    return path


def flac(src: Path, path: Path) -> bytearray:
    """The sound re-encoded as FLAC by PyAV (its STREAMINFO declares the length)."""
    with av.open(str(src)) as i, av.open(str(path), "w") as o:
        s = o.add_stream("flac", rate=i.streams.audio[0].rate)
        for f in i.decode(i.streams.audio[0]):
            f.pts = None
            for p in s.encode(f):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return bytearray(path.read_bytes())


def days_long(src: Path, path: Path) -> bytes:
    """The sound as FLAC whose STREAMINFO's 36-bit sample count is set to its largest (36 days at 22050 Hz)."""
    b = flac(src, path)
    v = int.from_bytes(b[18:26], "big") | (2 ** 36 - 1)
    return bytes(b[:18] + v.to_bytes(8, "big") + b[26:])


def read(path: Path) -> tuple[np.ndarray, int]:
    """(channels x samples float64, rate), decoded by PyAV's frames alone (no resampler)."""
    parts = []
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        rate, channels = s.rate, s.channels
        for f in c.decode(s):
            a = f.to_ndarray().astype(np.float64)
            if not f.format.is_planar:
                a = a.reshape(-1, channels).T
            a = a / {"s16": 32768.0, "s32": 2.0 ** 31}.get(f.format.name.rstrip("p"), 1.0)
            parts.append(a)
    return np.concatenate(parts, axis=1), rate


def picture(x: np.ndarray, n_fft: int, hop: int, peak: float | None = None) -> np.ndarray:
    """The grey spectrogram picture of a mono signal (rows: highest frequency on top), by scipy's STFT:
    magnitude in dB, DB_RANGE dB below a constant signal at the peak amplitude mapped onto 0..255."""
    peak = float(np.abs(x).max()) if peak is None else peak
    _, _, z = signal.stft(x, window="hann", nperseg=n_fft, noverlap=n_fft - hop, boundary="even", padded=True)
    win_sum = signal.get_window("hann", n_fft).sum()
    db = 20 * np.log10(np.maximum(np.abs(z) * win_sum, 1e-10))  # scipy divides by the window's sum
    top = 20 * np.log10(peak * win_sum)
    return np.clip((db - (top - DB_RANGE)) * 255.0 / DB_RANGE, 0, 255)[::-1].astype(np.float32)


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((out - ref) ** 2), 1e-30)))
