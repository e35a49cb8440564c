"""Images per second through ONNX Runtime (our converted ONNX) against OpenCV dnn (the Caffe files).

Same model, same preprocessed images, batch 1 and 16; prints the ratio ORT / OpenCV.

    python scripts/bench_classify.py [--models efficientnet_lite0 mtcnn_det3] [--seconds 2]

mtcnn_det3 is taken from $ZOO_MIRROR, or from ../shared/models/mtcnn when no mirror is set.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table
from skimage import data

SHARED = Path(__file__).resolve().parents[2] / "shared"


def _shared_mirror() -> None:
    """Point $ZOO_MIRROR at a temporary copy of ../shared's MTCNN files laid out as a mirror."""
    if os.environ.get("ZOO_MIRROR") or not (SHARED / "models" / "mtcnn").is_dir():
        return
    root = Path(tempfile.mkdtemp(prefix="zoo-mirror-"))
    for i in (1, 2, 3):
        d = root / f"mtcnn_det{i}"
        d.mkdir()
        for ext in ("prototxt", "caffemodel"):
            shutil.copy(SHARED / "models" / "mtcnn" / f"det{i}.{ext}", d / f"det{i}.{ext}")
    os.environ["ZOO_MIRROR"] = str(root)


def _rate(fn: Callable[[], object], n_images: int, seconds: float) -> float:
    fn()  # warm up (allocations, graph optimisation)
    runs, start = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            return runs * n_images / elapsed


def bench(name: str, batches: list[int], seconds: float) -> list[tuple[str, int, float, float]]:
    from zoo import api, cache
    from zoo.providers import make_session, select_providers

    card, paths = api.resolve(name)
    onnx_path = cache.ensure_onnx(card, paths)
    pp = api.preprocess_for(card, paths)
    photos = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    blobs = np.stack([pp.prepare(Image.fromarray(p)) for p in photos])
    session = make_session(onnx_path, select_providers())
    input_name = session.get_inputs()[0].name
    net = cv2.dnn.readNetFromCaffe(str(paths["prototxt"]), str(paths["weights"]))
    rows = []
    for b in batches:
        x = np.ascontiguousarray(np.resize(blobs, (b, *blobs.shape[1:])), np.float32)

        def run_ort(x: np.ndarray = x) -> object:
            return session.run([card.output], {input_name: x})

        def run_cv(x: np.ndarray = x) -> object:
            net.setInput(x)
            return net.forward(card.output)

        ort_out, cv_out = run_ort()[0], run_cv()
        diff = float(np.abs(ort_out.reshape(b, -1) - cv_out.reshape(b, -1)).max())
        if diff > 1e-3:
            raise SystemExit(f"{name}: ORT and OpenCV disagree by {diff:.2e} on {card.output}; not benchmarking")
        rows.append((name, b, _rate(run_ort, b, seconds), _rate(run_cv, b, seconds)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["efficientnet_lite0", "mtcnn_det3"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = ap.parse_args()
    _shared_mirror()
    from zoo.providers import select_providers

    table = Table(title=f"classify throughput (ORT providers: {', '.join(select_providers())}; "
                        f"OpenCV {cv2.__version__} CPU)")
    for col in ("model", "batch", "ORT img/s", "OpenCV img/s", "ORT / OpenCV"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in args.models:
        for model, b, ort_rate, cv_rate in bench(name, args.batches, args.seconds):
            table.add_row(model, str(b), f"{ort_rate:.1f}", f"{cv_rate:.1f}", f"{ort_rate / cv_rate:.2f}x")
    Console().print(table)


if __name__ == "__main__":
    main()
