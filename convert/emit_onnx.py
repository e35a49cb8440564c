"""Graph -> ONNX, built node by node from the handlers; neither torch nor the `onnx` package involved.

Weights are initializers (never graph inputs), so ONNX Runtime can fold BatchNorm into convolutions.
The protobuf is written by our own wire-format writer (convert/wire.py): importing `onnx` alone costs
more than the whole conversion. The graph's small records (nodes, inputs, outputs) are encoded into
bytes; the initializers are streamed straight from the weight arrays after them, never copied into a
message, which keeps peak memory near one copy of the model. The tests check every file with
`onnx.checker` and strict shape inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from zoo.convert.api import require_weights
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph, Layer
from zoo.convert.wire import field_bytes, field_float, field_header, field_int, field_str, message

from zoo.io import atomic_write

OPSET = 17
IR_VERSION = 8  # opset 17's IR; ONNX Runtime accepts up to 13 while onnx 1.23 would write 14

# onnx.proto's enums and field numbers, the few this writer uses
FLOAT, INT64 = 1, 7  # TensorProto.DataType
_A_FLOAT, _A_INT, _A_STRING, _A_FLOATS, _A_INTS, _A_STRINGS = 1, 2, 3, 6, 7, 8  # AttributeProto.AttributeType


@dataclass
class Node:
    op_type: str
    inputs: list[str]
    outputs: list[str]
    name: str
    attrs: dict = field(default_factory=dict)


class OnnxContext:
    """What handlers see: blob names, static shapes at the deploy size, and node/constant makers."""

    def __init__(self, graph: Graph, shapes: dict[str, tuple[int, ...]]):
        self.graph, self._shapes = graph, shapes
        self.nodes: list[Node] = []
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
        self.nodes.append(Node(op_type, list(inputs), list(outputs), f"{name}#{len(self.nodes)}", attrs))
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


@dataclass
class OnnxModel:
    """A model ready to write: the encoded ModelProto fields but the graph, the graph's small records
    (GraphProto fields but the initializers), and the initializers to stream after them."""

    model_fields: bytes
    graph_fields: bytes
    weights: list[tuple[str, np.ndarray]]


def build_model(graph: Graph, *, dynamic: bool | None = None, metadata: dict[str, str] | None = None) -> OnnxModel:
    """The ONNX model, encoded but for its initializers."""
    require_weights(graph)
    shapes = graph.shapes()
    sizes = graph.input_sizes()
    dynamic = sizes != "deploy" if dynamic is None else dynamic
    ctx = OnnxContext(graph, shapes)
    for layer in graph.layers:
        ctx.layer_name = layer.name
        layer.op.onnx(ctx, layer.attrs, layer)
    ctx.layer_name = ""
    graph_fields = message(
        *(field_bytes(1, encode_node(n)) for n in ctx.nodes),  # GraphProto.node
        field_str(2, graph.name or "net"),
        *(field_bytes(11, encode_value_info(n, FLOAT, declared_dims(n, s, dynamic, True)))
          for n, s in graph.inputs.items()),
        *(field_bytes(12, encode_value_info(n, FLOAT, output_dims(graph, n, shapes[n], dynamic)))
          for n in graph.outputs),
    )
    first = next(iter(graph.inputs))
    meta = {"source": graph.source, **preprocessing_metadata(graph),
            "deploy_input_shape": "x".join(map(str, graph.inputs[first])), "input_sizes": sizes,
            **(metadata or {})}
    model_fields = message(
        field_int(1, IR_VERSION),
        field_str(2, "zoo"),  # producer_name
        field_bytes(8, message(field_str(1, ""), field_int(2, OPSET))),  # opset_import (default domain)
        *(field_bytes(14, message(field_str(1, str(k)), field_str(2, str(v)))) for k, v in meta.items()),
    )
    return OnnxModel(model_fields, graph_fields, ctx.weights)


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


def output_dims(graph: Graph, name: str, shape: tuple[int, ...], dynamic: bool) -> list[int | str]:
    """An output's declared dims. Axes whose size the data decides are symbolic and the others are
    fixed by the layer (SSD's detections: [1, 1, D, 7] whatever the batch and size)."""
    producer = graph.producers.get(name)
    axes = producer.op.data_dependent_axes if producer is not None else ()
    if not axes:
        return declared_dims(name, shape, dynamic, False)
    return [f"{name}_{i}" if i in axes else d for i, d in enumerate(shape)]


def preprocessing_metadata(graph: Graph) -> dict[str, str]:
    """Caffe's input convention, recorded so any ONNX consumer can feed the model correctly."""
    meta = {"input_layout": "NCHW", "channel_order": "BGR", "value_range": "0-255", "scale": "1"}
    if graph.mean is not None:
        meta["mean"] = ",".join(f"{v:.6g}" for v in graph.mean.reshape(graph.mean.shape[0], -1).mean(1))
    return meta


def encode_value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    """ValueInfoProto{name, type: TypeProto{tensor_type: {elem_type, shape: {dim...}}}}."""
    shape = message(*(field_bytes(1, field_str(2, d) if isinstance(d, str) else field_int(1, d)) for d in dims))
    tensor = message(field_int(1, elem_type), field_bytes(2, shape))
    return message(field_str(1, name), field_bytes(2, field_bytes(1, tensor)))


def encode_node(node: Node) -> bytes:
    """NodeProto; attributes sorted by name, as onnx.helper.make_node writes them."""
    return message(
        *(field_str(1, s) for s in node.inputs),
        *(field_str(2, s) for s in node.outputs),
        field_str(3, node.name),
        field_str(4, node.op_type),
        *(field_bytes(5, encode_attribute(k, v)) for k, v in sorted(node.attrs.items())),
    )


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer))  # bool is an int, as in onnx.helper


