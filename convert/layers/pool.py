"""Pooling with Caffe's rounding: ceil by default, the last window must start inside the image.

The same rule holds at every input size (DeepDream runs each octave at a different size), so it is
computed from the input shape each time, never frozen into pads at the deploy size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers import input_grad
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
    mask: bool = False  # a second top: the flat index h * W + w of each maximum (SegNet's Upsample uses it)


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
        if q.pool == STOCHASTIC and max(pad) > 0:
            raise ConvertError(f"layer {name!r}: STOCHASTIC pooling with pad is not defined in Caffe")
        # BVLC's round_mode and the forks' ceil_mode: floor if either says so
        ceil = q.round_mode == 0 and (not q.HasField("ceil_mode") or q.ceil_mode)
        mask = len(p.top) == 2
        if mask and (q.pool != MAX or glob):
            raise ConvertError(f"layer {name!r}: only MAX pooling gives a mask (second top)")
        return PoolAttrs(q.pool, tuple(kernel), tuple(stride), tuple(pad), glob, ceil, mask)

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
        return [(x[0], x[1], hw[0], hw[1])] * (2 if a.mask else 1)

    def onnx(self, ctx, a, layer):
        (x,), outs = ctx.inputs(layer), ctx.outputs(layer)
        if a.global_pool:
            op = "GlobalMaxPool" if a.method == MAX else "GlobalAveragePool"
            if a.method == STOCHASTIC:
                _stochastic_onnx(ctx, x, outs[0], op="GlobalAveragePool")
            else:
                ctx.node(op, [x], outs)
            return
        common = dict(kernel_shape=list(a.kernel), strides=list(a.stride),
                      pads=[a.pad[0], a.pad[1], a.pad[0], a.pad[1]], ceil_mode=int(a.ceil))
        # ONNX's shape rule keeps a last window that starts in the right padding, Caffe drops it:
        # pool, then slice to Caffe's size computed from the run-time input shape.
        exact = a.ceil and max(a.pad) > 0
        y = ctx.tmp(outs[0], "pool") if exact else outs[0]
        if a.method == MAX and a.mask:
            self._onnx_mask(ctx, a, x, outs, common, exact)
            return
        if a.method == MAX:
            ctx.node("MaxPool", [x], [y], **common)
        elif a.method == AVE:
            ctx.node("AveragePool", [x], [y], count_include_pad=1, **common)
        else:
            _stochastic_onnx(ctx, x, y, op="AveragePool", **common)
        if exact:
            _slice_to_caffe_size(ctx, a, x, y, outs[0])

    def _onnx_mask(self, ctx, a, x, outs, common, exact):
        """ONNX's indices count over the whole NCHW tensor: modulo H * W they are Caffe's mask."""
        y, mask = outs
        vals, idx = (ctx.tmp(y, "pool"), ctx.tmp(y, "idx")) if exact else (y, ctx.tmp(y, "idx"))
        ctx.node("MaxPool", [x], [vals, idx], **common)
        plane = ctx.node("ReduceProd", [ctx.node("Shape", [x], [ctx.tmp(y, "hw")], start=2)[0]],
                         [ctx.tmp(y, "plane")], keepdims=1)[0]
        local = ctx.node("Mod", [idx, plane], [ctx.tmp(y, "local")])[0]
        if exact:
            _slice_to_caffe_size(ctx, a, x, vals, y)
            local2 = ctx.tmp(mask, "sliced")
            _slice_to_caffe_size(ctx, a, x, local, local2)
            local = local2
        ctx.node("Cast", [local], [mask], to=1)

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        x = xs[0]
        if a.mask:
            y, idx = F.max_pool2d(x, a.kernel, a.stride, a.pad, ceil_mode=a.ceil, return_indices=True)
            return [y, idx.to(x.dtype)]
        if a.global_pool:
            if a.method == STOCHASTIC:
                return [_stochastic_torch(x, lambda v: v.mean(dim=(2, 3), keepdim=True))]
            return [x.amax(dim=(2, 3), keepdim=True) if a.method == MAX else x.mean(dim=(2, 3), keepdim=True)]
        if any(2 * p > k for p, k in zip(a.pad, a.kernel)):
            return [_caffe_pool_torch(a, x)]  # torch refuses pad > kernel / 2, Caffe does not
        if a.method == MAX:
            if input_grad.active(x):  # a dream: the backward keeps the indices, not the input
                return [input_grad.max_pool2d(x, a.kernel, a.stride, a.pad, a.ceil)]
            return [F.max_pool2d(x, a.kernel, a.stride, a.pad, ceil_mode=a.ceil)]
        if a.method == STOCHASTIC:
            return [_stochastic_torch(x, lambda v: F.avg_pool2d(v, a.kernel, a.stride, 0, ceil_mode=a.ceil))]
        # torch's divisor with count_include_pad counts padding up to H + pad, exactly like Caffe
        return [F.avg_pool2d(x, a.kernel, a.stride, a.pad, ceil_mode=a.ceil, count_include_pad=True)]


def _slice_to_caffe_size(ctx, a: PoolAttrs, x: str, pooled: str, y: str) -> None:
    """out = ceil((H + 2p - k) / s) + 1, minus one where (out - 1) * s >= H + p; per spatial axis."""
    hw = ctx.node("Shape", [x], [ctx.tmp(y, "hw")], start=2, end=4)[0]
    c = lambda v, hint: ctx.const_i64(list(v), f"{y}/{hint}")  # noqa: E731
    span = ctx.node("Add", [hw, c([2 * p - k + s - 1 for p, k, s in zip(a.pad, a.kernel, a.stride)], "span")],
                    [ctx.tmp(y, "span")])[0]
    steps = ctx.node("Div", [span, c(a.stride, "stride")], [ctx.tmp(y, "steps")])[0]  # span >= 0: floor
    last = ctx.node("Mul", [steps, c(a.stride, "stride2")], [ctx.tmp(y, "last")])[0]  # (out - 1) * s
    limit = ctx.node("Add", [hw, c(a.pad, "pad")], [ctx.tmp(y, "limit")])[0]
    drop = ctx.node("GreaterOrEqual", [last, limit], [ctx.tmp(y, "dropb")])[0]
    drop = ctx.node("Cast", [drop], [ctx.tmp(y, "drop")], to=7)[0]
    out = ctx.node("Add", [steps, c([1, 1], "one")], [ctx.tmp(y, "out1")])[0]
    out = ctx.node("Sub", [out, drop], [ctx.tmp(y, "out")])[0]
    ctx.node("Slice", [pooled, c([0, 0], "starts"), out, c([2, 3], "axes")], [y])


def _stochastic_onnx(ctx, x: str, y: str, op: str, **attrs) -> None:
    """Caffe's test-time STOCHASTIC pooling: the probability-weighted mean sum(x^2) / sum(x) per window."""
    sq = ctx.node("Mul", [x, x], [ctx.tmp(y, "sq")])[0]
    extra = {"count_include_pad": 1} if attrs else {}
    num = ctx.node(op, [sq], [ctx.tmp(y, "num")], **attrs, **extra)[0]
    den = ctx.node(op, [x], [ctx.tmp(y, "den")], **attrs, **extra)[0]
    zero = ctx.node("Equal", [den, ctx.scalar(0.0)], [ctx.tmp(y, "zero")])[0]
    safe = ctx.node("Where", [zero, ctx.scalar(1.0), den], [ctx.tmp(y, "safe")])[0]
    ratio = ctx.node("Div", [num, safe], [ctx.tmp(y, "ratio")])[0]
    ctx.node("Where", [zero, ctx.scalar(0.0), ratio], [y])


