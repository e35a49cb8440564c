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


def run_opencv(prototxt: Path, caffemodel: Path, x: np.ndarray, g: Graph, blobs: list[str]) -> dict[str, np.ndarray]:
    import cv2

    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.enableWinograd(False)
    net.setInput(x, caffe_name(next(iter(g.inputs))))
    outs = net.forward([last_writer(g, b) for b in blobs])
    return dict(zip(blobs, outs))


def rel_err(got: np.ndarray, ref: np.ndarray) -> float:
    ref = np.asarray(ref)
    got = np.asarray(got).reshape(ref.shape)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
