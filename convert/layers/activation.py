"""Element-wise layers: one tiny handler each, sharing the identity shape rule."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.convert.errors import ConvertError
from zoo.convert.layers import input_grad
from zoo.convert.layers.base import Op, axis_index, register


@register("ReLU")
class ReLU(Op):
    passes_through = activation = True

    def attrs(self, p):
        return p.relu_param.negative_slope

    def onnx(self, ctx, slope, layer):
        if slope == 0:
            ctx.node("Relu", ctx.inputs(layer), ctx.outputs(layer))
        else:
            ctx.node("LeakyRelu", ctx.inputs(layer), ctx.outputs(layer), alpha=slope)

    def torch(self, slope, m, xs):
        import torch.nn.functional as F

        if slope == 0 and input_grad.active(xs[0]):  # a dream: the backward keeps a mask, not the output
            return [input_grad.relu(xs[0])]
        return [F.relu(xs[0]) if slope == 0 else F.leaky_relu(xs[0], slope)]


@register("PReLU")
class PReLU(Op):
    params = ("weight",)
    passes_through = activation = True
    filler_fields = {"weight": ("prelu_param", "filler")}
    default_fillers = {"weight": ("constant", 0.25)}

    def attrs(self, p):
        return p.prelu_param.channel_shared

    def weight_shapes(self, shared, ins):
        if len(ins[0]) < 2:
            return [(1,)]
        return [(1,)] if shared else [(ins[0][1],)]

    def fill(self, shared, shapes, rng):
        import numpy as np

        return [np.full(shapes[0], 0.25, np.float32)]

    def onnx(self, ctx, shared, layer):
        ndim = len(ctx.shape(layer.bottoms[0]))
        # slopes broadcast along the channel axis only, whatever the rank
        slope = ctx.weight(layer, 0, lambda w: w.reshape((-1,) + (1,) * max(ndim - 2, 0)))
        ctx.node("PRelu", [ctx.inputs(layer)[0], slope], ctx.outputs(layer))

    def torch(self, shared, m, xs):
        x = xs[0]
        w = m.weight.reshape((-1,) + (1,) * max(x.dim() - 2, 0))
        return [x.clamp(min=0) + w * x.clamp(max=0)]


@register("ELU")
class ELU(Op):
    activation = True

    def attrs(self, p):
        return p.elu_param.alpha

    def onnx(self, ctx, alpha, layer):
        ctx.node("Elu", ctx.inputs(layer), ctx.outputs(layer), alpha=alpha)

    def torch(self, alpha, m, xs):
        import torch.nn.functional as F

        return [F.elu(xs[0], alpha)]


class _Unary(Op):
    onnx_op = ""

    def onnx(self, ctx, a, layer):
        ctx.node(self.onnx_op, ctx.inputs(layer), ctx.outputs(layer))


@register("Sigmoid")
class Sigmoid(_Unary):
    onnx_op = "Sigmoid"
    passes_through = activation = True

    def torch(self, a, m, xs):
        return [xs[0].sigmoid()]


@register("TanH")
class TanH(_Unary):
    onnx_op = "Tanh"
    passes_through = activation = True

    def torch(self, a, m, xs):
        return [xs[0].tanh()]


@register("AbsVal")
class AbsVal(_Unary):
    onnx_op = "Abs"

    def torch(self, a, m, xs):
        return [xs[0].abs()]


@register("BNLL")
class BNLL(_Unary):
    onnx_op = "Softplus"

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        return [F.softplus(xs[0])]


@register("Dropout")
class Dropout(_Unary):
    """Identity at inference (kept as a node so its top keeps its name); drops while training."""

    onnx_op = "Identity"
    passes_through = True

    def attrs(self, p):
        return float(p.dropout_param.dropout_ratio)

    def torch(self, ratio, m, xs):
        if not m.training or ratio == 0:
            return [xs[0]]
        import torch.nn.functional as F

        return [F.dropout(xs[0], ratio, training=True)]


@register("Threshold")
class Threshold(Op):
    def attrs(self, p):
        return p.threshold_param.threshold

    def onnx(self, ctx, t, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        gt = ctx.node("Greater", [x, ctx.scalar(t)], [ctx.tmp(y, "gt")])[0]
        ctx.node("Cast", [gt], [y], to=1)

    def torch(self, t, m, xs):
        return [(xs[0] > t).to(xs[0].dtype)]


@dataclass(frozen=True)
class Affine:
    """shift + scale * x, the inner part of Power, Exp and Log."""

    power: float
    scale: float
    shift: float


def _affine_onnx(ctx, a: Affine, x: str, y: str) -> str:
    if a.scale != 1:
        x = ctx.node("Mul", [x, ctx.scalar(a.scale)], [ctx.tmp(y, "scale")])[0]
    if a.shift != 0:
        x = ctx.node("Add", [x, ctx.scalar(a.shift)], [ctx.tmp(y, "shift")])[0]
    return x


def _affine_torch(a: Affine, x):
    if a.scale != 1:
        x = x * a.scale
    if a.shift != 0:
        x = x + a.shift
    return x


@register("Power")
class Power(Op):
    def attrs(self, p):
        q = p.power_param
        return Affine(q.power, q.scale, q.shift)

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        z = _affine_onnx(ctx, a, x, y)
        if a.power != 1:
            ctx.node("Pow", [z, ctx.scalar(a.power)], [y])
        else:
            ctx.node("Identity", [z], [y])

    def torch(self, a, m, xs):
        z = _affine_torch(a, xs[0])
        return [z.pow(a.power) if a.power != 1 else z]


def _log_base(base: float, name: str) -> float:
    if base == -1:
        return 1.0
    if base <= 0:
        raise ConvertError(f"layer {name!r}: base must be positive (or -1 for e), got {base}")
    return math.log(base)


@register("Exp")
class Exp(Op):
    """y = base ^ (shift + scale x) = exp(ln(base) (shift + scale x))."""

    def attrs(self, p):
        q = p.exp_param
        lb = _log_base(q.base, p.name)
        return Affine(1.0, q.scale * lb, q.shift * lb)

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        ctx.node("Exp", [_affine_onnx(ctx, a, x, y)], [y])

    def torch(self, a, m, xs):
        return [_affine_torch(a, xs[0]).exp()]


@register("Log")
class Log(Op):
    """y = log_base(shift + scale x) = ln(shift + scale x) / ln(base)."""

    def attrs(self, p):
        q = p.log_param
        return Affine(1.0 / _log_base(q.base, p.name), q.scale, q.shift)

    def onnx(self, ctx, a, layer):
        (x,), (y,) = ctx.inputs(layer), ctx.outputs(layer)
        ln = ctx.node("Log", [_affine_onnx(ctx, a, x, y)], [ctx.tmp(y, "ln") if a.power != 1 else y])[0]
        if a.power != 1:
            ctx.node("Mul", [ln, ctx.scalar(a.power)], [y])

    def torch(self, a, m, xs):
        z = _affine_torch(a, xs[0]).log()
        return [z * a.power if a.power != 1 else z]


@register("Softmax")
class Softmax(Op):
    passes_through = probabilities = True

    def attrs(self, p):
        return p.softmax_param.axis

    def onnx(self, ctx, axis, layer):
        ndim = len(ctx.shape(layer.bottoms[0]))
        ctx.node("Softmax", ctx.inputs(layer), ctx.outputs(layer), axis=axis_index(axis, ndim, layer.name))

    def torch(self, axis, m, xs):
        return [xs[0].softmax(axis_index(axis, xs[0].dim(), ""))]
