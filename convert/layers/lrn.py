"""Local response normalisation, both regions, with Caffe's k (which OpenCV ignores)."""

from __future__ import annotations

from dataclasses import dataclass

from convert.errors import ConvertError
from convert.layers.base import Op, register

ACROSS, WITHIN = 0, 1


@dataclass(frozen=True)
class LRNAttrs:
    size: int
    alpha: float
    beta: float
    k: float
    region: int


@register("LRN")
class LRN(Op):
    def attrs(self, p):
        q = p.lrn_param
        if q.local_size % 2 == 0:
            raise ConvertError(f"layer {p.name!r}: LRN local_size must be odd, got {q.local_size}")
        return LRNAttrs(q.local_size, q.alpha, q.beta, q.k, q.norm_region)

    def shape(self, a, ins, name):
        if len(ins[0]) != 4:
            raise ConvertError(f"layer {name!r}: LRN expects a 4-D input, got shape {ins[0]}")
        return [ins[0]]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        if a.region == ACROSS:
            ctx.node("LRN", [x], [y], size=a.size, alpha=a.alpha, beta=a.beta, bias=a.k)
            return
        # y = x * (1 + alpha * avepool_n(x^2)) ^ -beta, Caffe's padded AVE divisor (always n*n here)
        p = (a.size - 1) // 2
        sq = ctx.node("Mul", [x, x], [ctx.tmp(y, "sq")])[0]
        avg = ctx.node("AveragePool", [sq], [ctx.tmp(y, "avg")], kernel_shape=[a.size, a.size],
                       strides=[1, 1], pads=[p, p, p, p], count_include_pad=1)[0]
        scaled = ctx.node("Mul", [avg, ctx.scalar(a.alpha)], [ctx.tmp(y, "scaled")])[0]
        base = ctx.node("Add", [scaled, ctx.scalar(1.0)], [ctx.tmp(y, "base")])[0]
        den = ctx.node("Pow", [base, ctx.scalar(-a.beta)], [ctx.tmp(y, "pow")])[0]
        ctx.node("Mul", [x, den], [y])

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        x = xs[0]
        if a.region == ACROSS:
            return [F.local_response_norm(x, a.size, a.alpha, a.beta, a.k)]
        p = (a.size - 1) // 2
        avg = F.avg_pool2d(x * x, a.size, 1, p, count_include_pad=True)
        return [x * (1 + a.alpha * avg).pow(-a.beta)]
