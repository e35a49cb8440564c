"""Layers that route, combine or reshape blobs: Concat, Slice, Split, Eltwise, Axpy (SE-ResNet), Flatten,
Reshape, Crop."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, axis_index, register


@register("Concat")
class Concat(Op):
    n_bottoms = (1, None)
    block_end = True

    def attrs(self, p):
        q = p.concat_param
        return q.concat_dim if q.HasField("concat_dim") and not q.HasField("axis") else q.axis

    def shape(self, axis, ins, name):
        ax = axis_index(axis, len(ins[0]), name)
        for s in ins[1:]:
            if len(s) != len(ins[0]) or any(a != b for i, (a, b) in enumerate(zip(s, ins[0])) if i != ax):
                raise ConvertError(f"layer {name!r}: cannot concatenate shapes {ins[0]} and {s} on axis {ax}")
        out = list(ins[0])
        out[ax] = sum(s[ax] for s in ins)
        return [tuple(out)]

    def onnx(self, ctx, axis, layer):
        ndim = len(ctx.shape(layer.bottoms[0]))
        ctx.node("Concat", ctx.inputs(layer), ctx.outputs(layer), axis=axis_index(axis, ndim, layer.name))

    def torch(self, axis, m, xs):
        import torch

        return [torch.cat(xs, axis_index(axis, xs[0].dim(), ""))]


@dataclass(frozen=True)
class SliceAttrs:
    axis: int
    points: tuple[int, ...]
    ntops: int


@register("Slice")
class Slice(Op):
    def attrs(self, p):
        q = p.slice_param
        axis = q.slice_dim if q.HasField("slice_dim") and not q.HasField("axis") else q.axis
        return SliceAttrs(axis, tuple(q.slice_point), len(p.top))

    def sizes(self, a, x, name) -> tuple[int, list[int]]:
        ax = axis_index(a.axis, len(x), name)
        n = x[ax]
        if a.points:
            if len(a.points) != a.ntops - 1:
                raise ConvertError(f"layer {name!r}: {len(a.points)} slice points for {a.ntops} tops")
            bounds = [0, *a.points, n]
            sizes = [b - a_ for a_, b in zip(bounds, bounds[1:])]
            if min(sizes) < 1:
                raise ConvertError(f"layer {name!r}: slice points {a.points} do not fit size {n}")
            return ax, sizes
        if n % a.ntops:
            raise ConvertError(f"layer {name!r}: size {n} does not split evenly into {a.ntops} tops")
        return ax, [n // a.ntops] * a.ntops

    def shape(self, a, ins, name):
        ax, sizes = self.sizes(a, ins[0], name)
        return [tuple(s if i != ax else k for i, s in enumerate(ins[0])) for k in sizes]

    def onnx(self, ctx, a, layer):
        ax, sizes = self.sizes(a, ctx.shape(layer.bottoms[0]), layer.name)
        x = ctx.inputs(layer)[0]
        if not a.points:  # equal parts of whatever size the axis has at run time
            ctx.node("Split", [x], ctx.outputs(layer), axis=ax)
            return
        bounds = [0, *a.points, 2**62]
        axes = ctx.const_i64([ax], layer.name + "/axis")
        for y, lo, hi in zip(ctx.outputs(layer), bounds, bounds[1:]):
            ctx.node("Slice", [x, ctx.const_i64([lo], y + "/start"), ctx.const_i64([hi], y + "/end"), axes], [y])

    def torch(self, a, m, xs):
        ax, sizes = self.sizes(a, tuple(xs[0].shape), "")
        return list(xs[0].split(sizes, ax))


@register("Split")
class Split(Op):
    passes_through = True

    def attrs(self, p):
        return len(p.top)

    def shape(self, n, ins, name):
        return [ins[0]] * n

    def onnx(self, ctx, n, layer):
        x = ctx.inputs(layer)[0]
        for y in ctx.outputs(layer):
            ctx.node("Identity", [x], [y])

    def torch(self, n, m, xs):
        return [xs[0]] * n


PROD, SUM, MAX = 0, 1, 2


@dataclass(frozen=True)
class EltwiseAttrs:
    op: int
    coeff: tuple[float, ...]


@register("Eltwise")
class Eltwise(Op):
    n_bottoms = (1, None)
    block_end = True

    def attrs(self, p):
        q = p.eltwise_param
        if q.coeff and (q.operation != SUM or len(q.coeff) != len(p.bottom)):
            raise ConvertError(f"layer {p.name!r}: Eltwise coeff needs SUM and one value per bottom")
        return EltwiseAttrs(q.operation, tuple(q.coeff))

    def shape(self, a, ins, name):
        for s in ins[1:]:
            if s != ins[0]:
                raise ConvertError(f"layer {name!r}: Eltwise inputs differ in shape: {ins[0]} vs {s}")
        return [ins[0]]

    def onnx(self, ctx, a, layer):
        xs, (y,) = ctx.inputs(layer), ctx.outputs(layer)
        if a.op == SUM and a.coeff and any(c != 1 for c in a.coeff):
            xs = [x if c == 1 else ctx.node("Mul", [x, ctx.scalar(c)], [ctx.tmp(y, f"c{i}")])[0]
                  for i, (x, c) in enumerate(zip(xs, a.coeff))]
        op = {SUM: "Sum", PROD: "Mul", MAX: "Max"}[a.op]
        if op == "Mul":
            acc = xs[0]
            for i, x in enumerate(xs[1:], 1):
                acc = ctx.node("Mul", [acc, x], [y if i == len(xs) - 1 else ctx.tmp(y, f"p{i}")])[0]
        else:
            ctx.node(op, xs, [y])

    def torch(self, a, m, xs):
        if a.op == SUM:
            coeff = a.coeff or (1.0,) * len(xs)
            out = xs[0] * coeff[0] if coeff[0] != 1 else xs[0]
            for x, c in zip(xs[1:], coeff[1:]):
                out = out + (x * c if c != 1 else x)
            return [out]
        out = xs[0]
        for x in xs[1:]:
            out = out * x if a.op == PROD else out.maximum(x)
        return [out]


@dataclass(frozen=True)
class FlattenAttrs:
    axis: int
    end_axis: int


@register("Flatten")
class Flatten(Op):
    passes_through = True

    def attrs(self, p):
        return FlattenAttrs(p.flatten_param.axis, p.flatten_param.end_axis)

    def _axes(self, a, ndim, name):
        start, end = axis_index(a.axis, ndim, name), axis_index(a.end_axis, ndim, name)
        if end < start:
            raise ConvertError(f"layer {name!r}: Flatten end_axis before axis")
        return start, end

    def shape(self, a, ins, name):
        x = ins[0]
        s, e = self._axes(a, len(x), name)
        return [(*x[:s], math.prod(x[s:e + 1]), *x[e + 1:])]

    def onnx(self, ctx, a, layer):
        x = ctx.shape(layer.bottoms[0])
        s, e = self._axes(a, len(x), layer.name)
        (xin,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        target = ctx.const_i64([0] * s + [-1], y + "/shape")
        if e + 1 < len(x):  # the axes after end_axis keep their run-time sizes
            tail = ctx.node("Shape", [xin], [ctx.tmp(y, "tail")], start=e + 1)[0]
            target = ctx.node("Concat", [target, tail], [ctx.tmp(y, "target")], axis=0)[0]
        ctx.node("Reshape", [xin, target], [y])

    def torch(self, a, m, xs):
        s, e = self._axes(a, xs[0].dim(), "")
        return [xs[0].flatten(s, e)]


@dataclass(frozen=True)
class ReshapeAttrs:
    dims: tuple[int, ...]
    axis: int
    num_axes: int


@register("Reshape")
class Reshape(Op):
    passes_through = True

    def attrs(self, p):
        q = p.reshape_param
        return ReshapeAttrs(tuple(q.shape.dim), q.axis, q.num_axes)

    def target(self, a, x, name) -> tuple[int, ...]:
        dims, axis, num_axes = a.dims, a.axis, a.num_axes
        ax = axis_index(axis, len(x) + 1, name)
        end = len(x) if num_axes == -1 else ax + num_axes
        if end > len(x):
            raise ConvertError(f"layer {name!r}: Reshape axes [{ax}, {end}) do not fit shape {x}")
        if any(d == 0 for d in dims) and max(i for i, d in enumerate(dims) if d == 0) + ax >= len(x):
            raise ConvertError(f"layer {name!r}: Reshape copies dimension {ax + len(dims) - 1} (dim: 0) "
                               f"of a {len(x)}-D input {x}")
        if any(d < -1 for d in dims):
            raise ConvertError(f"layer {name!r}: Reshape dims must be positive, 0 (copy) or -1 (infer)")
        new = [x[ax + i] if d == 0 else d for i, d in enumerate(dims)]
        out = [*x[:ax], *new, *x[end:]]
        if out.count(-1) > 1:
            raise ConvertError(f"layer {name!r}: Reshape may infer only one dimension")
        total, known = math.prod(x), math.prod(d for d in out if d != -1)
        if -1 in out:
            if known == 0 or total % known:
                raise ConvertError(f"layer {name!r}: cannot reshape {x} to {tuple(dims)}")
            out[out.index(-1)] = total // known
        if math.prod(out) != total:
            raise ConvertError(f"layer {name!r}: cannot reshape {x} ({total} values) to {tuple(out)}")
        return tuple(out)

    def shape(self, a, ins, name):
        return [self.target(a, ins[0], name)]

    def onnx(self, ctx, a, layer):
        """Caffe's 0 (copy) and -1 (infer) mean the same in ONNX at the same positions: shapes stay run-time."""
        x = ctx.shape(layer.bottoms[0])
        self.target(a, x, layer.name)  # refuse at the deploy size what Caffe refuses
        dims, axis, num_axes = a.dims, a.axis, a.num_axes
        ax = axis_index(axis, len(x) + 1, layer.name)
        end = len(x) if num_axes == -1 else ax + num_axes
        (xin,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        parts = []
        if ax > 0:
            parts.append(ctx.node("Shape", [xin], [ctx.tmp(y, "head")], start=0, end=ax)[0])
        parts.append(ctx.const_i64(list(dims), y + "/dims"))
        if end < len(x):
            parts.append(ctx.node("Shape", [xin], [ctx.tmp(y, "tail")], start=end)[0])
        target = parts[0] if len(parts) == 1 else ctx.node("Concat", parts, [ctx.tmp(y, "target")], axis=0)[0]
        ctx.node("Reshape", [xin, target], [y])

    def torch(self, a, m, xs):
        return [xs[0].reshape(self.target(a, tuple(xs[0].shape), ""))]


@dataclass(frozen=True)
class CropAttrs:
    axis: int
    offsets: tuple[int, ...]


@register("Crop")
class Crop(Op):
    n_bottoms = (2, 2)

    def attrs(self, p):
        return CropAttrs(p.crop_param.axis, tuple(p.crop_param.offset))

    def _plan(self, a, x, ref, name):
        ax = axis_index(a.axis, len(x), name)
        n = len(x) - ax
        offs = a.offsets
        if len(offs) not in (0, 1, n):
            raise ConvertError(f"layer {name!r}: {len(offs)} crop offsets for {n} cropped axes")
        offs = [offs[0]] * n if len(offs) == 1 else (list(offs) or [0] * n)
        for i, o in enumerate(offs):
            if o + ref[ax + i] > x[ax + i]:
                raise ConvertError(f"layer {name!r}: crop of {x} to {ref} at offset {o} runs past the input")
        return ax, offs

    def shape(self, a, ins, name):
        x, ref = ins
        ax, _ = self._plan(a, x, ref, name)
        return [(*x[:ax], *ref[ax:])]

    def onnx(self, ctx, a, layer):
        x, ref = ctx.inputs(layer)
        ax, offs = self._plan(a, ctx.shape(layer.bottoms[0]), ctx.shape(layer.bottoms[1]), layer.name)
        ndim = len(ctx.shape(layer.bottoms[0]))
        y = ctx.outputs(layer)[0]
        starts = ctx.const_i64(offs, y + "/starts")
        axes = ctx.const_i64(list(range(ax, ndim)), y + "/axes")
        shp = ctx.node("Shape", [ref], [ctx.tmp(y, "refshape")], start=ax)[0]
        ends = ctx.node("Add", [shp, starts], [ctx.tmp(y, "ends")])[0]
        ctx.node("Slice", [x, starts, ends, axes], [y])

    def torch(self, a, m, xs):
        x, ref = xs
        ax, offs = self._plan(a, tuple(x.shape), tuple(ref.shape), "")
        index = [slice(None)] * ax + [slice(o, o + ref.shape[ax + i]) for i, o in enumerate(offs)]
        return [x[tuple(index)]]


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
