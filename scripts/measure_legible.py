"""Are dreamt classes legible to a brain that did not dream them? (issue 26's acceptance)

For 5 ImageNet classes, dream each at 300 px on efficientnet_lite0, from the coffee photo and from
noise, with zoo dream's new defaults (`--look auto`: legible for a class) and with today's recipe
(`--look classic`), and ask the judge (EfficientNet-Lite1 from PyPI, scripts/judge.py; zoo never
dreams with it) for the class's probability on the whole picture and on its best half-size crop.
Prints a Markdown table; pictures and a JSON of the figures go to the output folder (kept, so a
killed run resumes). Heavy: run it with `nice` and OMP_NUM_THREADS=1 on a shared machine.

    python scripts/measure_legible.py -o legible-measure [--size 300] [--classes goldfish,volcano]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

CLASSES = ("goldfish", "volcano", "banana", "strawberry", "daisy")
LOOKS = ("auto", "classic")


def coffee(folder: Path) -> Path:
    path = folder / "coffee.png"
    if not path.exists():
        from skimage import data

        Image.fromarray(data.coffee()).save(path)
    return path


def dream_one(cls: str, start: str, look: str, size: int, folder: Path, photo: Path) -> np.ndarray:
    from zoo.dream import run

    target = folder / f"{cls}-{start}-{look}.png"
    if not target.exists():
        rec = run.new_recipe(model="efficientnet_lite0", layers=[f"prob:{cls}"], look=look,
                             init="image" if start == "photo" else "noise",
                             input_path=photo if start == "photo" else None, size=f"{size}x{size}")
        t = time.perf_counter()
        run.run_recipe(rec, target)
        print(f"  {target.name}: {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return np.asarray(Image.open(target).convert("RGB"), np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("legible-measure"))
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--classes", default=",".join(CLASSES))
    ap.add_argument("--looks", default=",".join(LOOKS))
    args = ap.parse_args()
    from judge import Judge
    from zoo.dream.brain import load_brain

    args.output.mkdir(parents=True, exist_ok=True)
    photo = coffee(args.output)
    brain = load_brain("efficientnet_lite0")
    judge = Judge()
    rows = []
    for look in args.looks.split(","):
        for cls in args.classes.split(","):
            index = brain.resolve(__import__("zoo.dream.objectives", fromlist=["x"]).parse_target(f"prob:{cls}"))
            k = int(index.channels[0])
            for start in ("photo", "noise"):
                rgb = dream_one(cls, start, look, args.size, args.output, photo)
                whole = float(judge.probabilities(rgb)[k])
                rows.append(dict(look=look, cls=cls, start=start, whole=round(whole, 3),
                                 crop=round(judge.best_crop(rgb, k), 3)))
                print(json.dumps(rows[-1]), file=sys.stderr)
                (args.output / "figures.json").write_text(json.dumps(rows, indent=1))
    print("| look | class | start | judge, whole | judge, best half crop |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {'new default' if r['look'] == 'auto' else 'classic'} | {r['cls']} | {r['start']} | "
              f"{r['whole']:.3f} | {r['crop']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
