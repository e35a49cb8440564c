"""Layers that resample a blob to another size: Interp (DeepLab/PSPNet's bilinear) and Upsample (SegNet's
unpooling by the pooling mask)."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, register


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
