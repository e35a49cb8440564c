"""Pooling layers: Pooling with Caffe's rounding (ceil by default, the last window must start inside the
image), SPP's pyramid, and ROIPooling (rois as a second input).

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


@dataclass(frozen=True)
class ROIAttrs:
    pooled: tuple[int, int]
    scale: float


@register("ROIPooling")
class ROIPooling(Op):
    """Fast/Faster R-CNN (roi_pooling_layer.cpp): each roi (batch, x1, y1, x2, y2) in image pixels, scaled
    and rounded onto the feature map, max-pooled into pooled_h x pooled_w bins (empty bins give 0).
    Its rois come from an input (Fast R-CNN) or a proposal layer (Faster R-CNN's is Python: refused)."""

    n_bottoms = (2, 2)

    def attrs(self, p):
        q = p.roi_pooling_param
        if q.pooled_h < 1 or q.pooled_w < 1:
            raise ConvertError(f"layer {p.name!r}: ROIPooling needs pooled_h and pooled_w")
        return ROIAttrs((q.pooled_h, q.pooled_w), q.spatial_scale)

    def shape(self, a, ins, name):
        x, r = ins
        if len(x) != 4 or math.prod(r[1:]) != 5:
            raise ConvertError(f"layer {name!r}: ROIPooling takes a 4-D map and (R, 5) rois, got {x}, {r}")
        return [(r[0], x[1], *a.pooled)]

    def onnx(self, ctx, a, layer):
        (x, r), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        rois = ctx.node("Reshape", [r, ctx.const_i64([-1, 5], y + "/rois")], [ctx.tmp(y, "rois")])[0]
        ctx.node("MaxRoiPool", [x, rois], [y], pooled_shape=list(a.pooled), spatial_scale=a.scale)

    def torch(self, a, m, xs):
        import torch

        x, rois = xs[0], xs[1].reshape(-1, 5)
        h, w = x.shape[2:]
        ph, pw = a.pooled
        out = x.new_zeros(rois.shape[0], x.shape[1], ph, pw)

        def rnd(v):  # C's round: half away from zero
            return int(math.floor(abs(v) * a.scale + 0.5)) * (1 if v >= 0 else -1)

        for i, (b, x1, y1, x2, y2) in enumerate(rois.tolist()):
            sw, sh, ew, eh = rnd(x1), rnd(y1), rnd(x2), rnd(y2)
            bh, bw = max(eh - sh + 1, 1) / ph, max(ew - sw + 1, 1) / pw
            for p in range(ph):
                hs = min(max(math.floor(p * bh) + sh, 0), h)
                he = min(max(math.ceil((p + 1) * bh) + sh, 0), h)
                for q in range(pw):
                    ws = min(max(math.floor(q * bw) + sw, 0), w)
                    we = min(max(math.ceil((q + 1) * bw) + sw, 0), w)
                    if he > hs and we > ws:
                        out[i, :, p, q] = x[int(b), :, hs:he, ws:we].amax(dim=(1, 2))
        return [out if torch.is_grad_enabled() else out.detach()]


@dataclass(frozen=True)
class SPPAttrs:
    pyramid_height: int
    pool: int  # 0 MAX, 1 AVE


@register("SPP")
class SPP(Op):
    """spp_layer.cpp: for each level l, 2^l x 2^l bins of kernel ceil(H / bins), stride = kernel, pad
    (kernel * bins - H + 1) // 2, pooled with Caffe's rules, flattened and concatenated (a
    pyramid of height 1 keeps its 4-D pool). Bins follow the input size, at run time in ONNX too."""

    def attrs(self, p):
        q = p.spp_param
        if q.pyramid_height < 1 or q.pool not in (0, 1):
            raise ConvertError(f"layer {p.name!r}: SPP needs pyramid_height >= 1 and MAX or AVE")
        return SPPAttrs(q.pyramid_height, q.pool)

    def shape(self, a, ins, name):
        x = ins[0]
        least = 2 ** (a.pyramid_height - 1)
        if len(x) != 4 or min(x[2:]) < least:
            raise ConvertError(f"layer {name!r}: SPP of height {a.pyramid_height} needs at least {least} rows "
                               f"and columns, got {x}")
        for lv in range(a.pyramid_height):
            for n in x[2:]:
                k = -(-n // 2 ** lv)
                if (k * 2 ** lv - n + 1) // 2 >= k:  # Caffe's pooling refuses pad >= kernel
                    raise ConvertError(f"layer {name!r}: SPP level {lv} cannot pool a size of {n} "
                                       f"into {2 ** lv} bins (its pad would reach its kernel)")
        if a.pyramid_height == 1:
            return [(x[0], x[1], 1, 1)]
        return [(x[0], x[1] * sum(4 ** lv for lv in range(a.pyramid_height)))]

    @staticmethod
    def _windows(n: int, bins: int) -> list[tuple[int, int, int]]:
        """(start clipped, end clipped, Caffe's divisor span) of each bin along one axis of size n."""
        k = -(-n // bins)
        pad = (k * bins - n + 1) // 2
        out = []
        for i in range(bins):
            s = i * k - pad
            out.append((max(s, 0), min(s + k, n), min(s + k, n + pad) - s))
        return out

    def torch(self, a, m, xs):
        import torch

        x = xs[0]
        h, w = x.shape[2:]
        levels = []
        for lv in range(a.pyramid_height):
            b = 2 ** lv
            cells = []
            for hs, he, hd in self._windows(h, b):
                for ws, we, wd in self._windows(w, b):
                    win = x[:, :, hs:he, ws:we]
                    cells.append(win.amax(dim=(2, 3)) if a.pool == 0 else win.sum(dim=(2, 3)) / (hd * wd))
            levels.append(torch.stack(cells, 2))  # (N, C, bins^2): flattened channel-major as in Caffe
        if a.pyramid_height == 1:
            return [levels[0].reshape(x.shape[0], x.shape[1], 1, 1)]
        return [torch.cat([lv.flatten(1) for lv in levels], 1)]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        hw = ctx.node("Shape", [x], [ctx.tmp(y, "hw")], start=2, end=4)[0]
        i64 = lambda v, hint: ctx.const_i64(list(v), f"{y}/{hint}")  # noqa: E731
        levels = []
        for lv in range(a.pyramid_height):
            b = 2 ** lv
            k = ctx.node("Div", [ctx.node("Add", [hw, i64([b - 1] * 2, f"b{lv}")], [ctx.tmp(y, f"kb{lv}")])[0],
                                 i64([b] * 2, f"bb{lv}")], [ctx.tmp(y, f"k{lv}")])[0]
            rem = ctx.node("Sub", [ctx.node("Mul", [k, i64([b] * 2, f"m{lv}")], [ctx.tmp(y, f"kb2{lv}")])[0], hw],
                           [ctx.tmp(y, f"rem{lv}")])[0]
            pad = ctx.node("Div", [ctx.node("Add", [rem, i64([1, 1], f"one{lv}")], [ctx.tmp(y, f"r1{lv}")])[0],
                                   i64([2, 2], f"two{lv}")], [ctx.tmp(y, f"pad{lv}")])[0]
            cells = []
            for i in range(b):
                for j in range(b):
                    idx = i64([i, j], f"ij{lv}_{i}_{j}")
                    s = ctx.node("Sub", [ctx.node("Mul", [idx, k], [ctx.tmp(y, "ik")])[0], pad], [ctx.tmp(y, "s")])[0]
                    e = ctx.node("Add", [s, k], [ctx.tmp(y, "e")])[0]
                    s0 = ctx.node("Max", [s, i64([0, 0], "zero")], [ctx.tmp(y, "s0")])[0]
                    e0 = ctx.node("Min", [e, hw], [ctx.tmp(y, "e0")])[0]
                    win = ctx.node("Slice", [x, s0, e0, i64([2, 3], "axes")], [ctx.tmp(y, "win")])[0]
                    if a.pool == 0:
                        cells.append(ctx.node("ReduceMax", [win], [ctx.tmp(y, "cell")], axes=[2, 3], keepdims=1)[0])
                        continue
                    total = ctx.node("ReduceSum", [win, i64([2, 3], "axes2")], [ctx.tmp(y, "sum")], keepdims=1)[0]
                    span = ctx.node("Sub", [ctx.node("Min", [e, ctx.node("Add", [hw, pad], [ctx.tmp(y, "hp")])[0]],
                                                     [ctx.tmp(y, "ec")])[0], s], [ctx.tmp(y, "span")])[0]
                    div = ctx.node("Cast", [ctx.node("ReduceProd", [span], [ctx.tmp(y, "area")], keepdims=1)[0]],
                                   [ctx.tmp(y, "div")], to=1)[0]
                    cells.append(ctx.node("Div", [total, div], [ctx.tmp(y, "cell")])[0])
            cat = ctx.node("Concat", cells, [ctx.tmp(y, f"level{lv}")], axis=3)[0]  # (N, C, 1, bins^2)
            if a.pyramid_height == 1:
                ctx.node("Identity", [cat], [y])
                return
            levels.append(ctx.node("Flatten", [cat], [ctx.tmp(y, f"flat{lv}")], axis=1)[0])
        ctx.node("Concat", levels, [y], axis=1)
