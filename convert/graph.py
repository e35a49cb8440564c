"""The one graph in the middle: layers with typed parameters, named blobs and weights.

Every top is a handle. Caffe reuses a blob name for in-place layers (ReLU writes `conv2/3x3` over
the convolution's output); here the last writer of a name owns the plain name, which is what
DeepDream and Caffe mean by that blob, and earlier versions are kept as `name@writer-layer`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from zoo.convert.errors import ConvertError
from zoo.convert.layers import handler
from zoo.convert.layers.base import Op, Shape
from zoo.convert.proto import caffe_pb2


@dataclass
class Layer:
    name: str
    type: str
    bottoms: list[str]
    tops: list[str]
    proto: caffe_pb2.LayerParameter
    blobs: list[np.ndarray] = field(default_factory=list)

    @property
    def op(self) -> Op:
        return handler(self.type)

    @cached_property
    def attrs(self):
        return self.op.attrs(self.proto)

    @property
    def blob_names(self) -> tuple[str, ...]:
        return self.op.blob_names(self.attrs)


@dataclass
class Graph:
    name: str
    inputs: dict[str, Shape]
    layers: list[Layer]
    outputs: list[str]
    source: str = ""
    mean: np.ndarray | None = None  # a mean.binaryproto given with the net, (C, H, W)
    notes: list[str] = field(default_factory=list)  # things the reader changed, said once to the user

    # -- queries -------------------------------------------------------------------------------
    @property
    def blob_names(self) -> list[str]:
        """Public blob names in forward order (inputs first, no intermediate in-place versions)."""
        names = list(self.inputs)
        for layer in self.layers:
            names.extend(t for t in layer.tops if "@" not in t)
        return names

    @property
    def producers(self) -> dict[str, Layer]:
        return {t: layer for layer in self.layers for t in layer.tops}

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @property
    def has_weights(self) -> bool:
        return all(len(layer.blobs) == len(layer.blob_names) for layer in self.layers)

    def input_shapes(self, input_shape: Shape | dict[str, Shape] | None = None) -> dict[str, Shape]:
        if input_shape is None:
            return dict(self.inputs)
        if isinstance(input_shape, dict):
            return {**self.inputs, **{k: tuple(v) for k, v in input_shape.items()}}
        first = next(iter(self.inputs))
        return {**self.inputs, first: tuple(int(d) for d in input_shape)}

    def shapes(self, input_shape: Shape | dict[str, Shape] | None = None) -> dict[str, Shape]:
        """Every blob's shape (in-place versions too) for the given input shape."""
        shapes: dict[str, Shape] = self.input_shapes(input_shape)
        for name, s in shapes.items():
            if any(d < 1 for d in s):
                raise ConvertError(f"input {name!r}: shape {s} has a dimension below 1")
        for layer in self.layers:
            ins = [shapes[b] for b in layer.bottoms]
            outs = layer.op.shape(layer.attrs, ins, layer.name)
            if layer.blobs:
                _check_fits(layer, ins)
            if len(outs) != len(layer.tops):
                raise ConvertError(f"layer {layer.name!r}: makes {len(outs)} outputs but names {len(layer.tops)} tops")
            shapes.update(zip(layer.tops, (tuple(int(d) for d in o) for o in outs)))
        return shapes

    def activation_bytes(self, input_shape=None) -> int:
        return 4 * sum(math.prod(s) for s in self.shapes(input_shape).values())

    def check_memory(self, input_shape=None, available: int | None = None) -> None:
        """Refuse, before anything is allocated, an input whose activations cannot fit in memory."""
        need = self.activation_bytes(input_shape)
        avail = available_memory() if available is None else available
        if need > avail:
            shp = self.input_shapes(input_shape)[next(iter(self.inputs))]
            raise ConvertError(
                f"input {'x'.join(map(str, shp))} needs {need / 2**30:.1f} GiB for its activations; "
                f"only {avail / 2**30:.1f} GiB of memory is available (use a smaller size or tiling)")

    def weight_shapes(self, input_shape=None) -> dict[str, list[Shape]]:
        """The blob shapes each layer needs at this input shape."""
        shapes = self.shapes(input_shape) if input_shape is not None else self.shapes()
        return {layer.name: [tuple(w) for w in layer.op.weight_shapes(layer.attrs, [shapes[b] for b in layer.bottoms])]
                for layer in self.layers if layer.blob_names}

    def spatially_dynamic(self) -> bool:
        """Whether the net runs at sizes other than the deploy size (no layer's weights pin H and W)."""
        first = next(iter(self.inputs))
        s = self.inputs[first]
        if len(s) != 4:
            return False
        try:
            base = self.weight_shapes()
            for dh, dw in ((32, 48), (96, 64)):
                if self.weight_shapes({first: (s[0], s[1], s[2] + dh, s[3] + dw)}) != base:
                    return False
        except ConvertError:
            return False
        return True

    def fits(self, input_shape: Shape | dict[str, Shape], base: dict | None = None) -> bool:
        """Whether the net runs at this input shape with its deploy-size weights (`base`: those shapes)."""
        try:
            return self.weight_shapes(input_shape) == (self.weight_shapes() if base is None else base)
        except ConvertError:
            return False

    def input_sizes(self, reach: int = 96) -> str:
        """Which H and W the first input takes: "any", "deploy" (only the deploy size), or the ranges
        around the deploy size that still fit the weights, e.g. "H 224-255, W 224-255"."""
        first = next(iter(self.inputs))
        s = self.inputs[first]
        if len(s) != 4:
            return "deploy"
        if self.spatially_dynamic():
            return "any"
        ranges, base = [], self.weight_shapes()
        for axis in (2, 3):
            def fits(v, axis=axis):
                shp = list(s)
                shp[axis] = v
                return v >= 1 and self.fits({first: tuple(shp)}, base)

            ranges.append((_edge(fits, s[axis], max(1, s[axis] - reach)), _edge(fits, s[axis], s[axis] + reach)))
        if all(lo == hi for lo, hi in ranges):
            return "deploy"
        return ", ".join(f"{n} {lo}-{hi}" for n, (lo, hi) in zip("HW", ranges))

    def copy(self) -> Graph:
        layers = [Layer(lyr.name, lyr.type, list(lyr.bottoms), list(lyr.tops), copy.deepcopy(lyr.proto),
                        [np.array(b, np.float32, copy=True) for b in lyr.blobs]) for lyr in self.layers]
        return Graph(self.name, dict(self.inputs), layers, list(self.outputs), self.source, self.mean,
                     list(self.notes))

    def truncated(self, outputs: list[str]) -> Graph:
        """The sub-graph needed for `outputs` (weights shared, not copied)."""
        needed = needed_layers(self, outputs)
        layers = [lyr for i, lyr in enumerate(self.layers) if i in needed]
        return Graph(self.name, dict(self.inputs), layers, list(outputs), self.source, self.mean)


