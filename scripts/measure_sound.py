"""Does a sound dream at the defaults survive resynthesis, and what does it cost? Old and new defaults side by side.

For each `--picture-scale` (1: the spectrogram dreamt at full size, the defaults before 2026-12-07; 0.5: the
defaults since) and each phase mode, dreams real speech (espeak-ng; freedesktop's chimes are too short for
block10's receptive field at this geometry) with
`zoo dream` at the sound defaults and reports the CPU seconds of the dream against the sound's length, and
the default blob's activation on the output against the input's, measured from the files by code that is
not zoo's: PyAV decodes, scipy's STFT and this script's dB mapping make the picture, OpenCV dnn runs the
shared Caffe efficientnet_lite0.

    python scripts/measure_sound.py [--scales 1,0.5] [--phases original,griffinlim] [--blob block10/output]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
from check_sound_brain import samples  # PyAV's frames, channels mixed (this script's folder is on sys.path)
from scipy import signal

ROOT = Path(__file__).resolve().parents[1]
EFF = ROOT.parent / "shared" / "models" / "efficientnet_lite0"
N_FFT, HOP, DB_RANGE = 1024, 512, 80.0  # the sound defaults' geometry


def picture(x: np.ndarray) -> np.ndarray:
    """scipy's STFT in dB, DB_RANGE under a constant signal at the peak mapped onto 0..255, highest row on top."""
    _, _, z = signal.stft(x, window="hann", nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True)
    win = signal.get_window("hann", N_FFT).sum()
    db = 20 * np.log10(np.maximum(np.abs(z) * win, 1e-10))
    top = 20 * np.log10(np.abs(x).max() * win)
    return np.clip((db - (top - DB_RANGE)) * 255.0 / DB_RANGE, 0, 255)[::-1].astype(np.float32)


def activation(pic: np.ndarray, blob: str) -> float:
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(EFF / "deploy.prototxt"), str(EFF / "efficientnet_lite0.caffemodel"))
    rgb = np.repeat(pic[:, :, None], 3, axis=2)
    net.setInput(cv2.dnn.blobFromImage(rgb, 1.0, (pic.shape[1], pic.shape[0]), (127.0, 127.0, 127.0)))
    return float(np.mean(net.forward(blob) ** 2))


def dream(src: Path, out: Path, scale: float, phase: str, blob: str) -> float:
    """`zoo dream` at the sound defaults; the CPU seconds it took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["zoo", "dream", str(src), "-o", str(out), "--model", "efficientnet_lite0", "--layer", blob,
                    "--picture-scale", str(scale), "--phase", phase, "--seed", "1"], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def speech(tmp: Path) -> Path:
    path = tmp / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(path), "a dream of sound, deep in the zoo"], check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default="1,0.5")
    ap.add_argument("--phases", default="original,griffinlim")
    ap.add_argument("--blob", default="block10/output", help="efficientnet_lite0's default blob")
    args = ap.parse_args()
    print("sound        phase       scale  seconds  cpu_s  audio_s/cpu_s  activation_out/in")
    with tempfile.TemporaryDirectory() as tmp:
        for src in [speech(Path(tmp))]:
            x = samples(src)
            rate = av.open(str(src)).streams.audio[0].rate
            base = activation(picture(x), args.blob)
            for phase in args.phases.split(","):
                for scale in (float(s) for s in args.scales.split(",")):
                    out = Path(tmp) / f"out-{phase}-{scale}.wav"
                    cpu = dream(src, out, scale, phase, args.blob)
                    gain = activation(picture(samples(out)), args.blob) / base
                    print(f"{src.stem:<12} {phase:<11} {scale:<6g} {len(x) / rate:7.2f} {cpu:6.1f} "
                          f"{len(x) / rate / cpu:14.3f} {gain:18.2f}", flush=True)


if __name__ == "__main__":
    main()
