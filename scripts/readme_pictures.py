"""Remake the README's pictures from the README's own commands and check they are bit-identical.

For each picture under docs/img that a README command produces, the exact command line is read out
of README.md or docs/*.md and run as a subprocess (`zoo ...`, the `zoo` beside this Python) in a temporary folder
with its own $ZOO_HOME, after the README's set-up lines (the coffee photo, the test clip). A PNG
result becomes the page's JPEG with fixed Pillow settings (JPEG_SETTINGS, also in the captions);
WebP animations are written by the command itself. The sha256 of the result is compared with the
committed file; `--update` writes the results into docs/img instead.

    python scripts/readme_pictures.py [--update] [--only dream-pan.webp ...] [--keep DIR]

Prints one line per picture: name, sha256, and same / DIFFERS / updated; exits 1 if any differs.
Not the studio screenshots (tests/test_studio_browser.py takes those).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
IMG = ROOT / "docs" / "img"
# PNG -> JPEG for the page: no EXIF, ICC or recipe; baseline, Huffman tables optimised, 4:2:0 chroma.
JPEG_SETTINGS = {"format": "JPEG", "quality": 82, "subsampling": 2, "optimize": True, "progressive": False}
COFFEE = ("python -c \"from skimage import data; from PIL import Image; "
          "Image.fromarray(data.coffee()).save('coffee.png')\"")
CLIP = "python tests/video_helpers.py pan.mp4"
THREADS = 2  # torch's default on the 2-core machines the pictures were first made on


@dataclass(frozen=True)
class Picture:
    name: str  # the file under docs/img
    command: str  # how the README's command line starts (the whole line is run)
    result: str  # what the command writes, relative to the folder it runs in
    setup: tuple[str, ...] = (COFFEE,)  # README lines run before it, the same way


PICTURES = (
    Picture("dream-coffee-block10.jpg", "zoo dream coffee.png -o coffee-dream.png ", "coffee-dream.png"),
    Picture("dream-coffee-goldfish.jpg", "zoo dream coffee.png -o coffee-goldfish.png ", "coffee-goldfish.png"),
    Picture("atlas-efficientnet_lite0.jpg", "zoo atlas --model efficientnet_lite0 --start noise ",
            "atlas-efficientnet_lite0/atlas.png"),
    Picture("zoom-coffee.webp", "zoo dream coffee.png --size 200 ", "zoom-coffee.webp"),
    Picture("dream-pan.webp", "zoo dream pan.mp4 ", "docs/img/dream-pan.webp", setup=(CLIP,)),
    Picture("legible-goldfish-photo.jpg", "zoo dream coffee.png --size 300x300 ", "goldfish-photo.png"),
    Picture("legible-goldfish-noise.jpg", "zoo dream --init noise --size 300x300 ", "goldfish-noise.png", setup=()),
    Picture("channels-block7.jpg",
            "zoo atlas --model efficientnet_lite0 --channels block7/output -o atlas-efficientnet_lite0",
            "atlas-efficientnet_lite0/channels-block7-output.png", setup=()),
)


def pages_text() -> str:
    """README.md and the guides under docs/, where the pictures' commands live."""
    return "\n".join(p.read_text(encoding="utf-8") for p in [README, *sorted((ROOT / "docs").glob("*.md"))])


def readme_line(start: str, text: str) -> str:
    """The one command line of the pages that starts with `start` (a trailing `# comment` cut off)."""
    found = {shlex.join(shlex.split(line.strip(), comments=True)) for line in text.splitlines()
             if line.strip().startswith(start.strip())}
    if len(found) != 1:
        raise SystemExit(f"README.md, docs/*.md: expected one command line starting {start.strip()!r}, "
                         f"found {len(found)}")
    return found.pop()


def argv(line: str) -> list[str]:
    """The README's words, with `zoo` and `python` the ones of this environment and tests/ from this checkout."""
    words = shlex.split(line)
    exe = Path(sys.executable)
    if words[0] == "zoo":
        zoo = exe.parent / "zoo"
        words[:1] = [str(zoo)] if zoo.exists() else [str(exe), "-m", "zoo.cli"]
    elif words[0] == "python":
        words[0] = str(exe)
    return [str(ROOT / w) if w.startswith("tests/") else w for w in words]


def to_page(picture: Picture, produced: Path) -> bytes:
    """The bytes that go under docs/img: the PNG as JPEG (JPEG_SETTINGS), anything else as written."""
    if picture.name.endswith(".jpg"):
        buf = io.BytesIO()
        with Image.open(produced) as im:
            im.convert("RGB").save(buf, **JPEG_SETTINGS)
        return buf.getvalue()
    return produced.read_bytes()


def run(line: str, cwd: Path, env: dict[str, str]) -> None:
    print(f"  $ {line}", flush=True)
    done = subprocess.run(argv(line), cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{line}: exit {done.returncode}\n{done.stderr[-3000:]}")


def make(picture: Picture, text: str, work: Path, env: dict[str, str]) -> bytes:
    folder = work / Path(picture.name).stem
    (folder / Path(picture.result).parent).mkdir(parents=True, exist_ok=True)
    for line in picture.setup:
        run(readme_line(line, text), folder, env)
    run(readme_line(picture.command, text), folder, env)
    return to_page(picture, folder / picture.result)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--update", action="store_true", help="write the pictures into docs/img")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="just these pictures (file names under docs/img)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    text = pages_text()
    chosen = [p for p in PICTURES if not args.only or p.name in args.only]
    if args.only and len(chosen) != len(args.only):
        raise SystemExit(f"--only: known pictures are {', '.join(p.name for p in PICTURES)}")
    with tempfile.TemporaryDirectory(prefix="zoo-readme-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        # oneDNN's sums follow the thread count too: the pages' pictures are made with THREADS threads
        env = {**os.environ, "ZOO_HOME": str(work / "zoo_home"), "OMP_NUM_THREADS": str(THREADS)}
        env.pop("ZOO_MIRROR", None)
        print(f"recipe: python scripts/readme_pictures.py{' --update' if args.update else ''}; commands from "
              f"README.md and docs/*.md; JPEG {JPEG_SETTINGS}; {THREADS} threads; ZOO_HOME={env['ZOO_HOME']}",
              flush=True)
        bad = 0
        for picture in chosen:
            t0 = time.perf_counter()
            print(f"{picture.name}:", flush=True)
            data = make(picture, text, work, env)
            digest = hashlib.sha256(data).hexdigest()
            target = IMG / picture.name
            if args.update:
                from zoo.io import write_bytes_atomic

                write_bytes_atomic(target, data)
                state = "updated"
            else:
                same = target.is_file() and target.read_bytes() == data
                state = "same" if same else "DIFFERS"
                bad += not same
            print(f"{picture.name:30} sha256 {digest}  {state}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
