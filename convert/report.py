"""The per-blob table `zoo info` prints: shapes at the deploy size, parameters, multiply-adds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from convert.graph import Graph


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
