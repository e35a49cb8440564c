"""The fast paths give the answers of the plain ones: LRN's hand-written backward against numerical
differentiation, and the size-range bisection against every size tried one by one."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from zoo.convert.graph import _edge
from zoo.convert.layers import lrn


@pytest.mark.parametrize("beta", [0.75, 0.5, 0.6])
def test_across_lrn_gradient_matches_numerical_differentiation(beta):
    a = lrn.LRNAttrs(5, 0.3, beta, 2.0, lrn.ACROSS)
    band = torch.from_numpy(lrn._band(7, a)).double()
    k = torch.full((7,), 2.0, dtype=torch.double)
    x = torch.randn(2, 7, 5, 4, dtype=torch.double, requires_grad=True)
    fn = lrn._across_function()
    assert torch.autograd.gradcheck(lambda t: fn.apply(t, band, k, beta), (x,))
    # forward: Caffe's formula written out in numpy
    xn = x.detach().numpy()
    sq = np.pad(xn ** 2, ((0, 0), (2, 2), (0, 0), (0, 0)))
    window = sum(sq[:, i:i + 7] for i in range(5))
    want = xn / (2.0 + 0.3 / 5 * window) ** beta
    np.testing.assert_allclose(fn.apply(x, band, k, beta).detach().numpy(), want, rtol=1e-6)  # the band is float32


@pytest.mark.parametrize("lo,hi,inside,limit", [(10, 20, 15, 0), (10, 20, 15, 40), (10, 20, 10, 0),
                                                  (10, 20, 20, 40), (0, 99, 50, 3), (0, 99, 50, 90)])
def test_edge_finds_the_interval_end(lo, hi, inside, limit):
    fits = lambda v: lo <= v <= hi  # noqa: E731
    step = 1 if limit > inside else -1
    want = inside
    while want != limit and fits(want + step):  # one size at a time
        want += step
    assert _edge(fits, inside, limit) == want



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
@pytest.mark.parametrize("keep", ["1", "0"])
def test_keeping_freed_memory_is_taken_by_glibc_unless_turned_off(keep):
    """glibc accepts the thresholds (mallopt returns 1) and ZOO_KEEP_MEMORY=0 leaves malloc alone.
    The effect, page faults per dream step, is measured by scripts (README: 243 000 -> 0-8 700)."""
    code = "from zoo.dream.alloc import reuse_freed_memory as r; print(int(r()), int(r()))"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "ZOO_KEEP_MEMORY": keep},
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == (["1", "1"] if keep == "1" else ["0", "0"])


def _input_gradient(module, x0, blob, plain: bool):
    """d(mean y^2)/dx and the bytes autograd kept for it; `plain`: PyTorch's own autograd throughout."""
    from zoo.convert.layers import input_grad

    kept = []

    def pack(t):
        kept.append(t.element_size() * t.numel())
        return t

    active = input_grad.active
    if plain:
        input_grad.active = lambda x: False
    try:
        x = x0.clone().requires_grad_(True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = module(x, outputs=[blob])[blob]
        (g,) = torch.autograd.grad((y * y).mean(), x)
    finally:
        input_grad.active = active
    return g, sum(kept)


@pytest.mark.parametrize("channels_last,polyphase", [(False, False), (True, False), (True, True)])
def test_frozen_weights_backward_is_bit_identical_and_keeps_less(channels_last, polyphase, monkeypatch):
    """A dream's backward (weights frozen) keeps masks and indices instead of activations, and its
    gradient is PyTorch autograd's bit for bit, on GoogLeNet's real topology (convolutions, ReLUs,
    max pools with ceil mode, LRN, concatenations); with conv1's polyphase backward (other order of
    the same sums) within float rounding."""
    from zoo.convert.layers import input_grad
    from zoo.convert.torch_module import CaffeModule
    from zoo.dream.brain import ChannelsLast, freeze

    from tests.conftest import MODELS, shared_or_skip
    from zoo import convert

    proto = MODELS / "bvlc_googlenet" / "deploy.prototxt"
    shared_or_skip(proto)
    graph = convert.random_weights(convert.load_net(proto), seed=0)
    module = freeze(CaffeModule(graph.truncated(["inception_3b/output"])))
    if channels_last:
        module = ChannelsLast(module)
    x0 = torch.randn(1, 3, 131, 157, generator=torch.Generator().manual_seed(0)) * 60
    g_plain, kept_plain = _input_gradient(module, x0, "inception_3b/output", plain=True)
    monkeypatch.setattr(input_grad, "POLYPHASE", polyphase)
    g_frozen, kept_frozen = _input_gradient(module, x0, "inception_3b/output", plain=False)
    if polyphase:
        # other order of the same sums: held to the plain fp32 gradient's own error against float64,
        # measured here (a fixed bound holds only where oneDNN picks the kernels it was measured with)
        ref, _ = _input_gradient(freeze(CaffeModule(graph.truncated(["inception_3b/output"]))).double(),
                                 x0.double(), "inception_3b/output", plain=True)
        err = lambda g: float((g.double() - ref).norm() / ref.norm())  # noqa: E731
        assert err(g_frozen) <= 1.5 * err(g_plain) + 1e-7, (err(g_frozen), err(g_plain))
        assert not torch.equal(g_frozen, g_plain)  # the polyphase path did run
    else:
        assert torch.equal(g_frozen, g_plain)
    assert kept_frozen < 0.6 * kept_plain, (kept_frozen, kept_plain)


@pytest.mark.parametrize("k,s,p,h,w", [(7, 2, 3, 64, 64), (7, 2, 3, 37, 50), (11, 4, 0, 67, 67), (7, 4, 0, 59, 60),
                                       (3, 2, 1, 9, 10), (5, 3, 2, 20, 23), (2, 2, 0, 8, 9), (4, 3, 5, 13, 11)])
def test_polyphase_input_grad_matches_autograd(k, s, p, h, w):
    """The strided image layer's input gradient as one stride-1 convolution equals autograd's
    (float64) for GoogLeNet's conv1 (7/2, pad 3), CaffeNet's (11/4), age_net's (7/4), odd sizes,
    rows no window reaches, and padding beyond the kernel."""
    from zoo.convert.layers import input_grad

    gen = torch.Generator().manual_seed(k * 100 + s)
    x = torch.randn(1, 3, h, w, dtype=torch.float64, generator=gen, requires_grad=True)
    wt = torch.randn(8, 3, k, k, dtype=torch.float64, generator=gen)
    y = torch.nn.functional.conv2d(x, wt, stride=s, padding=p)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    (want,) = torch.autograd.grad(y, x, g)
    got = input_grad.polyphase_input_grad(g, wt, s, (p, p), (h, w))
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_training_keeps_plain_autograd():
    """With weights that learn, every handler takes PyTorch's own path: the weights get their gradients."""
    from zoo.convert.layers import input_grad
    from zoo.convert.torch_module import CaffeModule

    from tests.caffe_helpers import graph_from_text

    g = graph_from_text('input: "data" input_shape { dim: 1 dim: 2 dim: 9 dim: 9 }\n'
                        'layer { name: "c" type: "Convolution" bottom: "data" top: "c" '
                        'convolution_param { num_output: 3 kernel_size: 3 } }\n'
                        'layer { name: "r" type: "ReLU" bottom: "c" top: "c" }\n'
                        'layer { name: "p" type: "Pooling" bottom: "c" top: "p" '
                        'pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n')
    m = CaffeModule(g)
    seen = []
    active = input_grad.active
    input_grad.active = lambda x: seen.append(active(x)) or active(x)
    try:
        out = m(torch.randn(1, 2, 9, 9, requires_grad=True), outputs=["p"])["p"]
    finally:
        input_grad.active = active
    out.sum().backward()
    assert seen and not any(seen)
    assert all(p.grad is not None for p in m.parameters())