def _check_fits(layer: Layer, ins: list[Shape]) -> None:
    want = layer.op.weight_shapes(layer.attrs, ins)
    for blob, w in zip(layer.blobs, want):
        if tuple(blob.shape) != tuple(w):
            raise ConvertError(f"layer {layer.name!r}: input shape {ins[0]} does not fit its weights "
                               f"({tuple(blob.shape)}; this input needs {tuple(w)})")


def needed_layers(g: Graph, outputs: list[str]) -> set[int]:
    index = {t: i for i, layer in enumerate(g.layers) for t in layer.tops}
    for o in outputs:
        if o not in index and o not in g.inputs:
            raise ConvertError(f"unknown blob {o!r}")
    todo, need = list(outputs), set()
    while todo:
        b = todo.pop()
        i = index.get(b)
        if i is None or i in need:
            continue
        need.add(i)
        todo.extend(g.layers[i].bottoms)
    return need


def available_memory() -> int:
    """zoo.memory's one reading of free memory (kept under this name for its callers)."""
    from zoo.memory import available_bytes

    return available_bytes()


def _edge(fits, inside: int, limit: int) -> int:
    """The last size from `inside` (which fits) toward `limit` that still fits, by bisection: every
    blob's H and W grow monotonically with the input's, so the sizes that keep the weights' shapes
    are one interval (a walk one size at a time took 0.27 s of a 0.4 s ResNet-50 conversion)."""
    if fits(limit):
        return limit
    good, bad = inside, limit
    while abs(bad - good) > 1:
        mid = (good + bad) // 2
        if fits(mid):
            good = mid
        else:
            bad = mid
    return good
