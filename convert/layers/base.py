"""The handler interface: one small class per Caffe layer type, registered by decorator.

A handler is the only place that knows a layer type's semantics: its typed parameters, its shape
rule, its weight shapes, its ONNX nodes and its torch forward. Emitters walk the graph and ask
handlers; nothing else switches on layer types. Torch is imported lazily inside `torch` methods so
that the path to ONNX never imports it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from zoo.convert.errors import ConvertError

Shape = tuple[int, ...]

REGISTRY: dict[str, Op] = {}


def register(*types: str):
    """Class decorator: instantiate the handler and file it under each Caffe type name."""

    def wrap(cls: type[Op]) -> type[Op]:
        inst = cls()
        for t in types:
            REGISTRY[t] = inst
        return cls

    return wrap


def handler(layer_type: str) -> Op:
    try:
        return REGISTRY[layer_type]
    except KeyError:
        raise ConvertError(f"unsupported layer type {layer_type!r}") from None


class Op:
    """Base handler. Subclasses override what differs from an element-wise identity."""

    params: ClassVar[tuple[str, ...]] = ()  # learnable blobs, in Caffe's blob order
    n_bottoms: ClassVar[tuple[int, int | None]] = (1, 1)  # how many bottoms Caffe accepts (None: any)
    buffers: ClassVar[tuple[str, ...]] = ()  # non-learnable blobs that follow them

    # Traits the rest of the code asks instead of switching on layer types.
    is_classifier: ClassVar[bool] = False  # can be a net's class head (fine-tuning resizes it: with_outputs)
    passes_through: ClassVar[bool] = False  # between a head and its output, keeps the class axis (Softmax)
    probabilities: ClassVar[bool] = False  # its top is class probabilities (a net's main output)
    block_end: ClassVar[bool] = False  # closes a block (inception Concat, residual sum): a dream blob
    activation: ClassVar[bool] = False  # a finished feature map (nonlinearity, pooling, LRN): a dream blob
    data_dependent_axes: ClassVar[tuple[int, ...]] = ()  # output axes whose size the values decide (SSD's
    # detections): the shape rule gives an upper bound, ONNX declares them symbolic
    # Caffe's fillers (scratch training): blob name -> (parameter message, filler field); where the
    # prototxt names none, default_fillers (else constant 0; Caffe's own constant-0 weights cannot train).
    filler_fields: ClassVar[dict[str, tuple[str, str]]] = {}
    default_fillers: ClassVar[dict[str, tuple[str, float]]] = {"weight": ("xavier", 0.0)}

    def attrs(self, p: Any) -> Any:
        """Typed parameters read once from the LayerParameter."""
        return None

    def blob_names(self, a: Any) -> tuple[str, ...]:
        """Names of the blobs this layer carries, given its attributes."""
        return self.params + self.buffers

    def shape(self, a: Any, ins: list[Shape], name: str) -> list[Shape]:
        return [ins[0]]

    def weight_shapes(self, a: Any, ins: list[Shape]) -> list[Shape]:
        return []

    def macs(self, a: Any, ins: list[Shape], outs: list[Shape]) -> int:
        return 0

    def onnx(self, ctx: Any, a: Any, layer: Any) -> None:
        raise NotImplementedError

    def torch(self, a: Any, m: Any, xs: list[Any]) -> list[Any]:
        raise NotImplementedError

    def fill(self, a: Any, shapes: list[Shape], rng: Any) -> list[Any]:
        """Seeded weights for tests and scratch training: He-scaled, so activations keep their size."""
        import numpy as np

        out = []
        for name, shp in zip(self.blob_names(a), shapes):
            if name == "weight" and len(shp) >= 2:
                fan_in = int(np.prod(shp[1:]))
                out.append((rng.standard_normal(shp) * np.sqrt(2.0 / max(fan_in, 1))).astype(np.float32))
            else:
                out.append((rng.standard_normal(shp) * 0.01).astype(np.float32))
        return out


    def caffe_filler(self, proto: Any, blob: str) -> Any:
        """The FillerParameter the prototxt gives `blob`, or this handler's default for it."""
        from zoo.convert.proto import caffe_pb2

        message, field = self.filler_fields[blob]
        sub = getattr(proto, message)
        if sub.HasField(field):
            return getattr(sub, field)
        kind, value = self.default_fillers.get(blob, ("constant", 0.0))
        return caffe_pb2.FillerParameter(type=kind, value=value)

    def with_outputs(self, proto: Any, n: int) -> Any:
        """A copy of a classifier's LayerParameter that makes `n` outputs."""
        raise NotImplementedError


def axis_index(axis: int, ndim: int, name: str) -> int:
    """Caffe's CanonicalAxisIndex: negative axes count from the end."""
    if not -ndim <= axis < ndim:
        raise ConvertError(f"layer {name!r}: axis {axis} out of range for a {ndim}-D blob")
    return axis % ndim


def pair(values: list[int], h: int | None, w: int | None, default: int | None, what: str, name: str) -> tuple[int, int]:
    """Caffe's kernel/stride/pad convention: one value for both, two for (h, w), or *_h/*_w."""
    if h is not None or w is not None:
        if h is None or w is None:
            raise ConvertError(f"layer {name!r}: {what}_h and {what}_w must be given together")
        return int(h), int(w)
    vals = list(values)
    if not vals:
        if default is None:
            raise ConvertError(f"layer {name!r}: {what} is required")
        return default, default
    if len(vals) == 1:
        return int(vals[0]), int(vals[0])
    if len(vals) == 2:
        return int(vals[0]), int(vals[1])
    raise ConvertError(f"layer {name!r}: {len(vals)} values for {what}; only 2-D is supported")
