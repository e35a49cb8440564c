"""The per-blob table `zoo info` prints: shapes at the deploy size, parameters, multiply-adds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.graph import Graph, Layer


@dataclass(frozen=True)
class Row:
    blob: str
    layer: str
    type: str
    shape: tuple[int, ...]
    params: int
    macs: int


def summary(graph: Graph, input_shape=None) -> list[Row]:
    shapes = graph.shapes(input_shape)
    rows = [Row(n, n, "Input", shapes[n], 0, 0) for n in graph.inputs]
    weight_shapes = graph.weight_shapes(input_shape)
    for layer in graph.layers:
        ins = [shapes[b] for b in layer.bottoms]
        outs = [shapes[t] for t in layer.tops]
        params = sum(math.prod(s) for s in weight_shapes.get(layer.name, []))
        macs = layer.op.macs(layer.attrs, ins, outs)
        for i, t in enumerate(layer.tops):
            rows.append(Row(t, layer.name, layer.type, shapes[t], params if i == 0 else 0, macs if i == 0 else 0))
    return rows


def human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.1f}{unit}"
        n /= 1000
    return f"{n:.1f}P"


def origin(graph: Graph, blob: str) -> Layer:
    """The layer that first made a blob, looking through in-place layers (ReLU on a sum)."""
    producer = graph.producers
    layer = producer[blob]
    while True:
        earlier = [b for b in layer.bottoms if b.split("@", 1)[0] == blob.split("@", 1)[0] and b in producer]
        if not earlier:
            return layer
        layer = producer[earlier[0]]


def dreamable_blobs(graph: Graph, most: int = 10) -> list[str]:
    """Blobs worth dreaming on, shallow to deep: block outputs first, else activations (the handlers'
    block_end and activation traits: Concat/Eltwise; ReLU, pooling, LRN...).

    These are where a net's features are complete (an inception module's output, a residual sum);
    intermediate convolutions inside a block tend to give noisier, less readable dreams.
    """
    shapes = graph.shapes()
    producer = graph.producers
    public = [b for b in graph.blob_names if b not in graph.inputs]
    spatial = [b for b in public if len(shapes[b]) == 4 and min(shapes[b][2:]) > 1]
    blocks = [b for b in spatial if origin(graph, b).op.block_end]
    pool = blocks if len(blocks) >= 4 else [b for b in spatial if producer[b].op.activation or producer[b].op.block_end]
    pool = pool or spatial
    if len(pool) <= most:
        return pool
    step = len(pool) / most
    return [pool[int(i * step + step / 2)] for i in range(most)]


def default_dream_blob(blobs: list[str]) -> str:
    """THE rule for a default dream blob, given dreamable blobs shallow to deep: halfway down
    (GoogLeNet: inception_4c/output), deep enough for objects, shallow enough to stay an image.
    zoo convert --name, training previews and zoo export all use it."""
    if not blobs:
        raise ValueError("no dreamable blobs to choose from")
    return blobs[min(len(blobs) - 1, len(blobs) // 2)]
