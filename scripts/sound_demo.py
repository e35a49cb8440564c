"""The sound demo of docs/sound.md: a phrase from espeak-ng, its dream, both as small Opus files in
docs/sound/ and their spectrograms (computed from the files, as anyone listening would hear them) in
docs/img/.

    python scripts/sound_demo.py [--work DIR]      # DIR keeps voice.wav and voice-dream.wav (made if missing)
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXT = "sound dreams, deep in the zoo"
PICTURE = dict(n_fft=1024, hop=128)  # finer in time than the dream's hop, for the eye


def make(work: Path) -> tuple[Path, Path]:
    src, out = work / "voice.wav", work / "voice-dream.wav"
    if not src.exists():
        subprocess.run(["espeak-ng", "-v", "en+f3", "-s", "140", "-w", str(src), TEXT], check=True)
    if not out.exists():
        subprocess.run(["zoo", "dream", str(src), "-o", str(out), "--seed", "1"], check=True)
    return src, out


def picture(path: Path, target: Path) -> None:
    """The spectrogram of a sound file as a PNG, 3 pixels high per row of the lower half (0 to 5.5 kHz)."""
    from PIL import Image
    from zoo.dream import audio_io
    from zoo.dream import spectrogram as spec

    track = audio_io.probe(path)
    x = audio_io.read(track).mean(axis=0)
    g = spec.Geometry(PICTURE["n_fft"], PICTURE["hop"])
    gray = spec.picture(spec.to_db(spec.stft(x, g)), g, track.rate, spec.top_db(float(np.abs(x).max()), g))
    gray = gray[gray.shape[0] // 2:]
    im = Image.fromarray(np.rint(255 - gray).astype(np.uint8), "L")  # dark on light, as printed
    im.resize((im.width * 2, im.height), Image.Resampling.NEAREST).save(target, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("sound-demo"))
    args = ap.parse_args()
    args.work.mkdir(exist_ok=True)
    from zoo.dream import audio_io

    (ROOT / "docs" / "sound").mkdir(exist_ok=True)
    for path in make(args.work):
        track = audio_io.probe(path)
        audio_io.write(ROOT / "docs" / "sound" / f"{path.stem}.ogg", audio_io.read(track), track.rate,
                       audio_io.read_comment(path) or "")  # the dream's record goes along
        picture(path, ROOT / "docs" / "img" / f"sound-{path.stem}.png")
        print(f"docs/sound/{path.stem}.ogg, docs/img/sound-{path.stem}.png")


if __name__ == "__main__":
    main()
