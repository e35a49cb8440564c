"""Tensor ops that reorder, repeat or reduce a blob: Permute, ShuffleChannel, Tile, Reduction, ArgMax."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, axis_index, register


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


@dataclass(frozen=True)
class ReductionAttrs:
    operation: int
    axis: int
    coeff: float


@register("Reduction")
class Reduction(Op):
    """reduction_layer.cpp: SUM, ASUM, SUMSQ or MEAN over every axis from `axis` on, times coeff."""

    def attrs(self, p):
        q = p.reduction_param
        return ReductionAttrs(q.operation, q.axis, q.coeff)

    def shape(self, a, ins, name):
        ax = axis_index(a.axis, len(ins[0]), name)
        return [tuple(ins[0][:ax])]

    def onnx(self, ctx, a, layer):
        op, axis, coeff = a.operation, a.axis, a.coeff
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
        op, axis, coeff = a.operation, a.axis, a.coeff
        x = xs[0]
        dims = tuple(range(axis_index(axis, x.dim(), ""), x.dim()))
        v = {SUM: x, ASUM: x.abs(), SUMSQ: x * x, MEAN: x}[op]
        r = v.mean(dim=dims) if op == MEAN else v.sum(dim=dims)
        return [r * coeff if coeff != 1 else r]


@dataclass(frozen=True)
class TileAttrs:
    axis: int
    tiles: int


@register("Tile")
class Tile(Op):
    """tile_layer.cpp: the blob repeated `tiles` times along `axis`."""

    def attrs(self, p):
        q = p.tile_param
        if q.tiles < 1:
            raise ConvertError(f"layer {p.name!r}: tiles must be positive")
        return TileAttrs(q.axis, q.tiles)

    def shape(self, a, ins, name):
        ax = axis_index(a.axis, len(ins[0]), name)
        return [tuple(d * a.tiles if i == ax else d for i, d in enumerate(ins[0]))]

    def onnx(self, ctx, a, layer):
        ndim = len(ctx.shape(layer.bottoms[0]))
        ax = axis_index(a.axis, ndim, layer.name)
        reps = ctx.const_i64([a.tiles if i == ax else 1 for i in range(ndim)], layer.tops[0] + "/reps")
        ctx.node("Tile", [ctx.inputs(layer)[0], reps], ctx.outputs(layer))

    def torch(self, a, m, xs):
        ax = axis_index(a.axis, xs[0].dim(), "")
        return [xs[0].repeat(*[a.tiles if i == ax else 1 for i in range(xs[0].dim())])]
