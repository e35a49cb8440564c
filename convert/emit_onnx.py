"""Graph -> ONNX, built node by node from the handlers; no torch involved.

Weights are initializers (never graph inputs), so ONNX Runtime can fold BatchNorm into convolutions.
The file is written in two parts: the graph without its weights, serialized by onnx, then the
initializers streamed straight from the weight arrays as a second `graph` record, which protobuf
merges into the first. The weights are never copied into a protobuf message, which keeps peak
memory near one copy of the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
from zoo.convert.api import require_weights
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph, Layer
from zoo.convert.wire import field_header

from zoo.io import atomic_write

OPSET = 17
IR_VERSION = 8  # opset 17's IR; ONNX Runtime accepts up to 13 while onnx 1.23 would write 14


class OnnxContext:
    """What handlers see: blob names, static shapes at the deploy size, and node/constant makers."""

    def __init__(self, graph: Graph, shapes: dict[str, tuple[int, ...]]):
        self.graph, self._shapes = graph, shapes
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[tuple[str, np.ndarray]] = []
        self._names: set[str] = set(shapes)
        self._scalars: dict[float, str] = {}
        self.layer_name = ""  # the layer whose nodes are being made: runtime errors name it

    def inputs(self, layer: Layer) -> list[str]:
        return list(layer.bottoms)

    def outputs(self, layer: Layer) -> list[str]:
        return list(layer.tops)

    def shape(self, blob: str) -> tuple[int, ...]:
        return self._shapes[blob]

    def tmp(self, base: str, hint: str) -> str:
        name, i = f"{base}/_{hint}", 1
        while name in self._names:
            i += 1
            name = f"{base}/_{hint}{i}"
        self._names.add(name)
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attrs) -> list[str]:
        name = self.layer_name or (outputs[0] if outputs else op_type)
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=f"{name}#{len(self.nodes)}", **attrs))
        return outputs

    def const(self, array: np.ndarray, name: str) -> str:
        name = self.tmp(name, "const") if name in self._names else name
        self._names.add(name)
        self.weights.append((name, np.ascontiguousarray(array)))
        return name

    def const_i64(self, values: list[int], name: str) -> str:
        return self.const(np.asarray(values, dtype=np.int64), name)

    def scalar(self, value: float) -> str:
        if value not in self._scalars:
            self._scalars[value] = self.const(np.asarray(value, dtype=np.float32), f"_scalar/{value!r}")
        return self._scalars[value]

    def weight(self, layer: Layer, index: int, transform: Callable[[np.ndarray], np.ndarray] | None = None) -> str:
        """The layer's blob as an initializer named `layer.blobname`, optionally transformed."""
        blob = layer.blobs[index]
        arr = blob if transform is None else transform(np.asarray(blob))
        return self.const(np.asarray(arr, dtype=np.float32), f"{layer.name}.{layer.blob_names[index]}")


def build_model(graph: Graph, *, dynamic: bool | None = None, metadata: dict[str, str] | None = None
                ) -> tuple[onnx.ModelProto, list[tuple[str, np.ndarray]]]:
    """The ONNX model without initializers, and the initializers to stream after it."""
    require_weights(graph)
    shapes = graph.shapes()
    sizes = graph.input_sizes()
    dynamic = sizes != "deploy" if dynamic is None else dynamic
    ctx = OnnxContext(graph, shapes)
    for layer in graph.layers:
        ctx.layer_name = layer.name
        layer.op.onnx(ctx, layer.attrs, layer)
    ctx.layer_name = ""
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, declared_dims(n, s, dynamic, True))
              for n, s in graph.inputs.items()]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, declared_dims(n, shapes[n], dynamic, False))
               for n in graph.outputs]
    g = helper.make_graph(ctx.nodes, graph.name or "net", inputs, outputs)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="zoo")
    model.ir_version = IR_VERSION
    first = next(iter(graph.inputs))
    meta = {"source": graph.source, **preprocessing_metadata(graph),
            "deploy_input_shape": "x".join(map(str, graph.inputs[first])), "input_sizes": sizes,
            **(metadata or {})}
    for k, v in meta.items():
        model.metadata_props.add(key=str(k), value=str(v))
    return model, ctx.weights


def declared_dims(name: str, shape: tuple[int, ...], dynamic: bool, is_input: bool) -> list[int | str]:
    """An input's or output's declared dims: batch always symbolic, H and W too when more than one size fits.

    A net with a fixed-size head (GoogLeNet's 7x7 pool into an InnerProduct) still runs at every size
    whose pooled features fit; a size that does not fit fails in ONNX Runtime at the layer's node.
    """
    dims: list[int | str] = list(shape)
    if dims:
        dims[0] = "N"
    if dynamic and len(dims) == 4:
        dims[2], dims[3] = ("H", "W") if is_input else (f"{name}_H", f"{name}_W")
    return dims


def preprocessing_metadata(graph: Graph) -> dict[str, str]:
    """Caffe's input convention, recorded so any ONNX consumer can feed the model correctly."""
    meta = {"input_layout": "NCHW", "channel_order": "BGR", "value_range": "0-255", "scale": "1"}
    if graph.mean is not None:
        meta["mean"] = ",".join(f"{v:.6g}" for v in graph.mean.reshape(graph.mean.shape[0], -1).mean(1))
    return meta


_DTYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}


def _tensor_header(name: str, arr: np.ndarray) -> bytes:
    t = TensorProto(name=name, data_type=_DTYPES[arr.dtype])
    t.dims.extend(arr.shape)
    return t.SerializeToString()


def write_model(model: onnx.ModelProto, weights: list[tuple[str, np.ndarray]], path: str | Path) -> None:
    """Write atomically: the model, then one `graph` record (field 7) holding every initializer."""
    path = Path(path)
    pieces = []
    total = 0
    for name, arr in weights:
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        head = _tensor_header(name, arr)
        raw = memoryview(arr).cast("B")
        body = len(head) + len(field_header(9, raw.nbytes)) + raw.nbytes  # TensorProto.raw_data = field 9
        entry = len(field_header(5, body)) + body  # GraphProto.initializer = field 5
        pieces.append((head, raw, body))
        total += entry
    with atomic_write(path) as f:
        f.write(model.SerializeToString())
        f.write(field_header(7, total))  # ModelProto.graph, merged into the one above
        for head, raw, body in pieces:
            f.write(field_header(5, body))
            f.write(head)
            f.write(field_header(9, raw.nbytes))
            f.write(raw)


def write_onnx(graph: Graph, path: str | Path, *, dynamic: bool | None = None,
               metadata: dict[str, str] | None = None) -> Path:
    path = Path(path)
    if not path.parent.exists():
        raise ConvertError(f"{path}: the folder {path.parent} does not exist")
    model, weights = build_model(graph, dynamic=dynamic, metadata=metadata)
    write_model(model, weights, path)
    return path
