"""The run's record: a CSV of loss, accuracy, learning rate and speed, and a PNG plot of it drawn
with Pillow (no plotting dependency). Both are rewritten atomically."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image, ImageDraw

from zoo.io import atomic_path

COLUMNS = ["iter", "lr", "loss", "batch_top1", "val_loss", "val_top1", "val_topk", "images_per_s", "elapsed_s"]


def _atomic_write(path: Path, write) -> None:
    with atomic_path(path) as tmp:  # the one atomic writer (zoo.io)
        write(tmp)


class Logbook:
    def __init__(self, run_dir: Path, resume_at: int | None = None):
        self.csv, self.png = run_dir / "log.csv", run_dir / "plot.png"
        self.rows: list[dict[str, float]] = []
        if resume_at is not None and self.csv.is_file():
            with open(self.csv, newline="") as f:
                for r in csv.DictReader(f):
                    if int(float(r["iter"])) <= resume_at:  # rows after the checkpoint are redone
                        self.rows.append({k: float(v) for k, v in r.items() if v not in ("", None)})

    def add(self, **row: float) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
                w.writeheader()
                for r in self.rows:
                    w.writerow({k: (f"{r[k]:.6g}" if k in r else "") for k in COLUMNS})

        _atomic_write(self.csv, write)
        _atomic_write(self.png, lambda tmp: plot(self.rows).save(tmp, format="PNG"))


def _series(rows: list[dict[str, float]], key: str) -> list[tuple[float, float]]:
    return [(r["iter"], r[key]) for r in rows if key in r and math.isfinite(r[key])]


def _panel(draw: ImageDraw.ImageDraw, box, title: str, lines: list[tuple[str, tuple, list]], x_max: float) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(160, 160, 160))
    pts = [p for _, _, s in lines for p in s]
    draw.text((x0 + 6, y0 + 4), title, fill=(0, 0, 0))
    if not pts:
        return
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    draw.text((x1 - 70, y0 + 4), f"max {hi:.4g}", fill=(90, 90, 90))
    draw.text((x1 - 70, y1 - 14), f"min {lo:.4g}", fill=(90, 90, 90))
    px0, py0, px1, py1 = x0 + 8, y0 + 20, x1 - 8, y1 - 18

    def to_px(it: float, v: float) -> tuple[float, float]:
        return (px0 + (px1 - px0) * it / max(x_max, 1), py1 - (py1 - py0) * (v - lo) / (hi - lo))

    for k, (name, color, series) in enumerate(lines):
        draw.text((x0 + 90 + 90 * k, y0 + 4), name, fill=color)
        xy = [to_px(i, v) for i, v in series]
        if len(xy) > 1:
            draw.line(xy, fill=color, width=2)
        for x, y in xy if len(xy) < 40 else []:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)


def plot(rows: list[dict[str, float]], size: tuple[int, int] = (720, 600)) -> Image.Image:
    """Three panels: loss (train, held-out), held-out accuracy (top-1, top-k), learning rate."""
    w, h = size
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    x_max = max((r["iter"] for r in rows), default=1)
    third = h // 3
    blue, orange, green, red = (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)
    _panel(
        d,
        (4, 4, w - 4, third - 4),
        "loss",
        [("train", blue, _series(rows, "loss")), ("held-out", orange, _series(rows, "val_loss"))],
        x_max,
    )
    _panel(
        d,
        (4, third + 4, w - 4, 2 * third - 4),
        "accuracy",
        [("top-1", green, _series(rows, "val_top1")), ("top-k", red, _series(rows, "val_topk"))],
        x_max,
    )
    _panel(d, (4, 2 * third + 4, w - 4, h - 4), "learning rate", [("lr", blue, _series(rows, "lr"))], x_max)
    d.text((w - 120, h - 16), f"iteration {int(x_max)}", fill=(0, 0, 0))
    return img
