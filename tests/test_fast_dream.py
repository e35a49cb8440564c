"""The fast dream paths give the dream's result: channels_last nets, the LRN as a banded convolution,
whole images instead of tiles when they fit, and bit-identical repeats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data
from zoo.convert.torch_module import CaffeModule
from zoo.dream import objectives as ob
from zoo.dream import pipeline, render
from zoo.dream.brain import ChannelsLast, freeze, from_graph
from zoo.dream.presets import DreamParams

from tests.conftest import MODELS, shared_or_skip
from tests.dream_helpers import assert_tiling_is_exact
from zoo import convert
from zoo.preprocess import Preprocess

PROTOTXT = MODELS / "bvlc_googlenet" / "deploy.prototxt"


@pytest.fixture(scope="module")
def brain():
    shared_or_skip(PROTOTXT)
    g = convert.random_weights(convert.load_net(PROTOTXT), seed=1)
    return from_graph("g", g, Preprocess(mean=(104.0, 117.0, 123.0)), default_blob="inception_4c/output")


def _photo(brain, h: int, w: int) -> torch.Tensor:
    """The astronaut in net space with a small fixed perturbation: flat regions make exact max-pool
    ties, where the gradient is set-valued and any rounding difference picks another element."""
    from zoo.dream.starts import resize_rgb

    rgb = resize_rgb(np.asarray(data.astronaut(), np.float32), (h, w))
    x = torch.from_numpy(brain.preprocess.to_net(rgb))[None]
    return x + 1e-3 * torch.from_numpy(np.random.default_rng(0).standard_normal(x.shape, dtype=np.float32))


def _gradient(net, blob: str, x: torch.Tensor) -> torch.Tensor:
    return render.objective_gradient(net, ob.blob_l2(blob), x)[1]


@pytest.mark.parametrize("blob", ["conv2/norm2", "inception_3b/output"])
def test_channels_last_gradient_equals_plain_fp32(brain, blob):
    """The default net (channels_last) against the plain NCHW CaffeModule, through LRN, pools, concat.

    Tolerances come from references measured here, never from one CPU's numbers: which kernels oneDNN
    picks varies by CPU model (an Intel Xeon, or this machine under ONEDNN_MAX_CPU_ISA=AVX2, rounds
    max-pool near-ties other ways than the AMD machine a fixed 1e-3 was measured on)."""
    import copy

    plain = freeze(CaffeModule(brain.graph.truncated([blob])))
    fast = brain.net_for([blob])
    assert isinstance(fast, ChannelsLast)
    reference = freeze(CaffeModule(brain.graph.truncated([blob]))).double()
    x = _photo(brain, 160, 200)
    # the same function: in float64 (no near-tie rounds two ways) the fast path's masks, indices,
    # banded LRN and polyphase conv1 give the plain autograd gradient to float64 rounding
    g64, ref = _gradient(copy.deepcopy(fast).double(), blob, x.double()), _gradient(reference, blob, x.double())
    assert float((g64 - ref).norm() / ref.norm()) <= 1e3 * torch.finfo(torch.float64).eps
    # and no precision lost in fp32: its error against float64 is within the plain fp32 path's own,
    # taken as the worst of three draws (each near-tie flip moves it, 0.46-0.74 % at inception_3b)
    errs = {"plain": [], "fast": []}
    for k in range(3):
        xk = x + 1e-4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(k))
        want = _gradient(reference, blob, xk.double())
        for name, net in (("plain", plain), ("fast", fast)):
            errs[name].append(float((_gradient(net, blob, xk).double() - want).norm() / want.norm()))
    assert max(errs["fast"]) <= 2 * max(errs["plain"]) + 1e-6, errs
    with torch.no_grad():
        a, b = plain(x, outputs=[blob])[blob], fast(x, outputs=[blob])[blob]
        want = reference(x.double(), outputs=[blob])[blob]
    # forward: channels_last and the banded LRN sum in other orders; against float64 they round within
    # a few times the plain path's own rounding (a wrong layer is off by orders more)
    off = lambda t: float((t.double() - want).abs().max() / want.abs().max())  # noqa: E731
    assert off(b) <= 8 * off(a) + 1e-7, (off(b), off(a))


def test_tiled_gradient_equals_untiled_where_tiles_overlap_fully(brain):
    """conv2/3x3 sees 19 pixels; a pixel whose gradient a tile keeps lies at least margin/2 = 40 pixels
    inside it, beyond two receptive fields, so the tiles' blend is the whole image's gradient."""
    blob = "conv2/norm2"
    net = brain.net_for([blob])
    objective = ob.blob_l2(blob)
    x = _photo(brain, 288, 360)
    whole = render.TilePlan(512, 0, 4).tiles(288, 360)
    assert len(whole) == 1
    plan = render.TilePlan(tile=256, margin=80, align=4)
    thin = render.TilePlan(tile=64, margin=8, align=4)  # too little overlap: the seams show
    assert_tiling_is_exact(brain, net, objective, x, whole, [plan.tiles(288, 360, o) for o in [(0, 0), (8, 20)]],
                           thin.tiles(288, 360), shift=(7, -12))


def test_tiles_only_when_the_area_exceeds_one_tile():
    plan = render.TilePlan(560, 32, 16)
    assert len(plan.tiles(400, 600)) == 1  # longer than the tile, smaller in area: whole
    assert not plan.splits(400, 600) and plan.splits(600, 800)
    assert len(plan.tiles(600, 800)) > 1
    # cut images get smaller tiles than the area that still runs whole (pipeline.TILED_SHARE)
    split = render.TilePlan(880, 48, 16, whole=1024)
    assert len(split.tiles(1024, 1024)) == 1 and len(render.TilePlan(880, 48, 16).tiles(1024, 1024)) > 1
    assert split.splits(1024, 1040) and all(t.rows.length <= 880 + 48 for t in split.tiles(2048, 2048))


def test_a_recorded_tile_gives_the_same_plan(brain):
    """A recipe records the tile, not the free memory: `--tile T` must plan exactly what the automatic
    choice of T planned, including which sizes run whole (8/7 of the tile, aligned up)."""
    from zoo.dream.presets import DreamParams

    blobs = [brain.default_blob]
    auto = pipeline.plan_for(brain, blobs, DreamParams(), "cpu")
    assert pipeline.plan_for(brain, blobs, DreamParams(tile=auto.tiles.tile), "cpu") == auto
    assert auto.tiles.whole == pipeline.whole_side(auto.tiles.tile, auto.tiles.align) > auto.tiles.tile
    assert [pipeline.whole_side(t, 16) for t in (896, 880, 592)] == [1024, 1008, 688]  # ceil(8t/7 / 16) * 16


def test_a_600x400_photo_runs_whole_with_2_gb_free_and_print_sizes_stay_tiled(brain):
    blobs = [brain.default_blob]
    align = pipeline.stride_of(brain, blobs)
    tile = pipeline.auto_tile(brain, blobs, "cpu", align, floor=64, available=2 << 30)
    plan = render.plan_tiles(tile, align)
    assert len(plan.tiles(400, 600)) == 1
    assert len(plan.tiles(5400, 5400)) > 4
    # the budget is what the tile's activations need: the graph's own estimate at that size
    g = brain.truncated_graph(blobs)
    need = g.activation_bytes({next(iter(g.inputs)): (1, 3, 400, 600)}) * pipeline.ACTIVATION_FACTOR
    assert need <= (2 << 30) // 4


def test_the_fast_dream_repeats_bit_for_bit(brain):
    blob = "inception_3a/output"
    x = _photo(brain, 96, 128)
    lo, hi = (torch.from_numpy(b) for b in brain.preprocess.bounds())
    params = DreamParams(octaves=2, iterations=2)
    runs = [render.dream(brain.net_for([blob]), ob.blob_l2(blob), x, params, bounds=(lo, hi), seed=3).image
            for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], x)
