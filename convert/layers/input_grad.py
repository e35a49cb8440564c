"""Backward passes for the input's gradient only, when every weight is frozen (a dream).

Autograd keeps what the weights' gradients would need too: every convolution keeps its input, a
ReLU its output, a max pool its input and its indices. A dream differentiates the input only, so
a convolution needs its weights, a ReLU where it was positive (one byte, not four) and a max pool
its indices. At 1024x1024 on GoogLeNet's inception_4c that is 220 MiB less held after the forward
pass (measured), and the gradient equals autograd's (torch.equal; a zero may be -0.0): the same
ATen backward kernels run, with an uninitialised tensor of the input's shape and strides where
they only read its layout, and a ReLU multiplies by its mask.

`CaffeModule.forward` turns this on (`frozen`) when none of its parameters wants a gradient; the
layer handlers ask `active(x)`. Not under autocast (the saved fp32 weights would meet bf16
gradients) nor under torch.compile (inductor plans its own memory).
"""

from __future__ import annotations

import contextlib
import contextvars

_FROZEN = contextvars.ContextVar("zoo_frozen_weights", default=False)
POLYPHASE = True  # strided image layers' backward as a stride-1 convolution (polyphase_input_grad)
_FUNCTIONS: dict = {}


@contextlib.contextmanager
def frozen(on: bool):
    """While on, handlers may keep only what the input's gradient needs."""
    token = _FROZEN.set(on)
    try:
        yield
    finally:
        _FROZEN.reset(token)


def active(x) -> bool:
    import torch

    if torch.compiler.is_compiling():  # first: dynamo cannot trace a ContextVar (one graph per layer)
        return False
    return (_FROZEN.get() and x.requires_grad and torch.is_grad_enabled()
            and not torch.is_autocast_enabled(x.device.type))


def conv2d(x, weight, bias, stride, pad, dilation, groups):
    return _functions()["conv"].apply(x, weight, bias, tuple(stride), tuple(pad), tuple(dilation), groups)


def relu(x):
    return _functions()["relu"].apply(x)


def max_pool2d(x, kernel, stride, pad, ceil_mode: bool):
    return _functions()["max_pool"].apply(x, tuple(kernel), tuple(stride), tuple(pad), ceil_mode)


def _functions() -> dict:
    """The autograd Functions, built on first use (torch stays unimported on the ONNX path)."""
    if not _FUNCTIONS:
        _FUNCTIONS.update(conv=_conv_function(), relu=_relu_function(), max_pool=_max_pool_function())
    return _FUNCTIONS


def _layout(x):
    """What a backward needs of its input: shape, strides, dtype and device, not its values."""
    return x.shape, x.stride(), x.dtype, x.device


def _like(saved):
    import torch

    shape, strides, dtype, device = saved
    return torch.empty_strided(shape, strides, dtype=dtype, device=device)  # read for its layout only


def _conv_function():
    import torch
    import torch.nn.functional as F

    class Conv(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, weight, bias, stride, pad, dilation, groups):
            ctx.layout, ctx.conf = _layout(x), (stride, pad, dilation, groups)
            ctx.save_for_backward(weight)
            return F.conv2d(x, weight, bias, stride, pad, dilation, groups)

        @staticmethod
        def backward(ctx, g):
            (weight,) = ctx.saved_tensors
            stride, pad, dilation, groups = ctx.conf
            if _polyphase_pays(weight.shape, stride, dilation, groups):
                return polyphase_input_grad(g, weight, stride[0], pad, ctx.layout[0][2:]), *[None] * 6
            dx = torch.ops.aten.convolution_backward(g, _like(ctx.layout), weight, None, list(stride), list(pad),
                                                     list(dilation), False, [0, 0], groups, [True, False, False])[0]
            return dx, None, None, None, None, None, None

    return Conv


