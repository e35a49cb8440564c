"""Issue 24's acceptance, measured outside zoo: SVG in, stroke dreams out, the journey through the layers.

    python scripts/measure_vector.py [--part svg strokes journey reach] [--work DIR] [--docs]

- svg: an Adwaita icon (Debian's adwaita-icon-theme) rasterised by zoo (resvg) and by CairoSVG at
  2000 px, mean |difference|; then `zoo dream ICON.svg --size 2000` runs and its output is 2000 wide.
- strokes: `zoo dream chelsea.png -o strokes.svg --strokes 400` on efficientnet_lite0 block7/output
  at 256 px (--iterations from $STROKE_STEPS, default 250); the SVG is parsed by xml.etree and
  measured in bytes; it is rendered by resvg at 256 and at 1024 (scaled back to 256 with a box
  filter) and by CairoSVG at 256, and OpenCV dnn (reading the Caffe files in ../shared, not zoo's
  net) measures block7/output's mean square activation (what the dream ascends) and mean
  activation, against 400 random strokes drawn the way the dream starts them (three other seeds,
  same renderers).
- journey: `zoo dream chelsea.png -o journey.mp4 --frames 48 --zoom 1.02 --fps 12 --layer-path
  block2/output,block7/output,block14/output` at 256 px with JOURNEY_ARGS (or --journey-args,
  --journey-path); PyAV counts the decoded frames and the rate, OpenCV dnn measures each decoded
  frame's mean square activation at the shallow and the deep blob as a gain over the start photo's
  at the same blob; the first frames should gain more at the shallow blob, the last at the deep.
- reach: the stroke SVG just painted (run `strokes` first) against docs/img/vector-strokes.svg:
  how far control points lie from their stroke's first, and one rasterise + backward pass.

`--docs` writes docs/img/vector-strokes.svg and docs/img/journey.webp from these runs. The machine
is shared: run it under `nice`. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CAFFE = ROOT.parent / "shared" / "models" / "efficientnet_lite0"
ICON = Path("/usr/share/icons/Adwaita/scalable/places/user-home-symbolic.svg")
MODEL = "efficientnet_lite0"
SHALLOW, MIDDLE, DEEP = "block2/output", "block7/output", "block14/output"


def zoo(*args: str, cwd: Path) -> None:
    cmd = [str(Path(sys.executable).with_name("zoo")), *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def cv_net():
    import cv2

    return cv2.dnn.readNetFromCaffe(str(CAFFE / "deploy.prototxt"), str(CAFFE / "efficientnet_lite0.caffemodel"))


def activation(net, rgb: np.ndarray, blob: str) -> tuple[float, float]:
    """(mean square, mean) of `blob` on an RGB image, by OpenCV dnn: BGR, minus 127, as the card says."""
    import cv2

    x = cv2.dnn.blobFromImage(np.ascontiguousarray(rgb[..., ::-1]).astype(np.float32), 1.0, None,
                              (127.0, 127.0, 127.0), swapRB=False, crop=False)
    net.setInput(x)
    a = net.forward(blob)
    return float((a.astype(np.float64) ** 2).mean()), float(a.mean())


def resvg_png(text: str, w: int, h: int) -> np.ndarray:
    import resvg_py

    png = resvg_py.svg_to_bytes(svg_string=text, width=w, height=h, background="#ffffff")
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))


def cairo_png(text: str, w: int, h: int) -> np.ndarray:
    import cairosvg

    png = cairosvg.svg2png(bytestring=text.encode(), output_width=w, output_height=h, background_color="white")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def renders(text: str, size: int) -> dict[str, np.ndarray]:
    """The SVG as the independent renderers draw it, all at `size` px (1024 scaled back by a box filter)."""
    big = Image.fromarray(resvg_png(text, 4 * size, 4 * size)).resize((size, size), Image.BOX)
    return {"resvg@256": resvg_png(text, size, size), "resvg@1024->256": np.asarray(big),
            "cairosvg@256": cairo_png(text, size, size)}


def photo(path: Path, size: int) -> Path:
    from skimage import data

    Image.fromarray(data.chelsea()).resize((size, size), Image.LANCZOS).save(path)
    return path


def part_svg(work: Path) -> None:
    from zoo.dream import svg

    text = ICON.read_text()
    ours = svg.rasterise(ICON, (2000, 2000))
    theirs = cairo_png(text, 2000, 2000).astype(np.float32)
    print(f"svg: {ICON.name} at 2000x2000, zoo (resvg) vs CairoSVG: mean |diff| {np.abs(ours - theirs).mean():.3f} "
          f"of 255, max {np.abs(ours - theirs).max():.0f}", flush=True)
    zoo("dream", str(ICON), "-o", "icon-dream.png", "--size", "2000", "-m", MODEL, "--octaves", "1",
        "--iterations", "1", cwd=work)
    with Image.open(work / "icon-dream.png") as im:
        print(f"svg: zoo dream {ICON.name} --size 2000 wrote {im.size[0]}x{im.size[1]}", flush=True)


def part_strokes(work: Path, docs: bool) -> None:
    from zoo.dream import paint, svg

    start = photo(work / "chelsea.png", 256)
    zoo("dream", str(start), "-o", "strokes.svg", "--strokes", "400", "-m", MODEL, "-l", MIDDLE, "--size", "256",
        "--iterations", os.environ.get("STROKE_STEPS", "250"), cwd=work)
    text = (work / "strokes.svg").read_text()
    root = ET.fromstring(text)
    n = len(root.findall(f".//{{{svg.NS}}}path"))
    print(f"strokes: strokes.svg parses (xml.etree), {n} paths, {len(text.encode())} bytes", flush=True)
    rgb = np.asarray(Image.open(start).convert("RGB"), dtype=np.float32)
    opts = paint.StrokeOptions(400)
    randoms = []
    for seed in (1, 2, 3):
        s = paint.first_strokes(rgb, opts, seed, True)
        paths = svg.stroke_paths(s.points.numpy(), s.width.numpy(), s.rgba.numpy())
        randoms.append(svg.strokes_svg((256, 256), paths, svg._hex(rgb.reshape(-1, 3).mean(0) / 255), "{}"))
    net = cv_net()
    for name, img in renders(text, 256).items():
        dream = activation(net, img, MIDDLE)
        base = [activation(net, renders(r, 256)[name], MIDDLE) for r in randoms]
        sq, mean = np.mean([b[0] for b in base]), np.mean([b[1] for b in base])
        print(f"strokes: {name}: {MIDDLE} mean square {dream[0]:.4f} vs random {sq:.4f} ({dream[0] / sq:.2f}x); "
              f"mean {dream[1]:.4f} vs {mean:.4f} ({dream[1] / mean:.2f}x)", flush=True)
    if docs:
        (ROOT / "docs" / "img" / "vector-strokes.svg").write_text(text)


def stroke_cost(text: str, repeats: int = 3) -> tuple[float, float, float]:
    """A stroke SVG's strokes read back from their paths: the mean and largest distance of a control point
    from its stroke's first (px), and the seconds one rasterise + backward pass of them takes at 256 px."""
    import re
    import time

    import torch
    from zoo.dream import strokes

    rows = [list(map(float, m)) for m in re.findall(r'd="M([-\d.]+) ([-\d.]+)C([-\d.]+) ([-\d.]+) ([-\d.]+) '
                                                     r'([-\d.]+) ([-\d.]+) ([-\d.]+)"', text)]
    widths = [float(w) for w in re.findall(r'stroke-width="([\d.]+)"', text)]
    pts = torch.tensor(rows).reshape(-1, 4, 2)
    reach = (pts[:, 1:] - pts[:, :1]).norm(dim=-1)
    best = float("inf")
    for _ in range(repeats):
        p = pts.clone().requires_grad_(True)
        s = strokes.Strokes(p, torch.tensor(widths), torch.full((len(rows), 4), 0.8))
        t = time.perf_counter()
        strokes.rasterise(s, (256, 256), torch.full((3, 256, 256), 0.5)).sum().backward()
        best = min(best, time.perf_counter() - t)
    return float(reach.mean()), float(reach.max()), best


