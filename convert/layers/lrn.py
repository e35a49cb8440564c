"""Local response normalisation, both regions, with Caffe's k (which OpenCV ignores)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, register

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
    activation = True

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
        sq = ctx.node("Mul", [x, x], [ctx.tmp(y, "sq")])[0]
        if a.region == ACROSS:
            # k + alpha/n * (sum of x^2 over the channel window) as a banded 1x1 convolution with
            # bias k: ONNX Runtime's own LRN kernel is five times slower than this on GoogLeNet
            c = ctx.shape(layer.bottoms[0])[1]
            w = ctx.const(_band(c, a), layer.name + "/window")
            k = ctx.const(np.full(c, a.k, np.float32), layer.name + "/k")
            base = ctx.node("Conv", [sq, w, k], [ctx.tmp(y, "base")], kernel_shape=[1, 1])[0]
        else:
            # 1 + alpha * avepool_n(x^2), Caffe's padded AVE divisor (always n*n at stride 1)
            p = (a.size - 1) // 2
            avg = ctx.node("AveragePool", [sq], [ctx.tmp(y, "avg")], kernel_shape=[a.size, a.size],
                           strides=[1, 1], pads=[p, p, p, p], count_include_pad=1)[0]
            scaled = ctx.node("Mul", [avg, ctx.scalar(a.alpha)], [ctx.tmp(y, "scaled")])[0]
            base = ctx.node("Add", [scaled, ctx.scalar(1.0)], [ctx.tmp(y, "base")])[0]
        _times_pow(ctx, x, base, -a.beta, y)

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        x = xs[0]
        if a.region == ACROSS:
            # the same banded 1x1 convolution as the ONNX graph, a GEMM forward and backward:
            # F.local_response_norm's avg_pool3d took 18 % of a 512x512 GoogLeNet forward+backward
            return [_across_function().apply(x, _band_torch(m, x.shape[1], a, x), _k_torch(m, x.shape[1], a, x),
                                              a.beta)]
        p = (a.size - 1) // 2
        avg = F.avg_pool2d(x * x, a.size, 1, p, count_include_pad=True)
        return [x * (1 + a.alpha * avg).pow(-a.beta)]


def _power(base, beta: float):
    """base ** beta; the common 0.75 and 0.5 through square roots (Pow forward and backward took a fifth
    of a GoogLeNet forward+backward on the CPU)."""
    if beta == 0.75:
        r = base.sqrt()
        return r * r.sqrt()
    if beta == 0.5:
        return base.sqrt()
    return base.pow(beta)


_ACROSS = None


def _across_function():
    """Across-channel LRN with a hand-written backward, built on first use (torch stays unimported on
    the ONNX path). y = x / base^beta with base = k + band @ x^2; the band is symmetric, so with
    q = g / base^beta, dx = q - 2 beta x (band @ (q x / base)): one GEMM each way, no Pow, and only
    x and base kept for the backward (autograd's version kept four tensors of that size)."""
    global _ACROSS
    if _ACROSS is None:
        import torch
        import torch.nn.functional as F

        class AcrossLRN(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, band, k, beta):
                base = F.conv2d(x * x, band, k)
                ctx.save_for_backward(x, band, base)  # the rest is recomputed: less memory held for backward
                ctx.beta = beta
                return x / _power(base, beta)

            @staticmethod
            def backward(ctx, g):
                x, band, base = ctx.saved_tensors
                q = g / _power(base, beta=ctx.beta)
                back = F.conv2d(q * x / base, band)
                return q - (2 * ctx.beta) * x * back, None, None, None

        _ACROSS = AcrossLRN
    return _ACROSS


def _band(c: int, a: LRNAttrs) -> np.ndarray:
    """(c, c, 1, 1) weights summing alpha/n * x^2 over each channel's window (Caffe's across-channel LRN)."""
    band = np.zeros((c, c, 1, 1), np.float32)
    pre = (a.size - 1) // 2
    for ch in range(c):
        band[ch, max(0, ch - pre):min(c, ch - pre + a.size)] = a.alpha / a.size
    return band


def _band_torch(m, c: int, a: LRNAttrs, like):
    """The band as a tensor like `like`, cached on the layer's module per device and dtype."""
    import torch

    cache = m.__dict__.setdefault("_lrn_band", {})
    key = (c, like.device, like.dtype)
    if key not in cache:
        cache[key] = torch.from_numpy(_band(c, a)).to(like.device, like.dtype)
    return cache[key]


def _k_torch(m, c: int, a: LRNAttrs, like):
    import torch

    cache = m.__dict__.setdefault("_lrn_k", {})
    key = (c, like.device, like.dtype)
    if key not in cache:
        cache[key] = torch.full((c,), a.k, device=like.device, dtype=like.dtype)
    return cache[key]


def _times_pow(ctx, x: str, base: str, exponent: float, y: str) -> None:
    """y = x * base^exponent; the common -0.75 and -0.5 through square roots, much faster than Pow."""
    if exponent in (-0.75, -0.5):
        r2 = ctx.node("Sqrt", [base], [ctx.tmp(y, "sqrt")])[0]
        if exponent == -0.75:
            r4 = ctx.node("Sqrt", [r2], [ctx.tmp(y, "sqrt4")])[0]
            r2 = ctx.node("Mul", [r2, r4], [ctx.tmp(y, "pow34")])[0]
        ctx.node("Div", [x, r2], [y])
        return
    den = ctx.node("Pow", [base, ctx.scalar(exponent)], [ctx.tmp(y, "pow")])[0]
    ctx.node("Mul", [x, den], [y])
