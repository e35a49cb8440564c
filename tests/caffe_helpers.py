"""Run one Caffe net every way zoo can: the torch module, ONNX Runtime, and OpenCV's dnn as reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from zoo.convert.build import build_graph
from zoo.convert.emit_caffe import caffe_name
from zoo.convert.graph import Graph
from zoo.convert.prototxt import parse_prototxt
from zoo.convert.torch_module import CaffeModule
from zoo.convert.upgrade import upgrade_net

from zoo import convert


def graph_from_text(text: str, seed: int | None = 0) -> Graph:
    g = build_graph(upgrade_net(parse_prototxt(text)), "<test>")
    g.shapes()
    return convert.random_weights(g, seed) if seed is not None else g


def run_torch(g: Graph, x: np.ndarray, blobs: list[str] | None = None) -> dict[str, np.ndarray]:
    m = CaffeModule(g)
    with torch.no_grad():
        out = m(torch.from_numpy(x), outputs=blobs)
    return {k: v.numpy() for k, v in out.items()}


def onnx_session(g: Graph, path: Path, extra_outputs: list[str] | None = None) -> ort.InferenceSession:
    """An ONNX Runtime session; extra_outputs exposes intermediate blobs as graph outputs."""
    if extra_outputs:
        g = Graph(g.name, dict(g.inputs), g.layers, list(dict.fromkeys(list(g.outputs) + extra_outputs)), g.source)
    convert.write_onnx(g, path)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def run_onnx(g: Graph, x: np.ndarray, path: Path, blobs: list[str] | None = None) -> dict[str, np.ndarray]:
    blobs = blobs or list(g.outputs)
    sess = onnx_session(g, path, blobs)
    name = sess.get_inputs()[0].name
    return dict(zip(blobs, sess.run(blobs, {name: x})))


def last_writer(g: Graph, blob: str) -> str:
    """OpenCV's forward() takes layer names: the value of a blob is the output of its last writer."""
    if blob in g.inputs:
        raise ValueError("ask OpenCV for layers, not inputs")
    return g.producers[blob].name


def run_opencv(prototxt: Path, caffemodel: Path | None, x: np.ndarray, g: Graph, blobs: list[str]
               ) -> dict[str, np.ndarray]:
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel) if caffemodel else None)
    net.enableWinograd(False)
    net.setInput(x, caffe_name(next(iter(g.inputs))))
    known = set(net.getLayerNames())  # OpenCV sometimes names a layer after its top (a 1x1 conv after another)
    outs = net.forward([w if (w := last_writer(g, b)) in known else caffe_name(b) for b in blobs])
    return dict(zip(blobs, outs))


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    ref = np.asarray(ref)
    got = np.asarray(got).reshape(ref.shape)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))


def seeded_files(text: str, folder: Path, seed: int = 3) -> tuple[Path, Path | None, Graph]:
    """A prototxt text, seeded weights written by our Caffe writer, and the graph read back from both."""
    from zoo.convert.emit_caffe import write_caffemodel

    proto = folder / "net.prototxt"
    proto.write_text(text)
    g = convert.random_weights(convert.load_net(proto), seed)
    if not any(layer.blob_names for layer in g.layers):
        return proto, None, g
    weights = folder / "net.caffemodel"
    write_caffemodel(g, weights)
    return proto, weights, convert.load_net(proto, weights)


def check_everywhere(text: str, folder: Path, shapes: list[tuple[int, ...]], blobs: list[str] | None = None,
                     tol: float = 1e-4, opencv: bool = True, seed: int = 3) -> Graph:
    """Torch module and one ONNX Runtime session, at every input shape, against OpenCV dnn (or each other)."""
    proto, weights, g = seeded_files(text, folder, seed)
    blobs = blobs or list(g.outputs)
    sess = onnx_session(g, folder / "net.onnx", blobs)
    name = sess.get_inputs()[0].name
    for i, shape in enumerate(shapes):
        x = np.random.default_rng(i).uniform(-2, 2, shape).astype(np.float32)
        got_t = run_torch(g, x, blobs)
        got_o = dict(zip(blobs, sess.run(blobs, {name: x})))
        ref = run_opencv(proto, weights, x, g, blobs) if opencv else got_t
        for b in blobs:
            assert got_t[b].shape == ref[b].shape == got_o[b].shape, (shape, b, got_t[b].shape, got_o[b].shape)
            assert rel_err(got_t[b], ref[b]) <= tol, (shape, b, "torch", rel_err(got_t[b], ref[b]))
            assert rel_err(got_o[b], ref[b]) <= tol, (shape, b, "onnx", rel_err(got_o[b], ref[b]))
    return g
