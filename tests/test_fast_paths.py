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
