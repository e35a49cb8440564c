"""Normalisation and affine layers: BatchNorm (Caffe's three blobs, no affine part), Scale, Bias, MVN,
the forks' BN (SegNet, PSPNet) and SSD's Normalize."""

from __future__ import annotations

from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers.base import Op, axis_index, register


@register("BatchNorm")
class BatchNorm(Op):
    buffers = ("mean", "variance", "scale_factor")

    def attrs(self, p):
        return p.batch_norm_param.eps

    def weight_shapes(self, eps, ins):
        if len(ins[0]) < 2:
            raise ConvertError("BatchNorm expects at least a 2-D input")
        c = ins[0][1]
        return [(c,), (c,), (1,)]

    def fill(self, eps, shapes, rng):
        import numpy as np

        c = shapes[0][0]
        return [(rng.standard_normal(c) * 0.1).astype(np.float32),
                rng.uniform(0.5, 1.5, c).astype(np.float32), np.ones(1, np.float32)]

    @staticmethod
    def _factor(sf) -> float:
        s = float(sf.reshape(-1)[0])
        return 0.0 if s == 0 else 1.0 / s

    def onnx(self, ctx, eps, layer):
        import numpy as np

        f = self._factor(layer.blobs[2])
        c = layer.blobs[0].size
        mean = ctx.weight(layer, 0, lambda m: (m.reshape(-1) * f).astype(np.float32))
        var = ctx.weight(layer, 1, lambda v: (v.reshape(-1) * f).astype(np.float32))
        ones = ctx.const(np.ones(c, np.float32), layer.name + "/gamma")
        zeros = ctx.const(np.zeros(c, np.float32), layer.name + "/beta")
        ctx.node("BatchNormalization", [ctx.inputs(layer)[0], ones, zeros, mean, var], ctx.outputs(layer),
                 epsilon=eps)

    def torch(self, eps, m, xs):
        import torch.nn.functional as F

        sf = m.scale_factor.reshape(-1)[0]
        f = (sf != 0).to(sf.dtype) / (sf + (sf == 0).to(sf.dtype))
        mean, var = m.mean.reshape(-1) * f, m.variance.reshape(-1) * f
        return [F.batch_norm(xs[0], mean, var, None, None, False, 0.0, eps)]


@dataclass(frozen=True)
class AxesAttrs:
    axis: int
    num_axes: int
    bias: bool
    two_bottoms: bool


def _span(a: AxesAttrs, x: tuple[int, ...], name: str) -> tuple[int, tuple[int, ...]]:
    ax = axis_index(a.axis, len(x), name) if x else 0
    n = len(x) - ax if a.num_axes == -1 else a.num_axes
    if n < 0 or ax + n > len(x):
        raise ConvertError(f"layer {name!r}: num_axes {a.num_axes} does not fit a {len(x)}-D input")
    return ax, tuple(x[ax:ax + n])


def _broadcast(w_shape: tuple[int, ...], ax: int, ndim: int) -> tuple[int, ...]:
    return tuple(w_shape) + (1,) * (ndim - ax - len(w_shape))


class _Axes(Op):
    """Shared logic of Scale and Bias: a parameter (or a second bottom) over axes [axis, axis + num_axes)."""

    n_bottoms = (1, 2)

    def _onnx_target(self, ctx, a, layer) -> tuple[int, ...]:
        shape = ctx.shape(layer.bottoms[0])
        ax, s = self._second_shape(a, [shape] + [ctx.shape(b) for b in layer.bottoms[1:]], layer.name)
        return _broadcast(s, ax, len(shape))

    def _onnx_operand(self, ctx, layer, target, blob_index: int, hint: str) -> str:
        """The second bottom or a weight blob, shaped to broadcast along the covered axes."""
        if blob_index < 0:
            # trailing unit axes added to the run-time tensor: no shape frozen at the deploy size
            y, second = ctx.outputs(layer)[0], ctx.inputs(layer)[1]
            n = len(ctx.shape(layer.bottoms[1]))
            if len(target) == n:
                return second
            axes = ctx.const_i64(list(range(n, len(target))), f"{y}/{hint}axes")
            return ctx.node("Unsqueeze", [second, axes], [ctx.tmp(y, hint)])[0]
        return ctx.weight(layer, blob_index, lambda w: w.reshape(target))

    def _second_shape(self, a, ins, name):
        if a.two_bottoms:
            ax = axis_index(a.axis, len(ins[0]), name)
            s = ins[1]
            if tuple(ins[0][ax:ax + len(s)]) != tuple(s):
                raise ConvertError(f"layer {name!r}: second bottom {s} does not match input {ins[0]} at axis {ax}")
            return ax, tuple(s)
        return _span(a, ins[0], name)


