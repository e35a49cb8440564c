"""Layers that forks added (SSD, ShuffleNet, SENet, SegNet, PSPNet/DeepLab) and BVLC's rarer ones.

Each follows the fork's published forward at test time; see the per-layer docstrings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, axis_index, register
from zoo.convert.layers.conv import Convolution


@register("ConvolutionDepthwise", "DepthwiseConvolution")
class ConvolutionDepthwise(Convolution):
    """ShuffleNet/MobileNet forks: one filter per input channel, group = channels whatever `group` says."""

    is_classifier = False  # one filter per channel: never a class head

    def _a(self, a, ins):
        return replace(a, group=ins[0][1]) if len(ins[0]) == 4 else a

    def shape(self, a, ins, name):
        a = self._a(a, ins)
        if a.num_output % a.group:
            raise ConvertError(f"layer {name!r}: num_output {a.num_output} is not a multiple of "
                               f"{a.group} input channels")
        return super().shape(a, ins, name)

    def weight_shapes(self, a, ins):
        return super().weight_shapes(self._a(a, ins), ins)

    def macs(self, a, ins, outs):
        return super().macs(self._a(a, ins), ins, outs)

    def onnx(self, ctx, a, layer):
        super().onnx(ctx, self._a(a, [ctx.shape(layer.bottoms[0])]), layer)

    def torch(self, a, m, xs):
        return super().torch(self._a(a, [tuple(xs[0].shape)]), m, xs)


@register("Axpy")
class Axpy(Op):
    """SE-ResNet's fused excitation: top = a * x + y, a (N, C) or (N, C, 1, 1) broadcast over H, W."""

    block_end = True  # SE-ResNet's residual sum

    n_bottoms = (3, 3)

    def shape(self, a, ins, name):
        s, x, y = ins
        if x != y or tuple(s[:2]) != tuple(x[:2]) or any(d != 1 for d in s[2:]):
            raise ConvertError(f"layer {name!r}: Axpy needs a (N, C[, 1, 1]) scale and two equal inputs, "
                               f"got {s}, {x}, {y}")
        return [x]

    def onnx(self, ctx, a, layer):
        (s, x, y), (out,) = ctx.inputs(layer), ctx.outputs(layer)
        n, nx = len(ctx.shape(layer.bottoms[0])), len(ctx.shape(layer.bottoms[1]))
        if n < nx:
            s = ctx.node("Unsqueeze", [s, ctx.const_i64(list(range(n, nx)), out + "/axes")],
                         [ctx.tmp(out, "a")])[0]
        prod = ctx.node("Mul", [s, x], [ctx.tmp(out, "ax")])[0]
        ctx.node("Add", [prod, y], [out])

    def torch(self, a, m, xs):
        s, x, y = xs
        return [s.reshape(*s.shape[:2], *([1] * (x.dim() - 2))) * x + y]


