"""The converter's public functions (re-exported by `convert`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from zoo.convert.build import attach_weights, build_graph
from zoo.convert.errors import ConvertError
from zoo.convert.graph import Graph
from zoo.convert.prototxt import read_prototxt
from zoo.convert.upgrade import upgrade_net
from zoo.convert.weights import read_mean, read_weights


def load_net(prototxt: str | Path, weights: str | Path | None = None, *,
             input_shape: tuple[int, ...] | None = None, mean: str | Path | None = None) -> Graph:
    """Read a deploy or train_val prototxt (V1 or V2) and optionally its weights into a Graph."""
    source = str(prototxt)
    net = upgrade_net(read_prototxt(prototxt), source)
    g = build_graph(net, source, input_shape)
    g.shapes()  # fail early, with the layer's name, if the deploy size does not fit
    if weights is not None:
        attach_weights(g, read_weights(weights), str(weights))
    if mean is not None:
        g.mean = read_mean(mean)
    return g


def random_weights(g: Graph, seed: int = 0, fill=None) -> Graph:  # noqa: ANN001 - fill(layer, shapes, rng)
    """A copy of the graph with seeded weights in every layer that has weights: each handler's `fill`
    (He-scaled), or `fill(layer, shapes, rng)` (train's Caffe fillers)."""
    out = g.copy()
    rng = np.random.default_rng(seed)
    shapes = out.shapes()
    for layer in out.layers:
        if layer.blob_names:
            want = [tuple(w) for w in layer.op.weight_shapes(layer.attrs, [shapes[b] for b in layer.bottoms])]
            blobs = fill(layer, want, rng) if fill is not None else layer.op.fill(layer.attrs, want, rng)
            layer.blobs = [np.ascontiguousarray(b, np.float32) for b in blobs]
    return out


def require_weights(g: Graph) -> None:
    missing = [layer.name for layer in g.layers if len(layer.blobs) != len(layer.blob_names)]
    if missing:
        raise ConvertError(f"{g.source}: no weights loaded for {', '.join(missing[:5])}"
                           f"{' ...' if len(missing) > 5 else ''}; pass --weights")
