"""Conversion speed and memory, and ONNX Runtime against OpenCV dnn on the converted models.

For open_nsfw (real weights), a bvlc_googlenet-sized model (the real deploy prototxt with seeded
weights, plus the aux-head layers a real bvlc_googlenet.caffemodel carries: 53.5 MB, like the
original) and a VGG-16-sized one (VGG-16's deploy topology written here, seeded weights: 553 MB;
conversion only, its forward is too slow to time on small machines), prints:
- conversion time (parse + read weights + ONNX write) and peak memory above the interpreter's
  baseline, each measured in a fresh process; whether torch was imported on the way;
- forward throughput of ONNX Runtime and OpenCV dnn on the same model and input, batch 1 and 16,
  and their ratio.

    python scripts/bench_convert.py [--repeat 5] [--only vgg16-sized] [--runs 3]

Conversion is timed in `--runs` fresh processes (best and median printed); the caffemodel is read
once before, so every run finds it in the page cache, as a second conversion would.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "models"
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
import numpy, google.protobuf
from zoo import convert
import zoo.convert.emit_onnx
def status_kb(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(key))
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM): imports above do not count
    f.write("5")
base = status_kb("VmRSS")
t = time.perf_counter()
g = convert.load_net(sys.argv[1], sys.argv[2])
convert.write_onnx(g, sys.argv[3])
dt = time.perf_counter() - t
peak = status_kb("VmHWM")
print(json.dumps({"seconds": dt, "base_mb": base / 1024, "peak_above_base_mb": (peak - base) / 1024,
                  "torch_imported": "torch" in sys.modules}))
"""


def googlenet_sized(tmp: Path) -> tuple[Path, Path]:
    """The real deploy prototxt, seeded weights, and the aux heads a real caffemodel carries."""
    from zoo.convert.emit_caffe import write_caffemodel
    from zoo.convert.proto import caffe_pb2

    from zoo import convert

    proto = MODELS / "bvlc_googlenet" / "deploy.prototxt"
    g = convert.random_weights(convert.load_net(proto), seed=1)
    path = tmp / "bvlc_googlenet_sized.caffemodel"
    write_caffemodel(g, path)
    rng = np.random.default_rng(2)
    aux = caffe_pb2.NetParameter()
    for head, cin in (("loss1", 512), ("loss2", 528)):
        for name, shapes in ((f"{head}/conv", [(128, cin, 1, 1), (128,)]), (f"{head}/fc", [(1024, 2048), (1024,)]),
                             (f"{head}/classifier", [(1000, 1024), (1000,)])):
            layer = aux.layer.add(name=name, type="Convolution" if name.endswith("conv") else "InnerProduct")
            for s in shapes:
                blob = layer.blobs.add()
                blob.shape.dim.extend(s)
                blob.data.extend(rng.standard_normal(int(np.prod(s))).astype(np.float32) * 0.01)
    with open(path, "ab") as f:  # concatenated messages merge: the aux layers join the net
        f.write(aux.SerializeToString())
    return proto, path


