"""Does a class dream with a brain trained on sounds move a sound toward that class, as heard from the file?

Makes a fresh espeak-ng phrase (not in the training set), dreams it toward CLASS with
`zoo dream --model MODEL --layer prob:CLASS` at the training geometry (--n-fft 512 --hop 128, 22050 Hz),
then measures the class probability on both files with ONNX Runtime (the exported model.onnx) fed a
spectrogram computed independently: scipy's STFT, this script's own dB mapping, the lowest 128 rows.

    python scripts/check_sound_brain.py MODEL CLASS [--text "..."] [--rounds 2] [--iterations 10] [--picture-scale 1]

At --picture-scale 1 (the spectrogram dreamt at full size) the class rises far more than at the sound
default of 0.5 (piano x99 against x1.8 on soundbrain, 2026-12-07): a class's fine texture is made at full size.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import av
import numpy as np
from scipy import signal

N_FFT, HOP, ROWS, DB_RANGE = 512, 128, 128, 80.0


def samples(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        parts = []
        for f in c.decode(s):
            a = f.to_ndarray().astype(np.float64)
            if not f.format.is_planar:
                a = a.reshape(-1, s.channels).T
            parts.append(a / (32768.0 if f.format.name.startswith("s16") else 1.0))
    return np.concatenate(parts, axis=1).mean(axis=0)


def picture(x: np.ndarray) -> np.ndarray:
    _, _, z = signal.stft(x, window="hann", nperseg=N_FFT, noverlap=N_FFT - HOP, boundary="even", padded=True)
    win = signal.get_window("hann", N_FFT).sum()
    db = 20 * np.log10(np.maximum(np.abs(z) * win, 1e-10))
    top = 20 * np.log10(np.abs(x).max() * win)
    pic = np.clip((db - (top - DB_RANGE)) * 255.0 / DB_RANGE, 0, 255)[::-1]
    return pic[-ROWS:]


def probabilities(onnx: Path, pic: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    x = np.repeat((pic - 127.0)[None, None].astype(np.float32), 3, axis=1)  # grey BGR, mean 127
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    return out.reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("cls")
    ap.add_argument("--text", default="a brain that hears dreams of other sounds")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--step", type=float, default=3.0)
    ap.add_argument("--picture-scale", type=float, default=1.0)
    args = ap.parse_args()
    from zoo import api

    card, paths = api.resolve(args.model)
    onnx = paths["prototxt"].parent / "model.onnx"
    names = api.labels_for(card, paths)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "voice.wav", Path(tmp) / "toward.wav"
        subprocess.run(["espeak-ng", "-w", str(src), args.text], check=True)
        subprocess.run(["zoo", "dream", str(src), "-o", str(out), "--model", args.model, "--layer",
                        f"prob:{args.cls}", "--n-fft", str(N_FFT), "--hop", str(HOP), "--rounds", str(args.rounds),
                        "--iterations", str(args.iterations), "--step", str(args.step),
                        "--picture-scale", str(args.picture_scale)], check=True)
        before, after = (probabilities(onnx, picture(samples(p))) for p in (src, out))
    print("class        before  after")
    for i, name in enumerate(names[: len(before)]):  # the exported labels, in the net's order
        print(f"{name:<12} {before[i]:.3g}   {after[i]:.3g}")


if __name__ == "__main__":
    main()
