"""The render loop on a small real net (MTCNN det1 with its real weights): properties and the notebook."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data
from zoo.dream import objectives as ob
from zoo.dream import pipeline, render
from zoo.dream.brain import from_graph
from zoo.dream.presets import DreamParams

from tests.conftest import SHARED
from tests.dream_helpers import assert_tiling_is_exact
from zoo import convert
from zoo.preprocess import Preprocess

DET1 = SHARED / "models" / "mtcnn"


@pytest.fixture(scope="module")
def brain():
    g = convert.load_net(DET1 / "det1.prototxt", DET1 / "det1.caffemodel")
    pre = Preprocess(channel_order="BGR", mean=(127.5, 127.5, 127.5), scale=0.0078125, input_size=(48, 48))
    return from_graph("det1", g, pre, input_size=(48, 48))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return np.asarray(data.astronaut()[::8, ::8], np.float32)  # 64x64 RGB


def _net_space(brain, rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(brain.preprocess.to_net(rgb))[None]


def _value(brain, objective: ob.Objective, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(objective(brain.net_for(objective.blobs)(x, outputs=list(objective.blobs))))


def _objectives(brain):
    coffee = np.asarray(data.coffee()[::10, ::10], np.float32)
    feats = pipeline.guide_features(brain, coffee, "conv3", "cpu")
    return {
        "l2": ob.blob_l2("conv3"),
        "channels": ob.channels("conv2", [3, 5]),
        "neuron": ob.neuron("conv3", 7),
        "class": ob.class_output("prob1", 1),
        "blobs": ob.blobs_l2({"conv1": 1.0, "conv3": 0.5}),
        "guide": ob.guide("conv3", feats),
    }


@pytest.mark.parametrize("name", ["l2", "channels", "neuron", "class", "blobs", "guide"])
def test_each_objective_rises_over_the_steps(brain, photo, name):
    objective = _objectives(brain)[name]
    x0 = _net_space(brain, photo)
    values = [_value(brain, objective, x0)]
    x = x0
    lo, hi = (torch.from_numpy(b) for b in brain.preprocess.bounds())
    for _ in range(2):  # 2 x 3 steps, measured after each block of steps
        x = render.dream(brain.net_for(objective.blobs), objective, x, DreamParams(octaves=1, iterations=3, jitter=2),
                         bounds=(lo, hi), pixel_scale=brain.preprocess.scale, seed=1).image
        values.append(_value(brain, objective, x))
    assert values[0] < values[1] < values[2], values


def test_tiled_and_untiled_gradients_agree_where_tiles_overlap_fully(brain, photo):
    objective = ob.blob_l2("conv3")
    net = brain.net_for(objective.blobs)
    x = _net_space(brain, np.concatenate([photo, photo[:, :40]], axis=1))  # 64x104
    # flat regions make exact ties in the max pools, where the gradient is set-valued; channels_last
    # convolutions round identical patches differently by position, so a tie would break differently
    # per tile layout: a small fixed perturbation removes the ties, not the test's meaning
    x = x + 1e-3 * torch.from_numpy(np.random.default_rng(0).standard_normal(x.shape, dtype=np.float32))
    whole = render.TilePlan(128, 0, 1).tiles(64, 104)
    assert len(whole) == 1
    # det1's conv3 sees 12 pixels; a margin of 24 keeps every blended pixel 12 pixels from a tile edge
    plan = render.TilePlan(tile=72, margin=24, align=2)
    thin = render.TilePlan(tile=40, margin=4, align=2)  # too little overlap: the seams show
    assert_tiling_is_exact(brain, net, objective, x, whole, [plan.tiles(64, 104, o) for o in [(0, 0), (10, 6)]],
                           thin.tiles(64, 104), shift=(5, -7))


def _nd_zoom(a: np.ndarray, factors: tuple[float, float, float]) -> np.ndarray:
    """scipy.ndimage.zoom(order=1)'s output size; the values from render.zoom, which equals it to 1e-5
    (test_zoom_maps_corners_to_corners_like_scipy_order_1): near-tied max pools would turn even that
    difference into visible gradient differences after a few steps."""
    size = ndimage.zoom(np.zeros(a.shape[-2:], np.float32), factors[1:], order=1).shape
    return render.zoom(torch.from_numpy(np.ascontiguousarray(a))[None], size)[0].numpy()


def _notebook(net, blob, base_img, iter_n, octave_n, octave_scale, step_size, jitter, lo, hi, rng):
    """The DeepDream notebook's deepdream()/make_step() in numpy, as a reference."""
    octaves = [base_img]
    for _ in range(octave_n - 1):
        octaves.append(_nd_zoom(octaves[-1], (1, 1.0 / octave_scale, 1.0 / octave_scale)))
    detail = np.zeros_like(octaves[-1])
    src = None
    for octave, octave_base in enumerate(octaves[::-1]):
        h, w = octave_base.shape[-2:]
        if octave > 0:
            h1, w1 = detail.shape[-2:]
            detail = _nd_zoom(detail, (1, 1.0 * h / h1, 1.0 * w / w1))
        src = octave_base + detail
        for _ in range(iter_n):
            ox, oy = rng.integers(-jitter, jitter + 1, 2)
            src = np.roll(np.roll(src, ox, -1), oy, -2)
            x = torch.from_numpy(src[None].copy()).requires_grad_(True)
            dst = net(x, outputs=[blob])[blob]
            (0.5 * dst.pow(2).sum() / dst.shape[1]).backward()
            g = x.grad[0].numpy()
            src = src + step_size / np.abs(g).mean() * g
            src = np.roll(np.roll(src, -ox, -1), -oy, -2)
            src = np.clip(src, lo, hi)
        detail = src - octave_base
    return src


