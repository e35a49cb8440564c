"""Dense layers: InnerProduct (flatten from `axis`, weights (N, K) or (K, N) with `transpose`) and Embed."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, axis_index, register


@dataclass(frozen=True)
class IPAttrs:
    num_output: int
    bias: bool
    axis: int
    transpose: bool


@register("InnerProduct")
class InnerProduct(Op):
    params = ("weight", "bias")
    is_classifier = True
    filler_fields = {"weight": ("inner_product_param", "weight_filler"),
                     "bias": ("inner_product_param", "bias_filler")}

    def with_outputs(self, proto, n):
        out = type(proto)()
        out.CopyFrom(proto)
        out.inner_product_param.num_output = n
        return out

    def attrs(self, p):
        q = p.inner_product_param
        if not q.HasField("num_output") or q.num_output < 1:
            raise ConvertError(f"layer {p.name!r}: num_output is required")
        return IPAttrs(q.num_output, q.bias_term, q.axis, q.transpose)

    def blob_names(self, a):
        return ("weight", "bias") if a.bias else ("weight",)

    def _split(self, a, x, name):
        ax = axis_index(a.axis, len(x), name)
        return ax, x[:ax], math.prod(x[ax:])

    def shape(self, a, ins, name):
        ax, lead, _ = self._split(a, ins[0], name)
        return [(*lead, a.num_output)]

    def weight_shapes(self, a, ins):
        _, _, k = self._split(a, ins[0], "")
        w = (k, a.num_output) if a.transpose else (a.num_output, k)
        return [w, (a.num_output,)] if a.bias else [w]

    def macs(self, a, ins, outs):
        _, lead, k = self._split(a, ins[0], "")
        return math.prod(lead) * k * a.num_output

    def fill(self, a, shapes, rng):
        import numpy as np

        k = shapes[0][0] if a.transpose else shapes[0][1]
        out = [(rng.standard_normal(shapes[0]) * np.sqrt(2.0 / k)).astype(np.float32)]
        if a.bias:
            out.append((rng.standard_normal(shapes[1]) * 0.01).astype(np.float32))
        return out

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        shape = ctx.shape(layer.bottoms[0])
        ax = axis_index(a.axis, len(shape), layer.name)
        flat = ctx.node("Flatten", [x], [ctx.tmp(y, "flat")], axis=ax)[0]
        inputs = [flat, ctx.weight(layer, 0)] + ([ctx.weight(layer, 1)] if a.bias else [])
        if ax <= 1:
            ctx.node("Gemm", inputs, [y], transB=0 if a.transpose else 1)
            return
        gemm = ctx.node("Gemm", inputs, [ctx.tmp(y, "gemm")], transB=0 if a.transpose else 1)[0]
        lead = ctx.node("Shape", [x], [ctx.tmp(y, "lead")], start=0, end=ax)[0]
        target = ctx.node("Concat", [lead, ctx.const_i64([a.num_output], y + "/n")], [ctx.tmp(y, "target")],
                          axis=0)[0]
        ctx.node("Reshape", [gemm, target], [y])

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        x = xs[0].flatten(axis_index(a.axis, xs[0].dim(), ""))
        w = m.weight.t() if a.transpose else m.weight
        return [F.linear(x, w, m.bias if a.bias else None)]


@dataclass(frozen=True)
class EmbedAttrs:
    num_output: int
    input_dim: int
    bias: bool


@register("Embed")
class Embed(Op):
    """embed_layer.cpp: each input value is an index into a (input_dim, num_output) table, plus bias."""

    filler_fields = {"weight": ("embed_param", "weight_filler"), "bias": ("embed_param", "bias_filler")}

    params = ("weight", "bias")

    def attrs(self, p):
        q = p.embed_param
        if q.num_output < 1 or q.input_dim < 1:
            raise ConvertError(f"layer {p.name!r}: Embed needs num_output and input_dim")
        return EmbedAttrs(q.num_output, q.input_dim, q.bias_term)

    def blob_names(self, a):
        return ("weight", "bias") if a.bias else ("weight",)

    def shape(self, a, ins, name):
        return [(*ins[0], a.num_output)]

    def weight_shapes(self, a, ins):
        return [(a.input_dim, a.num_output), (a.num_output,)] if a.bias else [(a.input_dim, a.num_output)]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        idx = ctx.node("Cast", [x], [ctx.tmp(y, "idx")], to=7)[0]
        g = ctx.node("Gather", [ctx.weight(layer, 0), idx], [ctx.tmp(y, "g") if a.bias else y], axis=0)[0]
        if a.bias:
            ctx.node("Add", [g, ctx.weight(layer, 1)], [y])

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        y = F.embedding(xs[0].long(), m.weight)
        return [y + m.bias if a.bias else y]
