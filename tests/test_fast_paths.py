"""The fast paths give the answers of the plain ones: LRN's hand-written backward against numerical
differentiation, and the size-range bisection against every size tried one by one."""

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