def test_loop_matches_the_deepdream_notebook(brain, photo):
    objective = ob.blob_l2("conv2")
    net = brain.net_for(objective.blobs)
    x = _net_space(brain, photo)
    lo, hi = brain.preprocess.bounds()
    params = DreamParams(octaves=2, octave_scale=1.4, iterations=3, step=0.02, jitter=4)
    ours = render.dream(net, objective, x, params, bounds=(torch.from_numpy(lo), torch.from_numpy(hi)), seed=3)
    ref = _notebook(net, "conv2", x[0].numpy(), 3, 2, 1.4, 0.02, 4, lo, hi, np.random.default_rng(3))
    assert ours.octave_sizes == [(46, 46), (64, 64)] and ours.steps_done == 6
    np.testing.assert_allclose(ours.image[0].numpy(), ref, atol=1e-5)
    assert np.abs(ref - x[0].numpy()).max() > 0.05  # the dream did change the image


def test_same_seed_is_bit_identical_and_clipped(brain, photo):
    objective = ob.blob_l2("conv3")
    params = DreamParams(octaves=2, iterations=3, step=8.0)
    a, _ = pipeline.dream_rgb(brain, photo, objective, params, seed=5)
    b, _ = pipeline.dream_rgb(brain, photo, objective, params, seed=5)
    c, _ = pipeline.dream_rgb(brain, photo, objective, params, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == photo.shape and a.min() >= 0.0 and a.max() <= 255.0
    x = _net_space(brain, photo)
    lo, hi = (torch.from_numpy(v) for v in brain.preprocess.bounds())
    r = render.dream(brain.net_for(["conv3"]), objective, x, params, bounds=(lo, hi), seed=5)
    assert (r.image >= lo).all() and (r.image <= hi).all()
    assert ((r.image == lo) | (r.image == hi)).any()  # a big step reaches the bounds and is clipped there


def test_octaves_the_net_cannot_see_are_skipped(brain):
    plan = pipeline.plan_for(brain, ["conv3"], DreamParams(), "cpu")
    assert plan.min_side == 11  # conv 3, ceil pool 2, conv 3, conv 3
    x = torch.zeros(1, 3, 20, 20)
    r = render.dream(brain.net_for(["conv3"]), ob.blob_l2("conv3"), x, DreamParams(iterations=1),
                     min_size=(11, 11))
    assert r.octave_sizes == [(14, 14), (20, 20)] and r.steps_done == 2
    with pytest.raises(convert.UserError, match="too small for det1 at conv3; it needs at least 11x11"):
        pipeline.check_fits(brain, ["conv3"], (10, 30), "tiny.png")


def test_interrupt_returns_the_image_so_far_at_full_size(brain, photo):
    seen = []

    def stop(p: render.Progress) -> None:
        seen.append(p)
        if p.octave == 2 and p.step == 3:
            raise KeyboardInterrupt

    x = _net_space(brain, photo)
    r = render.dream(brain.net_for(["conv3"]), ob.blob_l2("conv3"), x, DreamParams(octaves=3, iterations=4),
                     pixel_scale=brain.preprocess.scale, on_progress=stop)
    assert r.interrupted and r.steps_done == 4 + 2
    assert r.image.shape == x.shape and (r.image - x).abs().max() > 0.01
    assert seen[0] == render.Progress(1, 3, 1, 4, 1, 1, (33, 33))


def test_net_is_truncated_at_the_deepest_target():
    g = convert.random_weights(convert.load_net(SHARED / "models" / "bvlc_googlenet" / "deploy.prototxt"), 0)
    b = from_graph("googlenet", g, Preprocess(), default_blob="inception_4c/output")
    assert not render.fits(b.net_for(["prob"]), ["prob"], (40, 40))  # the whole net needs a larger input
    net = b.net_for(["conv2/3x3"])
    assert "inception_3a/1x1" not in {lyr.name for lyr in net.graph.layers}
    rgb = np.asarray(data.coffee()[::10, ::10], np.float32)[:40, :40]
    out, r = pipeline.dream_rgb(b, rgb, ob.blob_l2("conv2/3x3"), DreamParams(octaves=2, iterations=2), seed=0)
    assert out.shape == (40, 40, 3) and r.steps_done == 4 and np.abs(out - rgb).max() > 1


def test_banded_conversion_equals_preprocess():
    rgb = np.random.default_rng(1).uniform(0, 255, (300, 7, 3)).astype(np.float32)  # more rows than a band
    for pre in (Preprocess(), Preprocess(channel_order="RGB", mean=(1.0, 2.0, 3.0), scale=0.5, transpose=True)):
        x = pipeline.to_net(pre, rgb)
        assert torch.equal(x[0], torch.from_numpy(pre.to_net(rgb)))
        x[0, 0, 0, 0] = 1e4  # out of range: from_net clips
        back = pipeline.from_net(pre, x[0])
        np.testing.assert_array_equal(back, np.clip(pre.from_net(x[0].numpy()), 0, 255))
        assert back.shape == rgb.shape and back.max() == 255.0
