"""Make a small data set of real sounds in class folders, for `zoo train --dataset SOUNDS/`.

Four classes from Debian packages (nothing downloaded, nothing committed):
  speech  espeak-ng saying short phrases in several voices, speeds and pitches   (espeak-ng)
  alert   the freedesktop theme's alert sounds, pitched, sped and levelled       (sound-theme-freedesktop)
  piano   short random melodies on General MIDI's piano, rendered by FluidSynth  (fluidsynth, fluid-soundfont-gm)
  drums   short random patterns on General MIDI's percussion channel             (fluidsynth, fluid-soundfont-gm)

    python scripts/make_sounds.py SOUNDS/ --per-class 30 [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

RATE = 22050
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
THEME = Path("/usr/share/sounds/freedesktop/stereo")
WORDS = ("dream", "sound", "zoo", "deep", "picture", "listen", "octave", "layer", "brain", "river", "morning",
         "seven", "blue", "window", "garden", "hello", "number", "yellow", "quiet", "paper")
VOICES = ("en", "en-us", "en-gb-scotland", "de", "fr", "es", "it", "nl")
VARIANTS = ("", "+m1", "+m3", "+f1", "+f3", "+f4")


def need(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        sys.exit(f"{tool} is not installed: apt-get install {package}")


def speech(out: Path, rng: random.Random) -> None:
    need("espeak-ng", "espeak-ng")
    voice = rng.choice(VOICES) + rng.choice(VARIANTS)
    text = " ".join(rng.sample(WORDS, rng.randint(1, 3)))
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rng.randint(120, 200)), "-p", str(rng.randint(20, 80)),
                    "-w", str(out), text], check=True, capture_output=True)


def alert(out: Path, rng: random.Random) -> None:
    """A theme sound, resampled by up to ±20% (pitch and speed together), at a random level, ≤ 2.5 s."""
    from zoo.dream import audio_io

    files = sorted(p for p in THEME.glob("*.oga") if not p.name.startswith(("audio-channel", "audio-test")))
    if not files:
        sys.exit(f"{THEME} has no sounds: apt-get install sound-theme-freedesktop")
    track = audio_io.probe(rng.choice(files))
    x = audio_io.read(track, RATE).mean(axis=0)
    factor = rng.uniform(0.8, 1.2)
    pos = np.arange(0, len(x) - 1, factor)
    y = np.interp(pos, np.arange(len(x)), x)[: int(2.5 * RATE)]
    y = y / max(1e-6, float(np.abs(y).max())) * rng.uniform(0.2, 0.9)
    audio_io.write(out, y[None].astype(np.float32), RATE)


def vlq(n: int) -> bytes:
    """A MIDI variable-length quantity."""
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def midi(notes: list[tuple[int, int]], program: int, channel: int, velocity: int) -> bytes:
    """A one-track Standard MIDI File (480 ticks a beat, 120 bpm) playing (pitch, ticks) notes in turn."""
    ev = bytearray(vlq(0) + bytes([0xC0 | channel, program]))
    for pitch, ticks in notes:
        ev += vlq(0) + bytes([0x90 | channel, pitch, velocity]) + vlq(ticks) + bytes([0x80 | channel, pitch, 0])
    ev += vlq(480) + b"\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
            + (480).to_bytes(2, "big") + b"MTrk" + len(ev).to_bytes(4, "big") + bytes(ev))


def render(out: Path, notes: list[tuple[int, int]], program: int, channel: int, rng: random.Random) -> None:
    need("fluidsynth", "fluidsynth")
    if not SOUNDFONT.is_file():
        sys.exit(f"{SOUNDFONT} is missing: apt-get install fluid-soundfont-gm")
    with tempfile.TemporaryDirectory() as tmp:
        mid = Path(tmp) / "tune.mid"
        mid.write_bytes(midi(notes, program, channel, rng.randint(60, 120)))
        subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-r", str(RATE), "-F", str(out), str(SOUNDFONT), str(mid)],
                       check=True, capture_output=True)


def piano(out: Path, rng: random.Random) -> None:
    root = rng.randint(48, 72)
    steps = (0, 2, 4, 5, 7, 9, 11, 12)
    notes = [(root + rng.choice(steps), rng.choice((120, 240, 480))) for _ in range(rng.randint(3, 6))]
    render(out, notes, 0, 0, rng)


def drums(out: Path, rng: random.Random) -> None:
    kit = (35, 36, 38, 40, 42, 44, 46, 49, 51, 41, 45, 48, 39, 54, 56)
    notes = [(rng.choice(kit), rng.choice((120, 240))) for _ in range(rng.randint(4, 10))]
    render(out, notes, 0, 9, rng)


MAKERS = {"speech": speech, "alert": alert, "piano": piano, "drums": drums}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for name, make in MAKERS.items():
        folder = args.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(args.per_class):
            make(folder / f"{name}-{i:03d}.wav", random.Random(f"{args.seed}-{name}-{i}"))
        print(f"{folder}: {args.per_class} sounds")


if __name__ == "__main__":
    main()