@register("ShuffleChannel")
class ShuffleChannel(Op):
    """ShuffleNet: channels (g, C/g) transposed to (C/g, g)."""

    def attrs(self, p):
        return max(int(p.shuffle_channel_param.group), 1)

    def shape(self, g, ins, name):
        x = ins[0]
        if len(x) < 2 or x[1] % g:
            raise ConvertError(f"layer {name!r}: {x[1] if len(x) > 1 else 0} channels do not split into {g} groups")
        return [x]

    def onnx(self, ctx, g, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        c = ctx.shape(layer.bottoms[0])[1]
        split = ctx.node("Reshape", [x, ctx.const_i64([0, g, c // g, -1], y + "/groups")], [ctx.tmp(y, "g")])[0]
        t = ctx.node("Transpose", [split], [ctx.tmp(y, "t")], perm=[0, 2, 1, 3])[0]
        shape = ctx.node("Shape", [x], [ctx.tmp(y, "shape")])[0]
        ctx.node("Reshape", [t, shape], [y])

    def torch(self, g, m, xs):
        x = xs[0]
        n, c = x.shape[:2]
        return [x.reshape(n, g, c // g, -1).transpose(1, 2).reshape(x.shape)]


@register("Permute")
class Permute(Op):
    """SSD: axes reordered; unnamed axes follow in their order."""

    def attrs(self, p):
        return tuple(int(o) for o in p.permute_param.order)

    def perm(self, order, ndim, name):
        if len(set(order)) != len(order) or any(o >= ndim for o in order):
            raise ConvertError(f"layer {name!r}: permute order {order} does not fit a {ndim}-D input")
        return list(order) + [i for i in range(ndim) if i not in order]

    def shape(self, order, ins, name):
        return [tuple(ins[0][i] for i in self.perm(order, len(ins[0]), name))]

    def onnx(self, ctx, order, layer):
        perm = self.perm(order, len(ctx.shape(layer.bottoms[0])), layer.name)
        ctx.node("Transpose", ctx.inputs(layer), ctx.outputs(layer), perm=perm)

    def torch(self, order, m, xs):
        return [xs[0].permute(*self.perm(order, xs[0].dim(), "")).contiguous()]


@dataclass(frozen=True)
class NormAttrs:
    across_spatial: bool
    channel_shared: bool
    eps: float


@register("Normalize")
class Normalize(Op):
    """SSD's L2 normalization: x / sqrt(sum x^2 + eps) over C,H,W (across_spatial) or over C per
    position, times a learned scale (one value, or one per channel)."""

    activation = True
    filler_fields = {"scale": ("norm_param", "scale_filler")}
    default_fillers = {"scale": ("constant", 1.0)}

    params = ("scale",)

    def attrs(self, p):
        q = p.norm_param
        return NormAttrs(q.across_spatial, q.channel_shared, q.eps)

    def weight_shapes(self, a, ins):
        return [(1,)] if a.channel_shared else [(ins[0][1],)]

    def fill(self, a, shapes, rng):
        import numpy as np

        return [rng.uniform(5, 20, shapes[0]).astype(np.float32)]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        ndim = len(ctx.shape(layer.bottoms[0]))
        axes = list(range(1, ndim)) if a.across_spatial else [1]
        sq = ctx.node("Mul", [x, x], [ctx.tmp(y, "sq")])[0]
        s = ctx.node("ReduceSum", [sq, ctx.const_i64(axes, y + "/axes")], [ctx.tmp(y, "sum")], keepdims=1)[0]
        s = ctx.node("Add", [s, ctx.scalar(a.eps)], [ctx.tmp(y, "eps")])[0]
        norm = ctx.node("Sqrt", [s], [ctx.tmp(y, "norm")])[0]
        z = ctx.node("Div", [x, norm], [ctx.tmp(y, "z")])[0]
        scale = ctx.weight(layer, 0, lambda w: w.reshape((-1,) + (1,) * (ndim - 2)))
        ctx.node("Mul", [z, scale], [y])

    def torch(self, a, m, xs):
        x = xs[0]
        dims = tuple(range(1, x.dim())) if a.across_spatial else (1,)
        norm = ((x * x).sum(dim=dims, keepdim=True) + a.eps).sqrt()
        return [x / norm * m.scale.reshape((-1,) + (1,) * (x.dim() - 2))]


@dataclass(frozen=True)
class MVNAttrs:
    variance: bool
    across_channels: bool
    eps: float


@register("MVN")
class MVN(Op):
    """mvn_layer.cpp: subtract the mean over H,W (or C,H,W); divide by (std + eps), eps outside the root."""

    activation = True

    def attrs(self, p):
        q = p.mvn_param
        return MVNAttrs(q.normalize_variance, q.across_channels, q.eps)

    def _axes(self, a, ndim):
        return list(range(1 if a.across_channels else 2, ndim))

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        axes = self._axes(a, len(ctx.shape(layer.bottoms[0])))
        mean = ctx.node("ReduceMean", [x], [ctx.tmp(y, "mean")], axes=axes, keepdims=1)[0]
        d = ctx.node("Sub", [x, mean], [ctx.tmp(y, "d") if a.variance else y])[0]
        if not a.variance:
            return
        var = ctx.node("ReduceMean", [ctx.node("Mul", [d, d], [ctx.tmp(y, "d2")])[0]], [ctx.tmp(y, "var")],
                       axes=axes, keepdims=1)[0]
        std = ctx.node("Add", [ctx.node("Sqrt", [var], [ctx.tmp(y, "std")])[0], ctx.scalar(a.eps)],
                       [ctx.tmp(y, "den")])[0]
        ctx.node("Div", [d, std], [y])

    def torch(self, a, m, xs):
        x = xs[0]
        axes = tuple(self._axes(a, x.dim()))
        d = x - x.mean(dim=axes, keepdim=True)
        if not a.variance:
            return [d]
        return [d / ((d * d).mean(dim=axes, keepdim=True).sqrt() + a.eps)]


@dataclass(frozen=True)
class BNAttrs:
    inference: bool  # SegNet's bn_mode: INFERENCE (statistics folded into scale and shift)
    eps: float


@register("BN")
class BN(Op):
    """The forks' BN layer. SegNet with `bn_mode: INFERENCE`: y = scale * x + shift (its
    compute_bn_statistics folds the statistics in). PSPNet/yjxiong style (blobs slope, bias, mean,
    variance): y = slope * (x - mean) / sqrt(variance + eps) + bias."""

    buffers = ("mean", "variance")  # statistics: never trained

    def attrs(self, p):
        q = p.bn_param
        if q.HasField("bn_mode") and q.bn_mode == 0:
            raise ConvertError(f"layer {p.name!r}: BN in bn_mode LEARN uses batch statistics at test time; run "
                               "SegNet's compute_bn_statistics, which writes bn_mode: INFERENCE")
        return BNAttrs(q.HasField("bn_mode"), q.eps)

    def blob_names(self, a):
        return ("scale", "shift") if a.inference else ("slope", "bias", "mean", "variance")

    def weight_shapes(self, a, ins):
        c = ins[0][1]
        return [(1, c, 1, 1)] * len(self.blob_names(a))

    def fill(self, a, shapes, rng):
        import numpy as np

        out = [rng.uniform(0.5, 1.5, shapes[0]), rng.standard_normal(shapes[0]) * 0.1]
        if not a.inference:
            out += [rng.standard_normal(shapes[0]) * 0.1, rng.uniform(0.5, 1.5, shapes[0])]
        return [np.asarray(b, np.float32) for b in out]

    def _affine(self, a, blobs):
        import numpy as np

        if a.inference:
            return blobs[0].reshape(-1), blobs[1].reshape(-1)
        slope, bias, mean, var = (np.asarray(b, np.float64).reshape(-1) for b in blobs)
        k = slope / np.sqrt(var + a.eps)
        return (k.astype(np.float32), (bias - mean * k).astype(np.float32))

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        ndim = len(ctx.shape(layer.bottoms[0]))
        k, b = self._affine(a, layer.blobs)
        shape = (-1,) + (1,) * (ndim - 2)
        prod = ctx.node("Mul", [x, ctx.const(k.reshape(shape), layer.name + ".k")], [ctx.tmp(y, "k")])[0]
        ctx.node("Add", [prod, ctx.const(b.reshape(shape), layer.name + ".b")], [y])

    def torch(self, a, m, xs):
        x = xs[0]
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if a.inference:
            return [x * m.scale.reshape(shape) + m.shift.reshape(shape)]
        k = m.slope.reshape(shape) / (m.variance.reshape(shape) + a.eps).sqrt()
        return [(x - m.mean.reshape(shape)) * k + m.bias.reshape(shape)]


@dataclass(frozen=True)
class InterpAttrs:
    height: int
    width: int
    zoom: int
    shrink: int
    pad_beg: int
    pad_end: int


@register("Interp")
class Interp(Op):
    """DeepLab/PSPNet bilinear resize with aligned corners (interp_layer.cpp): a fixed height/width,
    or a zoom and/or shrink factor of the input size after its (non-positive) pads."""

    n_bottoms = (1, 2)

    def attrs(self, p):
        q = p.interp_param
        if q.pad_beg > 0 or q.pad_end > 0:
            raise ConvertError(f"layer {p.name!r}: Interp pads must be zero or negative (crops)")
        if q.zoom_factor < 1 or q.shrink_factor < 1:
            raise ConvertError(f"layer {p.name!r}: Interp zoom and shrink factors must be positive")
        return InterpAttrs(q.height, q.width, q.zoom_factor, q.shrink_factor, q.pad_beg, q.pad_end)

    def out_hw(self, a, ins, name):
        x = ins[0]
        if len(x) != 4:
            raise ConvertError(f"layer {name!r}: Interp expects a 4-D input, got {x}")
        if len(ins) == 2:
            return ins[1][2], ins[1][3]
        if a.height and a.width:
            return a.height, a.width
        out = []
        for n in x[2:]:
            e = n + a.pad_beg + a.pad_end
            if e < 1:
                raise ConvertError(f"layer {name!r}: input {x[2]}x{x[3]} is too small for its pads")
            e = (e - 1) // a.shrink + 1
            out.append(e + (e - 1) * (a.zoom - 1))
        return tuple(out)

    def shape(self, a, ins, name):
        return [(*ins[0][:2], *self.out_hw(a, ins, name))]

    def onnx(self, ctx, a, layer):
        ins, (y,) = ctx.inputs(layer), ctx.outputs(layer)
        x = ins[0]
        if a.pad_beg or a.pad_end:
            x = ctx.node("Slice", [x, ctx.const_i64([-a.pad_beg] * 2, y + "/cs"),
                                   ctx.const_i64([a.pad_end or 2**62] * 2, y + "/ce"),
                                   ctx.const_i64([2, 3], y + "/ca")], [ctx.tmp(y, "crop")])[0]
        nc = ctx.node("Shape", [x], [ctx.tmp(y, "nc")], start=0, end=2)[0]
        if len(ins) == 2:
            hw = ctx.node("Shape", [ins[1]], [ctx.tmp(y, "ref")], start=2, end=4)[0]
        elif a.height and a.width:
            hw = ctx.const_i64([a.height, a.width], y + "/hw")
        else:  # ((n - 1) // shrink + 1 - 1) * zoom + 1 = ((n - 1) // shrink) * zoom + 1
            n = ctx.node("Shape", [x], [ctx.tmp(y, "in")], start=2, end=4)[0]
            n = ctx.node("Sub", [n, ctx.const_i64([1, 1], y + "/one")], [ctx.tmp(y, "n1")])[0]
            n = ctx.node("Div", [n, ctx.const_i64([a.shrink] * 2, y + "/shrink")], [ctx.tmp(y, "sh")])[0]
            n = ctx.node("Mul", [n, ctx.const_i64([a.zoom] * 2, y + "/zoom")], [ctx.tmp(y, "zo")])[0]
            hw = ctx.node("Add", [n, ctx.const_i64([1, 1], y + "/one2")], [ctx.tmp(y, "hw")])[0]
        sizes = ctx.node("Concat", [nc, hw], [ctx.tmp(y, "sizes")], axis=0)[0]
        ctx.node("Resize", [x, "", "", sizes], [y], mode="linear", coordinate_transformation_mode="align_corners")

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        x = xs[0]
        hw = self.out_hw(a, [tuple(t.shape) for t in xs], "")
        if a.pad_beg or a.pad_end:
            h, w = x.shape[2:]
            x = x[:, :, -a.pad_beg:h + a.pad_end, -a.pad_beg:w + a.pad_end]
        return [F.interpolate(x, size=hw, mode="bilinear", align_corners=True)]


@dataclass(frozen=True)
class UpsampleAttrs:
    scale: tuple[int, int]
    size: tuple[int, int] | None
    pad_out: tuple[bool, bool]


@register("Upsample")
class Upsample(Op):
    """SegNet's max-unpooling: bottoms (x, mask), where the mask is a MAX Pooling's second top (the
    flat index h * W + w of each maximum); each value goes to its index in a zero map of
    scale x the size (or upsample_h x upsample_w). With one bottom: nearest-neighbour upsampling."""

    n_bottoms = (1, 2)

    def attrs(self, p):
        q = p.upsample_param
        sh = q.scale_h if q.HasField("scale_h") else q.scale
        sw = q.scale_w if q.HasField("scale_w") else q.scale
        size = (q.upsample_h, q.upsample_w) if q.HasField("upsample_h") and q.HasField("upsample_w") else None
        if sh < 1 or sw < 1:
            raise ConvertError(f"layer {p.name!r}: Upsample scale must be positive")
        return UpsampleAttrs((sh, sw), size, (q.pad_out_h, q.pad_out_w))

    def out_hw(self, a, x):
        if a.size:
            return a.size
        return tuple(n * s - int(p) for n, s, p in zip(x[2:], a.scale, a.pad_out))

    def shape(self, a, ins, name):
        x = ins[0]
        if len(x) != 4 or (len(ins) == 2 and ins[1] != x):
            raise ConvertError(f"layer {name!r}: Upsample needs a 4-D input and a mask of its shape, got {ins}")
        return [(*x[:2], *self.out_hw(a, x))]

    def onnx(self, ctx, a, layer):
        ins, (y,) = ctx.inputs(layer), ctx.outputs(layer)
        x = ins[0]
        if len(ins) == 1:
            if a.size or any(a.pad_out):
                raise ConvertError(f"layer {layer.name!r}: nearest Upsample takes only a scale")
            scales = ctx.const(__import__("numpy").asarray([1, 1, *a.scale], "float32"), y + "/scales")
            ctx.node("Resize", [x, "", scales], [y], mode="nearest", nearest_mode="floor",
                     coordinate_transformation_mode="asymmetric")
            return
        shape = ctx.shape(layer.bottoms[0])
        oh, ow = self.out_hw(a, shape)
        nc = ctx.node("Shape", [x], [ctx.tmp(y, "nc")], start=0, end=2)[0]
        if a.size:
            hw = ctx.const_i64([oh * ow], y + "/hw")
        else:
            hw_in = ctx.node("Shape", [x], [ctx.tmp(y, "hwin")], start=2, end=4)[0]
            hw2 = ctx.node("Sub", [ctx.node("Mul", [hw_in, ctx.const_i64(list(a.scale), y + "/s")],
                                            [ctx.tmp(y, "hws")])[0],
                                   ctx.const_i64([int(p) for p in a.pad_out], y + "/p")], [ctx.tmp(y, "hw2")])[0]
            hw = ctx.node("ReduceProd", [hw2], [ctx.tmp(y, "hw")], keepdims=1)[0]
        flat = ctx.node("Concat", [nc, hw], [ctx.tmp(y, "flat")], axis=0)[0]
        zeros = ctx.node("ConstantOfShape", [flat], [ctx.tmp(y, "zeros")])[0]
        plane = ctx.const_i64([0, 0, -1], y + "/plane")
        idx = ctx.node("Cast", [ctx.node("Reshape", [ins[1], plane], [ctx.tmp(y, "m")])[0]], [ctx.tmp(y, "idx")],
                       to=7)[0]
        vals = ctx.node("Reshape", [x, plane], [ctx.tmp(y, "v")])[0]
        up = ctx.node("ScatterElements", [zeros, idx, vals], [ctx.tmp(y, "up")], axis=2)[0]
        out_shape = hw2 if not a.size else ctx.const_i64([oh, ow], y + "/ohw")
        full = ctx.node("Concat", [nc, out_shape], [ctx.tmp(y, "full")], axis=0)[0]
        ctx.node("Reshape", [up, full], [y])

    def torch(self, a, m, xs):
        import torch
        import torch.nn.functional as F

        x = xs[0]
        if len(xs) == 1:
            return [F.interpolate(x, scale_factor=a.scale, mode="nearest")]
        oh, ow = self.out_hw(a, tuple(x.shape))
        n, c = x.shape[:2]
        out = torch.zeros(n, c, oh * ow, dtype=x.dtype, device=x.device)
        out = out.scatter(2, xs[1].reshape(n, c, -1).long(), x.reshape(n, c, -1))
        return [out.reshape(n, c, oh, ow)]


@dataclass(frozen=True)
class ArgMaxAttrs:
    out_max_val: bool
    top_k: int
    axis: int | None


def _torch_caffe_topk(x, k: int, dim: int):
    """The k largest along `dim` in Caffe's order: (value, index) pairs sorted descending, so among
    equal values the LAST index comes first. A stable descending sort of the flipped axis gives it."""
    import torch

    vals, idx = torch.sort(x.flip(dim), dim=dim, descending=True, stable=True)
    return vals.narrow(dim, 0, k), x.shape[dim] - 1 - idx.narrow(dim, 0, k)


def _onnx_caffe_topk(ctx, x: str, k: str, axis: int, y: str) -> tuple[str, str]:
    """TopK (which puts the lower index first among ties) on the flipped axis, indices mapped back;
    the axis length is read at run time, so any input size gets Caffe's last-index-first order."""
    flip = ctx.node("Slice", [x, ctx.const_i64([-1], y + "/fs"), ctx.const_i64([-(2 ** 63)], y + "/fe"),
                              ctx.const_i64([axis], y + "/fa"), ctx.const_i64([-1], y + "/fst")],
                    [ctx.tmp(y, "flip")])[0]
    vals, idx = ctx.node("TopK", [flip, k], [ctx.tmp(y, "vals"), ctx.tmp(y, "idx")], axis=axis)
    size = ctx.node("Gather", [ctx.node("Shape", [x], [ctx.tmp(y, "shape")])[0], ctx.const_i64([axis], y + "/ax")],
                    [ctx.tmp(y, "n")], axis=0)[0]
    last = ctx.node("Sub", [size, ctx.const_i64([1], y + "/one")], [ctx.tmp(y, "last")])[0]
    return vals, ctx.node("Sub", [last, idx], [ctx.tmp(y, "orig")])[0]


@register("ArgMax")
class ArgMax(Op):
    """argmax_layer.cpp: the top_k indices (as floats) or, with out_max_val, values along `axis`;
    without an axis, over each sample flattened: (N, 1 or 2, top_k) with indices then values.
    Ties go to the last index (Caffe's partial sort over (value, index) pairs, descending)."""

    def attrs(self, p):
        q = p.argmax_param
        if q.top_k < 1:
            raise ConvertError(f"layer {p.name!r}: top_k must be positive")
        return ArgMaxAttrs(q.out_max_val, q.top_k, q.axis if q.HasField("axis") else None)

    def shape(self, a, ins, name):
        x = ins[0]
        if a.axis is None:
            if a.top_k > math.prod(x[1:]):
                raise ConvertError(f"layer {name!r}: top_k {a.top_k} exceeds {math.prod(x[1:])} values")
            return [(x[0], 2 if a.out_max_val else 1, a.top_k, *([1] * max(len(x) - 3, 0)))]
        ax = axis_index(a.axis, len(x), name)
        if a.top_k > x[ax]:
            raise ConvertError(f"layer {name!r}: top_k {a.top_k} exceeds axis size {x[ax]}")
        return [tuple(a.top_k if i == ax else d for i, d in enumerate(x))]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        shape = ctx.shape(layer.bottoms[0])
        k = ctx.const_i64([a.top_k], y + "/k")
        if a.axis is not None:
            ax = axis_index(a.axis, len(shape), layer.name)
            vals, idx = _onnx_caffe_topk(ctx, x, k, ax, y)
            if a.out_max_val:
                ctx.node("Identity", [vals], [y])
            else:
                ctx.node("Cast", [idx], [y], to=1)
            return
        flat = ctx.node("Flatten", [x], [ctx.tmp(y, "flat")], axis=1)[0]
        vals, idx = _onnx_caffe_topk(ctx, flat, k, 1, y)
        idx = ctx.node("Cast", [idx], [ctx.tmp(y, "fidx")], to=1)[0]
        parts = [idx, vals] if a.out_max_val else [idx]
        both = ctx.node("Concat", [ctx.node("Unsqueeze", [p, ctx.const_i64([1], y + f"/u{i}")],
                                            [ctx.tmp(y, f"u{i}")])[0] for i, p in enumerate(parts)],
                        [ctx.tmp(y, "both")], axis=1)[0]
        out = ctx.shape(layer.tops[0]) if layer.tops[0] in ctx._shapes else None
        tail = [1] * (len(out) - 3) if out else []
        ctx.node("Reshape", [both, ctx.const_i64([0, len(parts), a.top_k, *tail], y + "/shape")], [y])

    def torch(self, a, m, xs):
        import torch

        x = xs[0]
        if a.axis is not None:
            ax = axis_index(a.axis, x.dim(), "")
            vals, idx = _torch_caffe_topk(x, a.top_k, ax)
            return [vals if a.out_max_val else idx.to(x.dtype)]
        vals, idx = _torch_caffe_topk(x.flatten(1), a.top_k, 1)
        parts = [idx.to(x.dtype), vals] if a.out_max_val else [idx.to(x.dtype)]
        out = torch.stack(parts, 1)
        return [out.reshape(*out.shape, *([1] * max(x.dim() - 3, 0)))]


SUM, ASUM, SUMSQ, MEAN = 1, 2, 3, 4


@register("Reduction")
class Reduction(Op):
    """reduction_layer.cpp: SUM, ASUM, SUMSQ or MEAN over every axis from `axis` on, times coeff."""

    def attrs(self, p):
        q = p.reduction_param
        return (q.operation, q.axis, q.coeff)

    def shape(self, a, ins, name):
        ax = axis_index(a[1], len(ins[0]), name)
        return [tuple(ins[0][:ax])]

    def onnx(self, ctx, a, layer):
        op, axis, coeff = a
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        ndim = len(ctx.shape(layer.bottoms[0]))
        axes = list(range(axis_index(axis, ndim, layer.name), ndim))
        r = ctx.tmp(y, "r")
        if op == SUM:  # opset 17: ReduceSum takes its axes as an input, the others as an attribute
            ctx.node("ReduceSum", [x, ctx.const_i64(axes, y + "/axes")], [r], keepdims=0)
        else:
            ctx.node({ASUM: "ReduceL1", SUMSQ: "ReduceSumSquare", MEAN: "ReduceMean"}[op], [x], [r], axes=axes,
                     keepdims=0)
        if coeff != 1:
            r = ctx.node("Mul", [r, ctx.scalar(coeff)], [ctx.tmp(y, "c")])[0]
        # the leading axes at run time ([] for axis 0: a scalar, as in Caffe)
        lead = ctx.node("Shape", [x], [ctx.tmp(y, "lead")], start=0, end=axes[0])[0] if axes[0] else \
            ctx.const_i64([], y + "/scalar")
        ctx.node("Reshape", [r, lead], [y])

    def torch(self, a, m, xs):
        op, axis, coeff = a
        x = xs[0]
        dims = tuple(range(axis_index(axis, x.dim(), ""), x.dim()))
        v = {SUM: x, ASUM: x.abs(), SUMSQ: x * x, MEAN: x}[op]
        r = v.mean(dim=dims) if op == MEAN else v.sum(dim=dims)
        return [r * coeff if coeff != 1 else r]


@register("Tile")
class Tile(Op):
    """tile_layer.cpp: the blob repeated `tiles` times along `axis`."""

    def attrs(self, p):
        q = p.tile_param
        if q.tiles < 1:
            raise ConvertError(f"layer {p.name!r}: tiles must be positive")
        return (q.axis, q.tiles)

    def shape(self, a, ins, name):
        ax = axis_index(a[0], len(ins[0]), name)
        return [tuple(d * a[1] if i == ax else d for i, d in enumerate(ins[0]))]

    def onnx(self, ctx, a, layer):
        ndim = len(ctx.shape(layer.bottoms[0]))
        ax = axis_index(a[0], ndim, layer.name)
        reps = ctx.const_i64([a[1] if i == ax else 1 for i in range(ndim)], layer.tops[0] + "/reps")
        ctx.node("Tile", [ctx.inputs(layer)[0], reps], ctx.outputs(layer))

    def torch(self, a, m, xs):
        ax = axis_index(a[0], xs[0].dim(), "")
        return [xs[0].repeat(*[a[1] if i == ax else 1 for i in range(xs[0].dim())])]


@register("Embed")
class Embed(Op):
    """embed_layer.cpp: each input value is an index into a (input_dim, num_output) table, plus bias."""

    filler_fields = {"weight": ("embed_param", "weight_filler"), "bias": ("embed_param", "bias_filler")}

    params = ("weight", "bias")

    def attrs(self, p):
        q = p.embed_param
        if q.num_output < 1 or q.input_dim < 1:
            raise ConvertError(f"layer {p.name!r}: Embed needs num_output and input_dim")
        return (q.num_output, q.input_dim, q.bias_term)

    def blob_names(self, a):
        return ("weight", "bias") if a[2] else ("weight",)

    def shape(self, a, ins, name):
        return [(*ins[0], a[0])]

    def weight_shapes(self, a, ins):
        return [(a[1], a[0]), (a[0],)] if a[2] else [(a[1], a[0])]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        idx = ctx.node("Cast", [x], [ctx.tmp(y, "idx")], to=7)[0]
        g = ctx.node("Gather", [ctx.weight(layer, 0), idx], [ctx.tmp(y, "g") if a[2] else y], axis=0)[0]
        if a[2]:
            ctx.node("Add", [g, ctx.weight(layer, 1)], [y])

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        y = F.embedding(xs[0].long(), m.weight)
        return [y + m.bias if a[2] else y]


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
class PriorAttrs:
    boxes: tuple[tuple[float, float], ...]  # (width, height) in pixels, in SSD's order per location
    variance: tuple[float, ...]
    clip: bool
    img: tuple[int, int]  # (h, w); 0 = from the image bottom
    step: tuple[float, float]  # (h, w); 0 = image size / map size
    offset: float


@register("PriorBox")
class PriorBox(Op):
    """SSD's prior_box_layer.cpp: for every map position and every box (min sizes, then sqrt(min*max),
    then each aspect ratio and its flip), the normalized corners, then their variances: (1, 2, L)."""

    n_bottoms = (2, 2)

    def attrs(self, p):
        q = p.prior_box_param
        ratios = [1.0]
        for r in q.aspect_ratio:
            for v in (r, 1 / r) if q.flip else (r,):
                if all(abs(v - e) > 1e-6 for e in ratios):
                    ratios.append(v)
        if not q.min_size or (q.max_size and len(q.max_size) != len(q.min_size)):
            raise ConvertError(f"layer {p.name!r}: PriorBox needs min_size (and one max_size per min_size)")
        boxes = []
        for i, s in enumerate(q.min_size):
            boxes.append((s, s))
            if q.max_size:
                boxes.append((math.sqrt(s * q.max_size[i]),) * 2)
            boxes += [(s * math.sqrt(r), s / math.sqrt(r)) for r in ratios if abs(r - 1) > 1e-6]
        var = tuple(q.variance) or (0.1,)
        if len(var) not in (1, 4):
            raise ConvertError(f"layer {p.name!r}: PriorBox takes 1 or 4 variances")
        img = (q.img_h, q.img_w) if q.img_h or q.img_w else (q.img_size, q.img_size)
        step = (q.step_h, q.step_w) if q.step_h or q.step_w else (q.step, q.step)
        return PriorAttrs(tuple(boxes), var * (4 // len(var)), q.clip, img, step, q.offset)

    def shape(self, a, ins, name):
        f = ins[0]
        return [(1, 2, f[2] * f[3] * len(a.boxes) * 4)]

    def onnx(self, ctx, a, layer):
        import numpy as np

        (f, im), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        c = lambda v, hint: ctx.const(np.asarray(v, np.float32), f"{y}/{hint}")  # noqa: E731
        fhw = ctx.node("Cast", [ctx.node("Shape", [f], [ctx.tmp(y, "fs")], start=2, end=4)[0]],
                       [ctx.tmp(y, "fhw")], to=1)[0]
        if a.img[0]:
            ihw = c(list(a.img), "img")
        else:
            ihw = ctx.node("Cast", [ctx.node("Shape", [im], [ctx.tmp(y, "is")], start=2, end=4)[0]],
                           [ctx.tmp(y, "ihw")], to=1)[0]
        step = c(list(a.step), "step") if a.step[0] else ctx.node("Div", [ihw, fhw], [ctx.tmp(y, "st")])[0]

        def axis(i, shape):  # centres along one axis, normalized: (arange(n) + offset) * step / img
            n = ctx.node("Gather", [fhw, ctx.const_i64([i], f"{y}/i{i}")], [ctx.tmp(y, f"n{i}")], axis=0)[0]
            r = ctx.node("Range", [ctx.scalar(0.0), ctx.node("Squeeze", [n], [ctx.tmp(y, f"sq{i}")])[0],
                                   ctx.scalar(1.0)], [ctx.tmp(y, f"r{i}")])[0]
            s = ctx.node("Gather", [step, ctx.const_i64([i], f"{y}/j{i}")], [ctx.tmp(y, f"s{i}")], axis=0)[0]
            d = ctx.node("Gather", [ihw, ctx.const_i64([i], f"{y}/k{i}")], [ctx.tmp(y, f"d{i}")], axis=0)[0]
            v = ctx.node("Mul", [ctx.node("Add", [r, ctx.scalar(a.offset)], [ctx.tmp(y, f"o{i}")])[0], s],
                         [ctx.tmp(y, f"c{i}")])[0]
            v = ctx.node("Div", [v, d], [ctx.tmp(y, f"cn{i}")])[0]
            half = ctx.node("Div", [c([[b[1 - i] / 2 for b in a.boxes]], f"half{i}"), d], [ctx.tmp(y, f"h{i}")])[0]
            v = ctx.node("Reshape", [v, ctx.const_i64(shape, f"{y}/rs{i}")], [ctx.tmp(y, f"v{i}")])[0]
            return (ctx.node("Sub", [v, half], [ctx.tmp(y, f"lo{i}")])[0],
                    ctx.node("Add", [v, half], [ctx.tmp(y, f"hi{i}")])[0])

        y0, y1 = axis(0, [-1, 1, 1])  # (H, 1, K)
        x0, x1 = axis(1, [1, -1, 1])  # (1, W, K)
        zero = ctx.node("Mul", [ctx.node("Add", [y0, x0], [ctx.tmp(y, "grid")])[0], ctx.scalar(0.0)],
                        [ctx.tmp(y, "zero")])[0]
        parts = [ctx.node("Unsqueeze", [ctx.node("Add", [v, zero], [ctx.tmp(y, f"e{j}")])[0],
                                        ctx.const_i64([3], f"{y}/u{j}")], [ctx.tmp(y, f"p{j}")])[0]
                 for j, v in enumerate((x0, y0, x1, y1))]
        corners = ctx.node("Concat", parts, [ctx.tmp(y, "corners")], axis=3)[0]
        if a.clip:
            corners = ctx.node("Clip", [corners, ctx.scalar(0.0), ctx.scalar(1.0)], [ctx.tmp(y, "clip")])[0]
        flat = ctx.node("Reshape", [corners, ctx.const_i64([1, 1, -1], f"{y}/flat")], [ctx.tmp(y, "flat")])[0]
        var = ctx.node("Add", [ctx.node("Mul", [corners, ctx.scalar(0.0)], [ctx.tmp(y, "z4")])[0],
                               c(list(a.variance), "var")], [ctx.tmp(y, "varg")])[0]
        var = ctx.node("Reshape", [var, ctx.const_i64([1, 1, -1], f"{y}/vflat")], [ctx.tmp(y, "vflat")])[0]
        ctx.node("Concat", [flat, var], [y], axis=1)

    def torch(self, a, m, xs):
        import torch

        f, im = xs
        fh, fw = f.shape[2:]
        ih, iw = a.img if a.img[0] else im.shape[2:]
        sh, sw = a.step if a.step[0] else (ih / fh, iw / fw)
        kw = torch.tensor([b[0] / 2 for b in a.boxes], dtype=f.dtype)
        kh = torch.tensor([b[1] / 2 for b in a.boxes], dtype=f.dtype)
        cy = ((torch.arange(fh, dtype=torch.float64) + a.offset) * sh).to(f.dtype)[:, None, None]
        cx = ((torch.arange(fw, dtype=torch.float64) + a.offset) * sw).to(f.dtype)[None, :, None]
        zero = torch.zeros(fh, fw, len(a.boxes), dtype=f.dtype)
        corners = torch.stack([(cx - kw) / iw + zero, (cy - kh) / ih + zero, (cx + kw) / iw + zero,
                               (cy + kh) / ih + zero], dim=3)
        if a.clip:
            corners = corners.clamp(0, 1)
        var = torch.tensor(a.variance, dtype=f.dtype).expand_as(corners)
        return [torch.stack([corners.reshape(-1), var.reshape(-1)])[None]]


@register("SPP")
class SPP(Op):
    """spp_layer.cpp: for each level l, 2^l x 2^l bins of kernel ceil(H / bins), stride = kernel, pad
    (kernel * bins - H + 1) // 2, pooled with Caffe's rules, flattened and concatenated (a
    pyramid of height 1 keeps its 4-D pool). Bins follow the input size, at run time in ONNX too."""

    def attrs(self, p):
        q = p.spp_param
        if q.pyramid_height < 1 or q.pool not in (0, 1):
            raise ConvertError(f"layer {p.name!r}: SPP needs pyramid_height >= 1 and MAX or AVE")
        return (q.pyramid_height, q.pool)

    def shape(self, a, ins, name):
        x = ins[0]
        if len(x) != 4 or min(x[2:]) < 2 ** (a[0] - 1):
            raise ConvertError(f"layer {name!r}: SPP of height {a[0]} needs at least {2 ** (a[0] - 1)} rows "
                               f"and columns, got {x}")
        for lv in range(a[0]):
            for n in x[2:]:
                k = -(-n // 2 ** lv)
                if (k * 2 ** lv - n + 1) // 2 >= k:  # Caffe's pooling refuses pad >= kernel
                    raise ConvertError(f"layer {name!r}: SPP level {lv} cannot pool a size of {n} "
                                       f"into {2 ** lv} bins (its pad would reach its kernel)")
        if a[0] == 1:
            return [(x[0], x[1], 1, 1)]
        return [(x[0], x[1] * sum(4 ** lv for lv in range(a[0])))]

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
        for lv in range(a[0]):
            b = 2 ** lv
            cells = []
            for hs, he, hd in self._windows(h, b):
                for ws, we, wd in self._windows(w, b):
                    win = x[:, :, hs:he, ws:we]
                    cells.append(win.amax(dim=(2, 3)) if a[1] == 0 else win.sum(dim=(2, 3)) / (hd * wd))
            levels.append(torch.stack(cells, 2))  # (N, C, bins^2): flattened channel-major as in Caffe
        if a[0] == 1:
            return [levels[0].reshape(x.shape[0], x.shape[1], 1, 1)]
        return [torch.cat([lv.flatten(1) for lv in levels], 1)]

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        hw = ctx.node("Shape", [x], [ctx.tmp(y, "hw")], start=2, end=4)[0]
        i64 = lambda v, hint: ctx.const_i64(list(v), f"{y}/{hint}")  # noqa: E731
        levels = []
        for lv in range(a[0]):
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
                    if a[1] == 0:
                        cells.append(ctx.node("ReduceMax", [win], [ctx.tmp(y, "cell")], axes=[2, 3], keepdims=1)[0])
                        continue
                    total = ctx.node("ReduceSum", [win, i64([2, 3], "axes2")], [ctx.tmp(y, "sum")], keepdims=1)[0]
                    span = ctx.node("Sub", [ctx.node("Min", [e, ctx.node("Add", [hw, pad], [ctx.tmp(y, "hp")])[0]],
                                                     [ctx.tmp(y, "ec")])[0], s], [ctx.tmp(y, "span")])[0]
                    div = ctx.node("Cast", [ctx.node("ReduceProd", [span], [ctx.tmp(y, "area")], keepdims=1)[0]],
                                   [ctx.tmp(y, "div")], to=1)[0]
                    cells.append(ctx.node("Div", [total, div], [ctx.tmp(y, "cell")])[0])
            cat = ctx.node("Concat", cells, [ctx.tmp(y, f"level{lv}")], axis=3)[0]  # (N, C, 1, bins^2)
            if a[0] == 1:
                ctx.node("Identity", [cat], [y])
                return
            levels.append(ctx.node("Flatten", [cat], [ctx.tmp(y, f"flat{lv}")], axis=1)[0])
        ctx.node("Concat", levels, [y], axis=1)