def vgg16_sized(tmp: Path) -> tuple[Path, Path]:
    """VGG-16's deploy net (13 3x3 convolutions, 3 InnerProducts, 138 M parameters) with seeded weights
    written by our own Caffe writer, float32 all the way so making it stays near one copy in memory."""
    from zoo.convert.emit_caffe import write_caffemodel

    from zoo import convert

    lines = ['name: "VGG_ILSVRC_16_layers"', 'input: "data"', 'input_shape { dim: 1 dim: 3 dim: 224 dim: 224 }']
    bottom = "data"
    for block, (convs, width) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), 1):
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            lines.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
                         f'convolution_param {{ num_output: {width} pad: 1 kernel_size: 3 }} }}')
            lines.append(f'layer {{ name: "relu{block}_{i}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            bottom = name
        lines.append(f'layer {{ name: "pool{block}" type: "Pooling" bottom: "{bottom}" top: "pool{block}" '
                     f'pooling_param {{ pool: MAX kernel_size: 2 stride: 2 }} }}')
        bottom = f"pool{block}"
    for name, n in (("fc6", 4096), ("fc7", 4096), ("fc8", 1000)):
        lines.append(f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}" '
                     f'inner_product_param {{ num_output: {n} }} }}')
        if name != "fc8":
            lines.append(f'layer {{ name: "relu{name[2:]}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            lines.append(f'layer {{ name: "drop{name[2:]}" type: "Dropout" bottom: "{name}" top: "{name}" '
                         f'dropout_param {{ dropout_ratio: 0.5 }} }}')
        bottom = name
    lines.append('layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }')
    proto = tmp / "vgg16_deploy.prototxt"
    proto.write_text("\n".join(lines) + "\n")
    g = convert.load_net(proto)
    rng = np.random.default_rng(3)
    shapes = g.weight_shapes()
    for layer in g.layers:
        if layer.blob_names:
            w, b = shapes[layer.name]
            weight = rng.standard_normal(w, dtype=np.float32)
            weight *= np.float32(np.sqrt(2.0 / np.prod(w[1:])))
            layer.blobs = [weight, np.zeros(b, np.float32)]
    path = tmp / "vgg16_sized.caffemodel"
    write_caffemodel(g, path)
    return proto, path


def convert_in_child(proto: Path, weights: Path, out: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(proto), str(weights), str(out)], capture_output=True,
                       text=True, check=True, cwd=ROOT)
    return json.loads(r.stdout)


def throughput(proto: Path, weights: Path, onnx_path: Path, batch: int, repeat: int) -> tuple[float, float]:
    import cv2
    import onnxruntime as ort

    from zoo import convert

    g = convert.load_net(proto, weights)
    c, h, w = g.inputs["data"][1:]
    x = np.random.default_rng(0).uniform(-100, 100, (batch, c, h, w)).astype(np.float32)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    net = cv2.dnn.readNetFromCaffe(str(proto), str(weights))

    def ort_run():
        sess.run(None, {"data": x})

    def cv_run():
        net.setInput(x)
        net.forward(g.outputs[0])

    def rate(fn):
        fn()
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return batch / best

    return rate(ort_run), rate(cv_run)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="forwards per throughput figure (best is kept)")
    ap.add_argument("--runs", type=int, default=3, help="fresh conversion processes per model")
    ap.add_argument("--only", action="append", choices=["open_nsfw", "bvlc_googlenet-sized", "vgg16-sized"],
                    help="bench only these models (repeatable)")
    args = ap.parse_args()
    import cv2

    print(f"OpenCV {cv2.__version__}, threads: ONNX Runtime default, OpenCV {cv2.getNumThreads()}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        makers = {"open_nsfw": lambda: (MODELS / "open_nsfw" / "deploy.prototxt",
                                        MODELS / "open_nsfw" / "resnet_50_1by2_nsfw.caffemodel"),
                  "bvlc_googlenet-sized": lambda: googlenet_sized(tmp), "vgg16-sized": lambda: vgg16_sized(tmp)}
        for name in args.only or list(makers):
            proto, weights = makers[name]()
            size_mb = weights.stat().st_size / 2**20
            out = tmp / f"{name}.onnx"
            with open(weights, "rb") as f:  # in the page cache for every run alike
                while f.read(1 << 24):
                    pass
            runs = [convert_in_child(proto, weights, out) for _ in range(args.runs)]
            secs = sorted(r["seconds"] for r in runs)
            best, median = secs[0], secs[len(secs) // 2]
            mem = max(r["peak_above_base_mb"] for r in runs)
            print(f"\n{name}: caffemodel {size_mb:.1f} MB")
            print(f"  convert (parse + ONNX write), {len(runs)} runs: best {best:.2f} s, median {median:.2f} s   "
                  f"peak memory above baseline: {mem:.0f} MB = {mem / size_mb:.2f}x the model   "
                  f"torch imported: {runs[0]['torch_imported']}   load average {os.getloadavg()[0]:.1f}")
            if name.startswith("vgg16"):
                print(f"  targets: under 2 s ({'met' if best < 2 else 'missed'} by the best run), under 1.2x the model "
                      f"above baseline ({'met' if mem / size_mb < 1.2 else 'missed'}); forward not timed")
                continue
            for batch in (1, 16):
                r_ort, r_cv = throughput(proto, weights, out, batch, args.repeat)
                print(f"  batch {batch:2d}: ONNX Runtime {r_ort:7.1f} img/s   OpenCV dnn {r_cv:7.1f} img/s   "
                      f"ratio {r_ort / r_cv:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
