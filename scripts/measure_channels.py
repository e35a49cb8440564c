"""Are a channel atlas's pictures selective? (issue 26's acceptance, measured outside zoo)

Reads the PNGs `zoo atlas --channels BLOB` wrote and runs them through OpenCV's dnn on the Caffe
files of efficientnet_lite0 (../shared/models), not through the torch code that made them. For
each channel j: its own picture's mean activation A[j, j] against the mean of the other channels'
pictures on channel j. A channel is selective when A[j, j] >= 3 x that mean (and A[j, j] > 0).
Also printed: the stricter share against the strongest other picture.

    python scripts/measure_channels.py atlas-efficientnet_lite0/channels-block7-output --blob block7/output
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "efficientnet_lite0"


def activations(folder: Path, blob: str, model: Path = MODELS) -> np.ndarray:
    """A[i, j]: mean activation of channel j on picture ch{i}.png, from OpenCV dnn."""
    net = cv2.dnn.readNetFromCaffe(str(model / "deploy.prototxt"), str(model / "efficientnet_lite0.caffemodel"))
    files = sorted(folder.glob("ch*.png"))
    rows = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        x = cv2.dnn.blobFromImage(bgr, 1.0, (bgr.shape[1], bgr.shape[0]), (127.0, 127.0, 127.0), swapRB=False)
        net.setInput(x)
        out = net.forward(blob)[0]
        rows.append(out.reshape(out.shape[0], -1).mean(axis=1))
    return np.array(rows)


def selectivity(a: np.ndarray, factor: float = 3.0) -> tuple[float, float, np.ndarray]:
    n = a.shape[0]
    own = a[np.arange(n), np.arange(n)]
    others = (a[:, :n].sum(axis=0) - own) / (n - 1)
    strongest = np.array([np.max(np.delete(a[:, j], j)) for j in range(n)])
    ok = (own > 0) & (own >= factor * others)
    strict = (own > 0) & (own >= factor * strongest)
    return float(ok.mean()), float(strict.mean()), own / np.maximum(np.abs(others), 1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--blob", required=True)
    args = ap.parse_args()
    a = activations(args.folder, args.blob)
    share, strict, ratio = selectivity(a)
    print(f"{args.blob}: {a.shape[0]} pictures; selective (own >= 3x the others' mean): {share:.1%}; "
          f"own >= 3x the strongest other: {strict:.1%}; median ratio {np.median(ratio):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
