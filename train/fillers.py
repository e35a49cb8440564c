"""Caffe's weight fillers, for `--init scratch` and for a new classifier head.

Each layer's handler says where its prototxt names the fillers (weight_filler / bias_filler,
PReLU's filler) and what to use where it names none (xavier weights, constant 0 biases, PReLU 0.25,
Scale 1); they are applied here with Caffe's formulas (xavier: uniform +-sqrt(3/n); msra: gaussian
sqrt(2/n); n = fan in by default).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from zoo.convert.api import random_weights
from zoo.convert.graph import Graph, Layer

Filler = Callable[..., np.ndarray]


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    count = math.prod(shape)
    fan_in = count // shape[0] if shape and shape[0] else 1
    fan_out = count // shape[1] if len(shape) > 1 and shape[1] else 1
    return fan_in, fan_out


def _norm(f, shape) -> float:
    fan_in, fan_out = _fans(shape)
    n = {0: fan_in, 1: fan_out, 2: (fan_in + fan_out) / 2.0}[int(f.variance_norm)]
    return max(float(n), 1.0)


def _xavier(f, shape, rng) -> np.ndarray:
    s = math.sqrt(3.0 / _norm(f, shape))
    return rng.uniform(-s, s, shape).astype(np.float32)


FILLERS: dict[str, Filler] = {
    "constant": lambda f, shape, rng: np.full(shape, f.value, np.float32),
    "gaussian": lambda f, shape, rng: rng.normal(f.mean, f.std, shape).astype(np.float32),
    "uniform": lambda f, shape, rng: rng.uniform(f.min, f.max, shape).astype(np.float32),
    "xavier": lambda f, shape, rng: _xavier(f, shape, rng),
    "msra": lambda f, shape, rng: rng.normal(0.0, math.sqrt(2.0 / _norm(f, shape)), shape).astype(np.float32),
}


def fill_layer(layer: Layer, shapes: list[tuple[int, ...]], rng: np.random.Generator) -> list[np.ndarray]:
    """Blobs for one layer from the fillers its handler reads from the prototxt (or its defaults);
    layers whose handler names no Caffe fillers (BatchNorm's statistics) get the handler's `fill`."""
    op = layer.op
    if not op.filler_fields:
        return [np.asarray(b, np.float32) for b in op.fill(layer.attrs, shapes, rng)]
    blobs = []
    for name, shape in zip(layer.blob_names, shapes, strict=False):
        f = op.caffe_filler(layer.proto, name)
        fn = FILLERS.get(f.type)
        if fn is None:
            raise ValueError(f"layer {layer.name!r}: unsupported filler {f.type!r}")
        blobs.append(np.ascontiguousarray(fn(f, tuple(shape), rng), np.float32))
    return blobs


def scratch_weights(graph: Graph, seed: int) -> Graph:
    """A copy of the graph with every weighted layer filled from its Caffe fillers."""
    return random_weights(graph, seed, fill=fill_layer)