def _stochastic_torch(x, mean):
    import torch

    num, den = mean(x * x), mean(x)
    zero = den == 0
    return torch.where(zero, torch.zeros_like(den), num / torch.where(zero, torch.ones_like(den), den))


def _caffe_pool_torch(a: PoolAttrs, x):
    """pooling_layer.cpp written out for any pad below the kernel: explicit padding, then Caffe's divisor."""
    import torch
    import torch.nn.functional as F

    h, w = x.shape[2:]
    oh, ow = (pool_output(n, k, s, p, a.ceil) for n, k, s, p in zip((h, w), a.kernel, a.stride, a.pad))
    (kh, kw), (sh, sw), (ph, pw) = a.kernel, a.stride, a.pad
    rh, rw = max((oh - 1) * sh + kh - h - ph, 0), max((ow - 1) * sw + kw - w - pw, 0)
    if a.method == MAX:
        xp = F.pad(x, (pw, rw, ph, rh), value=float("-inf"))
        return F.max_pool2d(xp, a.kernel, a.stride)[:, :, :oh, :ow]
    xp = F.pad(x, (pw, rw, ph, rh))
    total = F.avg_pool2d(xp, a.kernel, a.stride, divisor_override=1)[:, :, :oh, :ow]

    def counts(n, o, k, s, p):
        start = torch.arange(o, dtype=x.dtype, device=x.device) * s - p
        return torch.minimum(start + k, torch.full_like(start, n + p)) - start

    return total / (counts(h, oh, kh, sh, ph)[:, None] * counts(w, ow, kw, sw, pw)[None, :])
