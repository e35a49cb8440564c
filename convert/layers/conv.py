"""Convolutions: Convolution and Deconvolution (groups, dilation, rectangular kernels, strides and pads),
and the forks' ConvolutionDepthwise."""

from __future__ import annotations

from dataclasses import dataclass, replace

from zoo.convert.errors import ConvertError
from zoo.convert.layers import input_grad
from zoo.convert.layers.base import Op, Shape, pair, register


@dataclass(frozen=True)
class ConvAttrs:
    num_output: int
    bias: bool
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    group: int


def conv_attrs(p, name: str) -> ConvAttrs:
    c = p.convolution_param
    if c.axis != 1:
        raise ConvertError(f"layer {name!r}: convolution axis {c.axis} is not supported (only 1)")
    kernel = pair(c.kernel_size, c.kernel_h if c.HasField("kernel_h") else None,
                  c.kernel_w if c.HasField("kernel_w") else None, None, "kernel", name)
    stride = pair(c.stride, c.stride_h if c.HasField("stride_h") else None,
                  c.stride_w if c.HasField("stride_w") else None, 1, "stride", name)
    pad = pair(c.pad, c.pad_h if c.HasField("pad_h") else None,
               c.pad_w if c.HasField("pad_w") else None, 0, "pad", name)
    dilation = pair(c.dilation, None, None, 1, "dilation", name)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise ConvertError(f"layer {name!r}: kernel, stride and dilation must be positive")
    if not c.HasField("num_output") or c.num_output < 1:
        raise ConvertError(f"layer {name!r}: num_output is required")
    if c.group < 1 or c.num_output % c.group:
        raise ConvertError(f"layer {name!r}: num_output {c.num_output} is not divisible by group {c.group}")
    return ConvAttrs(c.num_output, c.bias_term, kernel, stride, pad, dilation, c.group)


def _check_input(a: ConvAttrs, ins: list[Shape], name: str) -> Shape:
    x = ins[0]
    if len(x) != 4:
        raise ConvertError(f"layer {name!r}: expects a 4-D input, got shape {x}")
    if x[1] % a.group:
        raise ConvertError(f"layer {name!r}: {x[1]} input channels are not divisible by group {a.group}")
    return x


@register("Convolution")
class Convolution(Op):
    params = ("weight", "bias")
    is_classifier = True  # a 1x1-style conv head (NIN, SqueezeNet)
    filler_fields = {"weight": ("convolution_param", "weight_filler"), "bias": ("convolution_param", "bias_filler")}

    def with_outputs(self, proto, n):
        out = type(proto)()
        out.CopyFrom(proto)
        out.convolution_param.num_output = n
        return out

    def attrs(self, p):
        return conv_attrs(p, p.name)

    def blob_names(self, a):
        return ("weight", "bias") if a.bias else ("weight",)

    def shape(self, a, ins, name):
        n, _, h, w = _check_input(a, ins, name)
        out = []
        for size, k, s, p, d in zip((h, w), a.kernel, a.stride, a.pad, a.dilation):
            o = (size + 2 * p - (d * (k - 1) + 1)) // s + 1
            if o < 1:
                raise ConvertError(f"layer {name!r}: input {h}x{w} is too small for kernel {a.kernel}")
            out.append(o)
        return [(n, a.num_output, out[0], out[1])]

    def weight_shapes(self, a, ins):
        w = (a.num_output, ins[0][1] // a.group, *a.kernel)
        return [w, (a.num_output,)] if a.bias else [w]

    def macs(self, a, ins, outs):
        n, c, h, w = outs[0]
        return n * c * h * w * (ins[0][1] // a.group) * a.kernel[0] * a.kernel[1]

    def onnx(self, ctx, a, layer):
        inputs = [ctx.inputs(layer)[0], ctx.weight(layer, 0)]
        if a.bias:
            inputs.append(ctx.weight(layer, 1))
        ctx.node("Conv", inputs, ctx.outputs(layer), kernel_shape=list(a.kernel), strides=list(a.stride),
                 pads=[a.pad[0], a.pad[1], a.pad[0], a.pad[1]], dilations=list(a.dilation), group=a.group)

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        bias = m.bias if a.bias else None
        if input_grad.active(xs[0]):  # a dream: the backward keeps the weights, not the input
            return [input_grad.conv2d(xs[0], m.weight, bias, a.stride, a.pad, a.dilation, a.group)]
        return [F.conv2d(xs[0], m.weight, bias, a.stride, a.pad, a.dilation, a.group)]


@register("Deconvolution")
class Deconvolution(Convolution):
    """Caffe's Deconvolution is a transposed convolution with weights (in, out/group, kh, kw)."""

    is_classifier = False

    def shape(self, a, ins, name):
        n, _, h, w = _check_input(a, ins, name)
        out = []
        for size, k, s, p, d in zip((h, w), a.kernel, a.stride, a.pad, a.dilation):
            o = s * (size - 1) + d * (k - 1) + 1 - 2 * p
            if o < 1:
                raise ConvertError(f"layer {name!r}: output size {o} is not positive")
            out.append(o)
        return [(n, a.num_output, out[0], out[1])]

    def weight_shapes(self, a, ins):
        w = (ins[0][1], a.num_output // a.group, *a.kernel)
        return [w, (a.num_output,)] if a.bias else [w]

    def macs(self, a, ins, outs):
        n, c, h, w = ins[0]
        return n * c * h * w * (a.num_output // a.group) * a.kernel[0] * a.kernel[1]

    def fill(self, a, shapes, rng):
        import numpy as np

        ws = super().fill(a, shapes, rng)
        fan_in = shapes[0][1] * shapes[0][2] * shapes[0][3]
        ws[0] = (rng.standard_normal(shapes[0]) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        return ws

    def onnx(self, ctx, a, layer):
        inputs = [ctx.inputs(layer)[0], ctx.weight(layer, 0)]
        if a.bias:
            inputs.append(ctx.weight(layer, 1))
        ctx.node("ConvTranspose", inputs, ctx.outputs(layer), kernel_shape=list(a.kernel),
                 strides=list(a.stride), pads=[a.pad[0], a.pad[1], a.pad[0], a.pad[1]],
                 dilations=list(a.dilation), group=a.group)

    def torch(self, a, m, xs):
        import torch.nn.functional as F

        return [F.conv_transpose2d(xs[0], m.weight, m.bias if a.bias else None, a.stride, a.pad, 0,
                                   a.group, a.dilation)]


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