def _is_float(v) -> bool:
    return isinstance(v, (float, np.floating))


def encode_attribute(name: str, value) -> bytes:
    """AttributeProto with the type onnx.helper.make_attribute would infer."""
    head = field_str(1, name)
    if _is_int(value):
        return message(head, field_int(3, int(value)), field_int(20, _A_INT))
    if _is_float(value):
        return message(head, field_float(2, float(value)), field_int(20, _A_FLOAT))
    if isinstance(value, (str, bytes)):
        raw = value.encode("utf-8") if isinstance(value, str) else value
        return message(head, field_bytes(4, raw), field_int(20, _A_STRING))
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value.tolist() if isinstance(value, np.ndarray) else value)
        if all(_is_int(v) for v in items):
            return message(head, *(field_int(8, int(v)) for v in items), field_int(20, _A_INTS))
        if all(_is_int(v) or _is_float(v) for v in items):
            return message(head, *(field_float(7, float(v)) for v in items), field_int(20, _A_FLOATS))
        if all(isinstance(v, (str, bytes)) for v in items):
            raws = [v.encode("utf-8") if isinstance(v, str) else v for v in items]
            return message(head, *(field_bytes(9, r) for r in raws), field_int(20, _A_STRINGS))
    raise ConvertError(f"ONNX attribute {name!r}: cannot encode {type(value).__name__} {value!r}")


_DTYPES = {np.dtype(np.float32): FLOAT, np.dtype(np.int64): INT64}


def _tensor_header(name: str, arr: np.ndarray) -> bytes:
    """TensorProto's dims, data_type and name; raw_data follows."""
    return message(*(field_int(1, d) for d in arr.shape), field_int(2, _DTYPES[arr.dtype]), field_str(8, name))


def write_model(model: OnnxModel, path: str | Path) -> None:
    """Write atomically: the model's fields, then one `graph` record (field 7) whose initializers
    (field 5) are streamed from the arrays."""
    path = Path(path)
    pieces = []
    total = len(model.graph_fields)
    for name, arr in model.weights:
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        head = _tensor_header(name, arr)
        raw = memoryview(arr).cast("B")
        body = len(head) + len(field_header(9, raw.nbytes)) + raw.nbytes  # TensorProto.raw_data = field 9
        pieces.append((head, raw, body))
        total += len(field_header(5, body)) + body  # GraphProto.initializer = field 5
    with atomic_write(path) as f:
        f.write(model.model_fields)
        f.write(field_header(7, total))  # ModelProto.graph
        f.write(model.graph_fields)
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
    write_model(build_model(graph, dynamic=dynamic, metadata=metadata), path)
    return path