def _relu_function():
    import torch
    import torch.nn.functional as F

    class ReLU(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = F.relu(x)
            ctx.save_for_backward(y.bool())  # y >= 0, so nonzero is positive (and NaN passes, as in autograd)
            return y

        @staticmethod
        def backward(ctx, g):
            (positive,) = ctx.saved_tensors
            # a product with the 0/1 bytes: 7x faster than torch.where(positive, g, 0) on the CPU (1 ms,
            # not 7.9, for 192x128x128), and equal values (a zero may carry g's sign, -0.0 == 0.0)
            return g * positive.view(torch.uint8)

    return ReLU


def _max_pool_function():
    import torch
    import torch.nn.functional as F

    class MaxPool(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, kernel, stride, pad, ceil_mode):
            y, indices = F.max_pool2d(x, kernel, stride, pad, ceil_mode=ceil_mode, return_indices=True)
            ctx.layout, ctx.conf = _layout(x), (kernel, stride, pad, ceil_mode)
            ctx.save_for_backward(indices)
            return y

        @staticmethod
        def backward(ctx, g):
            (indices,) = ctx.saved_tensors
            kernel, stride, pad, ceil_mode = ctx.conf
            dx = torch.ops.aten.max_pool2d_with_indices_backward(g, _like(ctx.layout), list(kernel), list(stride),
                                                                 list(pad), [1, 1], ceil_mode, indices)
            return dx, None, None, None, None

    return MaxPool


def _polyphase_pays(wshape, stride, dilation, groups) -> bool:
    """Where polyphase_input_grad was measured faster: a strided first layer on the image (few input
    channels), square strides, no dilation or groups."""
    return POLYPHASE and wshape[1] <= 4 and groups == 1 and stride[0] == stride[1] >= 2 and tuple(dilation) == (1, 1)


def polyphase_taps(k: int, s: int, p: int) -> tuple[int, list[list[int]]]:
    """For one axis of a convolution (kernel k, stride s, padding p): the first offset j0 and, for each
    output phase r (input position s*a + r), the kernel index of each tap t, -1 where none.

    The input's gradient at s*a + r is sum_t g[a + j0 + t] * w[r + p - s*(j0 + t)]: a stride-1
    correlation of g per phase, so a strided layer's backward becomes one dense convolution.
    """
    lo = min(-((k - 1 - r - p) // s) for r in range(s))  # ceil((r + p - k + 1) / s)
    hi = max((r + p) // s for r in range(s))
    taps = [[(r + p - s * j) if 0 <= r + p - s * j < k else -1 for j in range(lo, hi + 1)] for r in range(s)]
    return lo, taps


def polyphase_input_grad(g, weight, s: int, pad, size):
    """The input's gradient of conv2d(x, weight, stride=s, padding=pad) at x's `size` (H, W), from the
    output's gradient g, as one stride-1 convolution with C*s*s output channels and a pixel shuffle.

    oneDNN's strided backward-data with three output channels (the RGB image) runs at a fifth of its
    forward's speed: 20 ms of a 512x512 GoogLeNet step, 10 ms this way. Same sums, another order."""
    import torch
    import torch.nn.functional as F

    (kh, kw), (ph, pw), (h, w) = weight.shape[2:], pad, size
    (lo_h, taps_h), (lo_w, taps_w) = polyphase_taps(kh, s, ph), polyphase_taps(kw, s, pw)
    th, tw = len(taps_h[0]), len(taps_w[0])
    padded = F.pad(weight, (0, 1, 0, 1))  # index -1 is the zero row and column
    ih = torch.tensor(taps_h, device=weight.device)[:, :, None, None]  # (s, th, 1, 1)
    iw = torch.tensor(taps_w, device=weight.device)[None, None, :, :]  # (1, 1, s, tw)
    o, c = weight.shape[:2]
    kern = padded[:, :, ih, iw]  # (o, c, s, th, s, tw)
    kern = kern.permute(1, 2, 4, 0, 3, 5).reshape(c * s * s, o, th, tw)
    a, b = -(-h // s), -(-w // s)  # phases' lengths
    ho, wo = g.shape[2:]
    ph2 = max(0, -lo_h, lo_h + th - 1 + a - ho)
    pw2 = max(0, -lo_w, lo_w + tw - 1 + b - wo)
    out = F.conv2d(g, kern, padding=(ph2, pw2))
    out = out[:, :, lo_h + ph2:lo_h + ph2 + a, lo_w + pw2:lo_w + pw2 + b]
    return F.pixel_shuffle(out, s)[:, :, :h, :w]
