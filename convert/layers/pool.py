"""Pooling with Caffe's rounding: ceil by default, the last window must start inside the image.

The same rule holds at every input size (DeepDream runs each octave at a different size), so it is
computed from the input shape each time, never frozen into pads at the deploy size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, register

MAX, AVE, STOCHASTIC = 0, 1, 2


@dataclass(frozen=True)
class PoolAttrs:
    method: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    global_pool: bool
    ceil: bool


def _hw(p, field: str, default: int | None, name: str) -> tuple[int, int]:
    has_h, has_w = p.HasField(f"{field}_h"), p.HasField(f"{field}_w")
    if has_h or has_w:
        if not (has_h and has_w):
            raise ConvertError(f"layer {name!r}: {field}_h and {field}_w must be given together")
        return getattr(p, f"{field}_h"), getattr(p, f"{field}_w")
    if p.HasField(field if field != "kernel" else "kernel_size"):
        v = getattr(p, field if field != "kernel" else "kernel_size")
        return v, v
    if default is None:
        raise ConvertError(f"layer {name!r}: pooling needs kernel_size (or global_pooling)")
    return default, default


def pool_output(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    """Caffe's pooled size: ceil rounding, then drop a last window that starts in the right padding."""
    span = size + 2 * p - k
    out = (math.ceil(span / s) if ceil else span // s) + 1
    if p > 0 and (out - 1) * s >= size + p:
        out -= 1
    return out


@register("Pooling")
class Pooling(Op):
    activation = True

    def attrs(self, p):
        q, name = p.pooling_param, p.name
        if q.pool == STOCHASTIC:
            raise ConvertError(f"layer {name!r}: STOCHASTIC pooling is not supported")
        glob = q.global_pooling
        kernel = (0, 0) if glob else _hw(q, "kernel", None, name)
        stride = _hw(q, "stride", 1, name)
        pad = _hw(q, "pad", 0, name)
        if glob and (max(pad) > 0 or max(stride) > 1):
            raise ConvertError(f"layer {name!r}: global pooling takes no pad and stride 1")
        if not glob and (min(kernel) < 1 or min(stride) < 1):
            raise ConvertError(f"layer {name!r}: kernel and stride must be positive")
        if not glob and (pad[0] >= kernel[0] or pad[1] >= kernel[1]):
            raise ConvertError(f"layer {name!r}: pad {pad} must be smaller than kernel {kernel}")
        return PoolAttrs(q.pool, tuple(kernel), tuple(stride), tuple(pad), glob, q.round_mode == 0)

    def shape(self, a, ins, name):
        x = ins[0]
        if len(x) != 4:
            raise ConvertError(f"layer {name!r}: expects a 4-D input, got shape {x}")
        if a.global_pool:
            return [(x[0], x[1], 1, 1)]
        hw = []
        for size, k, s, p in zip(x[2:], a.kernel, a.stride, a.pad):
            if size + 2 * p < k:
                raise ConvertError(f"layer {name!r}: input {x[2]}x{x[3]} is smaller than kernel {a.kernel}")
            hw.append(pool_output(size, k, s, p, a.ceil))
        return [(x[0], x[1], hw[0], hw[1])]

    def onnx(self, ctx, a, layer):
        (x,), outs = ctx.inputs(layer), ctx.outputs(layer)
        if a.global_pool:
            ctx.node("GlobalMaxPool" if a.method == MAX else "GlobalAveragePool", [x], outs)
            return
        common = dict(kernel_shape=list(a.kernel), strides=list(a.stride),
                      pads=[a.pad[0], a.pad[1], a.pad[0], a.pad[1]], ceil_mode=int(a.ceil))
        if a.method == MAX:
            ctx.node("MaxPool", [x], outs, **common)
        else:
            ctx.node("AveragePool", [x], outs, count_include_pad=1, **common)

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        x = xs[0]
        if a.global_pool:
            return [x.amax(dim=(2, 3), keepdim=True) if a.method == MAX else x.mean(dim=(2, 3), keepdim=True)]
        if a.method == MAX:
            return [F.max_pool2d(x, a.kernel, a.stride, a.pad, ceil_mode=a.ceil)]
        # torch's divisor with count_include_pad counts padding up to H + pad, exactly like Caffe
        return [F.avg_pool2d(x, a.kernel, a.stride, a.pad, ceil_mode=a.ceil, count_include_pad=True)]
