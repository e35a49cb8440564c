"""Balanced mixes and guides, measured outside zoo (issue 26's acceptance).

Mixes: the coffee photo dreamt on efficientnet_lite0 with a shallow and a deep blob at 1:1, with
zoo dream's new default (each term divided by its pull) and as recipes did before (raw sum), and
each blob alone. Each blob's activation gain (L2 norm on the dream over the norm on the photo) is
read by OpenCV's dnn from the PNGs; the mix's gain over the blob's gain alone should be within 2x.

Guides: the photo dreamt unguided and guided by a chromatic gradient (zoo's `--init gradient`
picture), with the old best-match guide and the new default (the guide's features in place). The
colour layout is the 8x8 grid of mean colours; reported is its mean absolute difference from the
guide's grid (0..255, lower is closer to the guide).

    python scripts/measure_mixes.py -o mixes-measure
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_channels import MODELS  # noqa: E402
from measure_legible import coffee  # noqa: E402

SHALLOW, DEEP = "block4/output", "block10/output"
SIZE = 224


def dream(folder: Path, name: str, photo: Path, layers: list[str], look: str, guide: Path | None = None) -> Path:
    from zoo.dream import run

    target = folder / f"{name}.png"
    if not target.exists():
        rec = run.new_recipe(model="efficientnet_lite0", layers=layers, look=look, input_path=photo,
                             guide_path=guide, size=f"{SIZE}x{SIZE}")
        run.run_recipe(rec, target)
    return target


def norm_at(path: Path, blob: str) -> float:
    net = cv2.dnn.readNetFromCaffe(str(MODELS / "deploy.prototxt"), str(MODELS / "efficientnet_lite0.caffemodel"))
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    net.setInput(cv2.dnn.blobFromImage(bgr, 1.0, (bgr.shape[1], bgr.shape[0]), (127.0, 127.0, 127.0)))
    return float(np.linalg.norm(net.forward(blob)))


def grid(path: Path, size: int = SIZE, cells: int = 8) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR), np.float64)
    return rgb.reshape(cells, size // cells, cells, size // cells, 3).mean(axis=(1, 3))


def mixes(folder: Path, photo: Path) -> None:
    start = folder / "start.png"
    Image.open(photo).convert("RGB").resize((SIZE, SIZE), Image.LANCZOS).save(start)
    alone = {b: dream(folder, f"alone-{i}", photo, [b], "auto") for i, b in enumerate((SHALLOW, DEEP))}
    print("| mix | blob | gain alone | gain in the mix | mix / alone |\n|---|---|---|---|---|")
    for look, label in (("auto", "new default (balanced)"), ("classic", "as before (raw sum)")):
        mix = dream(folder, f"mix-{look}", photo, [SHALLOW, DEEP], look)
        for b in (SHALLOW, DEEP):
            base = norm_at(start, b)
            ga, gm = norm_at(alone[b], b) / base, norm_at(mix, b) / base
            print(f"| {label} | {b} | {ga:.2f} | {gm:.2f} | {gm / ga:.2f} |")


def guides(folder: Path, photo: Path) -> None:
    from zoo.dream.starts import gradient

    guide = folder / "guide-gradient.png"
    Image.fromarray(gradient((SIZE, SIZE), "", np.random.default_rng(0)).astype(np.uint8)).save(guide)
    target = grid(guide)
    print("\n| dream | colour-layout distance to the guide (mean abs, 0..255) |\n|---|---|")
    for name, look, g in (("unguided", "auto", None), ("guided as before (best match)", "classic", guide),
                          ("guided, new default (features in place)", "auto", guide)):
        path = dream(folder, f"guide-{look}-{g is not None}", photo, [DEEP], look, g)
        print(f"| {name} | {np.abs(grid(path) - target).mean():.1f} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", type=Path, default=Path("mixes-measure"))
    args = ap.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    photo = coffee(args.output)
    mixes(args.output, photo)
    guides(args.output, photo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
