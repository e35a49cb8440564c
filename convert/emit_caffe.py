"""Graph + weights back to Caffe: a clean V2 deploy.prototxt and a binary .caffemodel.

This is how fine-tuned brains go back to Caffe tools and OpenCV, and how tests make caffemodels
with seeded weights for nets whose real weights cannot be downloaded. Blobs are streamed as wire
format in protobuf's canonical field order (a layer's fields 1-6, its blobs, then its parameters;
a blob's data, then its shape), so the bytes are what Caffe itself or protobuf would write.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from zoo.convert.api import require_weights
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph
from zoo.convert.proto import caffe_pb2
from zoo.convert.prototxt import to_text
from zoo.convert.wire import field_header, varint

from zoo.io import atomic_write


def caffe_name(blob: str) -> str:
    """Internal in-place versions (`conv1@conv1`) are plain Caffe names again."""
    return blob.split("@", 1)[0]


def deploy_net(graph: Graph) -> caffe_pb2.NetParameter:
    net = caffe_pb2.NetParameter(name=graph.name)
    for name, shape in graph.inputs.items():
        lp = net.layer.add(name=caffe_name(name), type="Input", top=[caffe_name(name)])
        lp.input_param.shape.add().dim.extend(shape)
    for layer in graph.layers:
        lp = net.layer.add()
        lp.CopyFrom(layer.proto)
        for f in ("include", "exclude", "loss_weight", "propagate_down", "blobs", "zoo_unknown"):
            lp.ClearField(f)
        del lp.bottom[:], lp.top[:]
        lp.bottom.extend(caffe_name(b) for b in layer.bottoms)
        lp.top.extend(caffe_name(t) for t in layer.tops)
    return net


BLOBS_FIELD = 7  # LayerParameter.blobs; fields below it come before the blobs, the rest after


def _blob_pieces(arr: np.ndarray) -> tuple[bytes, memoryview, bytes]:
    """A BlobProto as (data header, data, shape field): data is field 5, shape field 7."""
    arr = np.ascontiguousarray(arr, dtype="<f4")
    dims = b"".join(varint(d) for d in arr.shape)
    shape = field_header(1, len(dims)) + dims
    raw = memoryview(arr).cast("B")
    return field_header(5, raw.nbytes), raw, field_header(7, len(shape)) + shape


def _split(lp: caffe_pb2.LayerParameter, layer_params: bool) -> tuple[bytes, bytes]:
    """A layer's serialized fields before its blobs and after them (none after without layer_params)."""
    head, tail = type(lp)(), type(lp)()
    head.CopyFrom(lp)
    tail.CopyFrom(lp)
    for fd, _ in lp.ListFields():
        if fd.number >= BLOBS_FIELD or (not layer_params and fd.name not in ("name", "type", "bottom", "top")):
            head.ClearField(fd.name)
        if fd.number < BLOBS_FIELD or not layer_params:
            tail.ClearField(fd.name)
    return head.SerializeToString(), tail.SerializeToString()


def _stream_caffemodel(graph: Graph, net: caffe_pb2.NetParameter, f, layer_params: bool = True) -> None:
    by_name = {layer.name: layer for layer in graph.layers}
    name = net.name.encode()
    f.write(field_header(1, len(name)) + name)
    for lp in net.layer:
        before, after = _split(lp, layer_params)
        blobs = [_blob_pieces(b) for b in (by_name[lp.name].blobs if lp.name in by_name else [])]
        sizes = [len(h) + r.nbytes + len(s) for h, r, s in blobs]
        body = len(before) + len(after) + sum(len(field_header(7, n)) + n for n in sizes)
        f.write(field_header(100, body))
        f.write(before)
        for (head, raw, shape), n in zip(blobs, sizes):
            f.write(field_header(7, n))
            f.write(head)
            f.write(raw)
            f.write(shape)
        f.write(after)


def write_caffemodel(graph: Graph, path: str | Path, *, layer_params: bool = True) -> Path:
    """The binary weights file. Without layer_params each layer carries only its name, type, bottoms,
    tops and blobs (the deploy prototxt has the rest), as some published caffemodels do."""
    require_weights(graph)
    path = Path(path)
    with atomic_write(path) as f:
        _stream_caffemodel(graph, deploy_net(graph), f, layer_params)
    return path


def write_prototxt(graph: Graph, path: str | Path, *, header: str = "") -> Path:
    """The deploy prototxt; `header` (comment lines) goes first."""
    path = Path(path)
    text = header + to_text(deploy_net(graph))
    with atomic_write(path) as f:
        f.write(text.encode())
    return path


def write_caffe(graph: Graph, prototxt_path: str | Path, caffemodel_path: str | Path) -> tuple[Path, Path]:
    """Both files or neither: each is written to its temporary file, and only then are both renamed."""
    require_weights(graph)
    prototxt_path, caffemodel_path = Path(prototxt_path), Path(caffemodel_path)
    for p in (prototxt_path, caffemodel_path):
        if not p.parent.exists():
            raise ConvertError(f"{p}: the folder {p.parent} does not exist")
    net = deploy_net(graph)
    with atomic_write(prototxt_path) as fp, atomic_write(caffemodel_path) as fm:
        fp.write(to_text(net).encode())
        _stream_caffemodel(graph, net, fm)
    return prototxt_path, caffemodel_path