def part_reach(work: Path) -> None:
    """The strokes just painted (work/strokes.svg) against the committed docs/img/vector-strokes.svg."""
    for name, path in (("this run", work / "strokes.svg"), ("docs/img", ROOT / "docs" / "img" / "vector-strokes.svg")):
        mean, top, secs = stroke_cost(path.read_text())
        print(f"reach: {name}: control points {mean:.1f} px from their stroke's first on average, at most "
              f"{top:.1f}; rasterise + backward {secs:.2f} s at 256 px (best of 3)", flush=True)


JOURNEY_ARGS = "--octaves 1 --iterations 4 --step 2"  # the settings the docs report; --journey-args changes them


def part_journey(work: Path, docs: bool, extra: str = JOURNEY_ARGS, path: str = f"{SHALLOW},{MIDDLE},{DEEP}") -> None:
    import av

    start = photo(work / "chelsea.png", 256)
    zoo("dream", str(start), "-o", "journey.mp4", "--frames", "48", "--zoom", "1.02", "--fps", "12", "-m", MODEL,
        "--layer-path", path, "--size", "256", *shlex.split(extra), cwd=work)
    with av.open(str(work / "journey.mp4")) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        rate = s.average_rate
    print(f"journey: journey.mp4 has {len(frames)} frames at {float(rate):g} fps, {frames[0].shape[1]}x"
          f"{frames[0].shape[0]}", flush=True)
    gains = journey_gains(frames, np.asarray(Image.open(start).convert("RGB")))
    for k in (0, 1, 2, 3, 7, 15, 23, 31, 39, 40, 43, 44, 45, 46, 47):
        print(f"journey: frame {k + 1:2d}: gain {SHALLOW} {gains[k, 0]:.2f}, {DEEP} {gains[k, 1]:.2f}", flush=True)
    print("journey: the larger gain, frame by frame (s shallow, d deep): "
          + "".join("s" if g[0] > g[1] else "d" for g in gains), flush=True)
    head, tail = gains[:8], gains[-8:]
    print(f"journey: first 8 frames favour {SHALLOW} in {(head[:, 0] > head[:, 1]).sum()}/8; last 8 favour {DEEP} "
          f"in {(tail[:, 1] > tail[:, 0]).sum()}/8", flush=True)
    if docs:
        small = [Image.fromarray(f).resize((160, 160), Image.LANCZOS) for f in frames[::2]]
        small[0].save(ROOT / "docs" / "img" / "journey.webp", save_all=True, append_images=small[1:], loop=0,
                      duration=round(2000 / float(rate)), quality=70)


def journey_gains(frames: list[np.ndarray], first: np.ndarray) -> np.ndarray:
    """(frames, 2): each frame's mean square activation at the shallow and the deep blob (OpenCV dnn),
    divided by the start photo's at the same blob."""
    net = cv_net()
    base = {b: activation(net, first, b)[0] for b in (SHALLOW, DEEP)}
    return np.array([[activation(net, f, b)[0] / base[b] for b in (SHALLOW, DEEP)] for f in frames])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", nargs="*", default=["svg", "strokes", "journey"])
    ap.add_argument("--work", type=Path)
    ap.add_argument("--docs", action="store_true")
    ap.add_argument("--journey-args", default=JOURNEY_ARGS, help="zoo dream options of the journey")
    ap.add_argument("--journey-path", default=f"{SHALLOW},{MIDDLE},{DEEP}", help="its --layer-path")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vector-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ZOO_HOME", str(work / "home"))
    for part in args.part:
        {"svg": lambda: part_svg(work), "strokes": lambda: part_strokes(work, args.docs),
         "journey": lambda: part_journey(work, args.docs, args.journey_args, args.journey_path),
         "reach": lambda: part_reach(work)}[part]()


if __name__ == "__main__":
    main()