@register("Scale")
class Scale(_Axes):
    filler_fields = {"weight": ("scale_param", "filler"), "bias": ("scale_param", "bias_filler")}
    default_fillers = {"weight": ("constant", 1.0)}

    def attrs(self, p):
        q = p.scale_param
        return AxesAttrs(q.axis, q.num_axes, q.bias_term, len(p.bottom) == 2)

    def blob_names(self, a):
        names = () if a.two_bottoms else ("weight",)
        return names + (("bias",) if a.bias else ())

    def weight_shapes(self, a, ins):
        _, s = self._second_shape(a, ins, "")
        return [s] * len(self.blob_names(a))

    def fill(self, a, shapes, rng):
        import numpy as np

        out = []
        for name, s in zip(self.blob_names(a), shapes):
            out.append(rng.uniform(0.5, 1.5, s).astype(np.float32) if name == "weight"
                       else (rng.standard_normal(s) * 0.1).astype(np.float32))
        return out

    def onnx(self, ctx, a, layer):
        ins, (y,) = ctx.inputs(layer), ctx.outputs(layer)
        target = self._onnx_target(ctx, a, layer)
        gamma = self._onnx_operand(ctx, layer, target, -1 if a.two_bottoms else 0, "gamma")
        if not a.bias:
            ctx.node("Mul", [ins[0], gamma], [y])
            return
        prod = ctx.node("Mul", [ins[0], gamma], [ctx.tmp(y, "mul")])[0]
        beta = self._onnx_operand(ctx, layer, target, 0 if a.two_bottoms else 1, "beta")
        ctx.node("Add", [prod, beta], [y])

    def torch(self, a, m, xs):
        x = xs[0]
        ax, s = self._second_shape(a, [tuple(x.shape)] + [tuple(t.shape) for t in xs[1:]], "")
        target = _broadcast(s, ax, x.dim())
        gamma = xs[1] if a.two_bottoms else m.weight
        y = x * gamma.reshape(target)
        return [y + m.bias.reshape(target) if a.bias else y]


@register("Bias")
class Bias(_Axes):
    params = ("bias",)
    filler_fields = {"bias": ("bias_param", "filler")}

    def attrs(self, p):
        q = p.bias_param
        return AxesAttrs(q.axis, q.num_axes, True, len(p.bottom) == 2)

    def blob_names(self, a):
        return () if a.two_bottoms else ("bias",)

    def weight_shapes(self, a, ins):
        return [] if a.two_bottoms else [_span(a, ins[0], "")[1]]

    def onnx(self, ctx, a, layer):
        target = self._onnx_target(ctx, a, layer)
        b = self._onnx_operand(ctx, layer, target, -1 if a.two_bottoms else 0, "bias")
        ctx.node("Add", [ctx.inputs(layer)[0], b], [ctx.outputs(layer)[0]])

    def torch(self, a, m, xs):
        x = xs[0]
        ax, s = self._second_shape(a, [tuple(x.shape)] + [tuple(t.shape) for t in xs[1:]], "")
        b = xs[1] if a.two_bottoms else m.bias
        return [x + b.reshape(_broadcast(s, ax, x.dim()))]


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
